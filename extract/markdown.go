package extract

import (
	"bytes"
	"slices"
	"strconv"
	"strings"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	east "github.com/yuin/goldmark/extension/ast"
	"github.com/yuin/goldmark/parser"
	"github.com/yuin/goldmark/text"
	"github.com/yuin/goldmark/util"

	"github.com/freshen-io/freshen"
)

// newMarkdown returns a CommonMark parser with the GFM extensions that
// change what text a document holds: tables, strikethrough and task lists.
// Linkify only changes rendering, so it is left out. The parser keeps its
// state in the per-call parser.Context and is shared.
//
// goldmark v1.8.7 has inputs that cost quadratic time or worse (measured
// on 256 KiB: unmatched "*a_" runs 110 s, "[](" 44 s, 37k link reference
// definitions in one paragraph 2 s). The parser is therefore built with
// guards, each of which only degrades pathological input:
//   - every inline parser is wrapped so that a leaf block gets at most
//     maxInlineAttempts inline constructs; later markup stays literal text;
//   - a paragraph of more than maxRefLines lines that starts like a link
//     reference definition is kept as raw text instead of being parsed;
//   - nesting deeper than maxMarkdownDepth is caught before parsing and
//     indexed as plain text, deeper than maxDepth refused (see
//     extractMarkdown).
func newMarkdown() goldmark.Markdown {
	inline := append(parser.DefaultInlineParsers(),
		util.Prioritized(extension.NewStrikethroughParser(), 500),
		util.Prioritized(extension.NewTaskCheckBoxParser(), 0))
	for i, v := range inline {
		inline[i].Value = capInline(v.Value.(parser.InlineParser))
	}
	p := parser.NewParser(
		parser.WithBlockParsers(parser.DefaultBlockParsers()...),
		parser.WithInlineParsers(inline...),
		parser.WithParagraphTransformers(parser.DefaultParagraphTransformers()...),
		parser.WithParagraphTransformers(util.Prioritized(refGuard{}, 0)),
	)
	return goldmark.New(goldmark.WithParser(p), goldmark.WithExtensions(extension.Table))
}

const (
	// maxInlineAttempts bounds inline parser calls per leaf block. Each
	// call may scan the rest of the block, so this bounds a document's
	// inline work to about maxInlineAttempts × its size. 200 is a
	// paragraph with some 60 links and as much emphasis.
	maxInlineAttempts = 200
	// maxRefLines bounds the paragraph that goldmark's link reference
	// transformer sees; its cost is quadratic in lines.
	maxRefLines = 1000
	// maxMarkdownDepth bounds block nesting (quotes and list items) that
	// goldmark parses; the cost of every line grows with the square of its
	// depth. Real documents rarely nest more than six levels; a deeper one
	// (a long thread of quoted mail) is indexed as plain text, up to
	// maxDepth, beyond which it is refused.
	maxMarkdownDepth = 16
)

var inlineCountKey = parser.NewContextKey()

type inlineCount struct {
	block ast.Node
	n     int
}

// cappedInline is an inline parser that declines (so the trigger stays
// literal text) once the current leaf block has used up its attempts.
type cappedInline struct{ parser.InlineParser }

type cappedInlineCloser struct {
	cappedInline
	parser.CloseBlocker
}

func capInline(p parser.InlineParser) parser.InlineParser {
	c := cappedInline{p}
	if cb, ok := p.(parser.CloseBlocker); ok {
		return cappedInlineCloser{c, cb}
	}
	return c
}

func (c cappedInline) Parse(parent ast.Node, block text.Reader, pc parser.Context) ast.Node {
	st, _ := pc.Get(inlineCountKey).(*inlineCount)
	if st == nil {
		st = &inlineCount{}
		pc.Set(inlineCountKey, st)
	}
	if st.block != parent {
		st.block, st.n = parent, 0
	}
	if st.n++; st.n > maxInlineAttempts {
		return nil
	}
	return c.InlineParser.Parse(parent, block, pc)
}

// refGuard replaces a paragraph that goldmark's link reference transformer
// would take quadratic time over with a raw paragraph, which is neither
// transformed nor inline-parsed. It runs before that transformer.
type refGuard struct{}

func (refGuard) Transform(node *ast.Paragraph, reader text.Reader, pc parser.Context) {
	lines := node.Lines()
	if lines.Len() <= maxRefLines {
		return
	}
	seg := lines.At(0)
	first := seg.Value(reader.Source())
	if !bytes.HasPrefix(bytes.TrimLeft(first, " "), []byte("[")) {
		return
	}
	raw := &rawParagraph{}
	raw.SetLines(lines)
	node.Parent().ReplaceChild(node.Parent(), node, raw)
}

var kindRawParagraph = ast.NewNodeKind("FreshenRawParagraph")

// rawParagraph is a paragraph kept as source text.
type rawParagraph struct{ ast.BaseBlock }

func (n *rawParagraph) Kind() ast.NodeKind { return kindRawParagraph }
func (n *rawParagraph) IsRaw() bool        { return true }
func (n *rawParagraph) Dump(source []byte, level int) {
	ast.DumpHelper(n, source, level, nil, nil)
}

// markdownDepth estimates the deepest block nesting of a Markdown text:
// quote markers on a line, plus the list items open at that line, where a
// list item stays open while later lines are indented to its content. It
// skips fenced code and stops early once the depth exceeds limit. It is a
// linear-time guard, not a parser: lazy continuation lines and other
// corner cases may make it err, by a level or so.
func markdownDepth(s string, limit int) int {
	most := 0
	var items []int // content column of each open list item
	fence := ""
	for line := range strings.SplitSeq(s, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		col, i := indent(line)
		if fence != "" {
			if strings.HasPrefix(line[i:], fence) {
				fence = ""
			}
			continue
		}
		for len(items) > 0 && items[len(items)-1] > col {
			items = items[:len(items)-1]
		}
		if isThematicBreak(line) {
			continue // "- - - - ..." is a rule, not nested lists
		}
		quotes := 0
		for i < len(line) && quotes+len(items) <= limit {
			if line[i] == '>' {
				quotes++
				col, i = col+1, i+1
			} else if n := listMarkerLen(line[i:]); n > 0 {
				items = append(items, col+n+1)
				col, i = col+n, i+n
			} else {
				break
			}
			c, j := indent(line[i:])
			col, i = col+c, i+j
		}
		if rest := line[i:]; strings.HasPrefix(rest, "```") || strings.HasPrefix(rest, "~~~") {
			fence = rest[:3]
		}
		if most = max(most, quotes+len(items)); most > limit {
			break
		}
	}
	return most
}

// isThematicBreak reports a line of three or more of one of "-", "*" or
// "_", with nothing else but white space.
func isThematicBreak(line string) bool {
	var mark byte
	n := 0
	for i := 0; i < len(line); i++ {
		switch c := line[i]; c {
		case ' ', '\t':
		case '-', '*', '_':
			if mark != 0 && c != mark {
				return false
			}
			mark = c
			n++
		default:
			return false
		}
	}
	return n >= 3
}

// indent returns the width in columns (tabs to the next multiple of 4) and
// the length in bytes of the white space that starts s.
func indent(s string) (cols, n int) {
	for n < len(s) && (s[n] == ' ' || s[n] == '\t') {
		if s[n] == '\t' {
			cols += 4 - cols%4
		} else {
			cols++
		}
		n++
	}
	return cols, n
}

// listMarkerLen returns the length of a list marker ("-", "+", "*", or up
// to nine digits and "." or ")") at the start of s, if one is followed by
// white space or the end of the line; 0 otherwise.
func listMarkerLen(s string) int {
	n := 0
	switch {
	case s == "":
		return 0
	case s[0] == '-' || s[0] == '+' || s[0] == '*':
		n = 1
	default:
		for n < len(s) && n < 9 && s[n] >= '0' && s[n] <= '9' {
			n++
		}
		if n == 0 || n >= len(s) || (s[n] != '.' && s[n] != ')') {
			return 0
		}
		n++
	}
	if n < len(s) && s[n] != ' ' && s[n] != '\t' {
		return 0
	}
	return n
}

// extractMarkdown parses s as Markdown and returns its blocks and the title
// from its front matter, if any. Blocks nested more than maxMarkdownDepth
// deep are indexed as plain text, with a note; more than maxDepth, the
// document is refused with an error wrapping freshen.ErrUnsupported.
//
// Rules: headings keep their level; a list item is one block holding the
// paragraphs that start it, and whatever follows inside the item (nested
// lists, code, further paragraphs) becomes blocks of its own after it;
// paragraphs inside block quotes are quote blocks; every table row,
// header included, is a row of cells joined with " | "; raw HTML blocks are
// reduced to their visible text by the HTML rules; images, link targets and
// thematic breaks contribute nothing.
func extractMarkdown(md goldmark.Markdown, s string, nt *notes) ([]freshen.Block, string, error) {
	title, body := frontMatter(s)
	if d := markdownDepth(body, maxDepth); d > maxDepth {
		// Measured again, to the end, only to name the depth.
		return nil, "", tooDeep("quotes and list items", markdownDepth(body, len(body)))
	} else if d > maxMarkdownDepth {
		nt.add("markdown: blocks nested more than %d deep; indexed as plain text", maxMarkdownDepth)
		return extractText(body), title, nil
	}
	src := []byte(body)
	root := md.Parser().Parse(text.NewReader(src))
	w := mdWalker{src: src, nt: nt}
	w.block(root, freshen.BlockParagraph)
	return w.blocks, title, nil
}

type mdWalker struct {
	src    []byte
	blocks []freshen.Block
	nt     *notes
}

type mdFrame struct {
	node ast.Node
	kind freshen.BlockKind // what a paragraph in this context becomes
}

// block emits the blocks of the tree under root, in document order. It
// walks with an explicit stack, not recursion: goldmark nests a block per
// ">" or "- ", so a megabyte of them is a tree a million deep.
func (w *mdWalker) block(root ast.Node, kind freshen.BlockKind) {
	stack := []mdFrame{{root, kind}}
	push := func(first ast.Node, kind freshen.BlockKind) {
		mark := len(stack)
		for c := first; c != nil; c = c.NextSibling() {
			stack = append(stack, mdFrame{c, kind})
		}
		slices.Reverse(stack[mark:])
	}
	for len(stack) > 0 {
		f := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		switch n := f.node.(type) {
		case *ast.Heading:
			w.blocks = add(w.blocks, freshen.BlockHeading, n.Level, w.inline(n))
		case *ast.Paragraph, *ast.TextBlock:
			w.blocks = add(w.blocks, f.kind, 0, w.inline(n))
		case *ast.ListItem:
			// The item is the paragraphs that start it; whatever follows
			// (nested lists, code, later paragraphs) comes after it.
			var lead []string
			c := n.FirstChild()
			for ; c != nil && isMarkdownText(c); c = c.NextSibling() {
				lead = append(lead, w.inline(c))
			}
			w.blocks = add(w.blocks, freshen.BlockListItem, 0, strings.Join(lead, "\n"))
			push(c, freshen.BlockListItem)
		case *ast.Blockquote:
			push(n.FirstChild(), freshen.BlockQuote)
		case *rawParagraph:
			w.blocks = add(w.blocks, f.kind, 0, w.lines(n))
			w.nt.add("markdown: a paragraph of more than %d lines that starts like a link reference definition was indexed as raw text", maxRefLines)
		case *ast.FencedCodeBlock, *ast.CodeBlock:
			w.blocks = add(w.blocks, freshen.BlockCode, 0, w.lines(n))
		case *ast.HTMLBlock:
			raw := w.lines(n)
			if n.HasClosure() {
				raw += string(n.ClosureLine.Value(w.src))
			}
			w.blocks = append(w.blocks, extractHTMLFragment(raw, f.kind, w.nt)...)
		case *east.Table:
			for row := n.FirstChild(); row != nil; row = row.NextSibling() {
				var cells []string
				for cell := row.FirstChild(); cell != nil; cell = cell.NextSibling() {
					cells = append(cells, w.inline(cell))
				}
				w.blocks = add(w.blocks, freshen.BlockTableRow, 0, strings.Join(cells, " | "))
			}
		case *ast.ThematicBreak:
		default:
			push(n.FirstChild(), f.kind)
		}
	}
}

func isMarkdownText(n ast.Node) bool {
	switch n.(type) {
	case *ast.Paragraph, *ast.TextBlock:
		return true
	}
	return false
}

// lines returns the verbatim source lines of a block.
func (w *mdWalker) lines(n ast.Node) string {
	var b strings.Builder
	lines := n.Lines()
	for i := range lines.Len() {
		seg := lines.At(i)
		b.Write(seg.Value(w.src))
	}
	return b.String()
}

// inline returns the text of n's inline content as a reader sees it:
// emphasis markers, link targets and escapes removed, entities decoded,
// soft line breaks as spaces and hard ones as newlines. Like block, it
// walks with an explicit stack: emphasis can nest as deep as the input is
// long.
func (w *mdWalker) inline(n ast.Node) string {
	var b strings.Builder
	var stack []ast.Node
	push := func(first ast.Node) {
		mark := len(stack)
		for c := first; c != nil; c = c.NextSibling() {
			stack = append(stack, c)
		}
		slices.Reverse(stack[mark:])
	}
	push(n.FirstChild())
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		switch c := c.(type) {
		case *ast.Text:
			v := c.Segment.Value(w.src)
			if !c.IsRaw() {
				v = util.UnescapePunctuations(util.ResolveNumericReferences(util.ResolveEntityNames(v)))
			}
			b.Write(v)
			switch {
			case c.HardLineBreak():
				b.WriteByte('\n')
			case c.SoftLineBreak():
				b.WriteByte(' ')
			}
		case *ast.String:
			b.Write(c.Value)
		case *ast.AutoLink:
			b.Write(c.Label(w.src))
		case *ast.Image, *ast.RawHTML:
			// Alt text and inline tags are not part of the prose.
		case *east.TaskCheckBox:
			if c.IsChecked {
				b.WriteString("[x] ")
			} else {
				b.WriteString("[ ] ")
			}
		default:
			push(c.FirstChild())
		}
	}
	return b.String()
}

// frontMatter splits a leading YAML (---) or TOML (+++) front matter block
// off s and returns the value of its title key, if it has one. A leading
// "---" line without a closing line is a thematic break, not front matter.
func frontMatter(s string) (title, body string) {
	first, rest, ok := strings.Cut(s, "\n")
	fence := strings.TrimRight(first, " \t")
	if !ok || (fence != "---" && fence != "+++") {
		return "", s
	}
	off := len(first) + 1
	var fields []string
	for line := range strings.SplitAfterSeq(rest, "\n") {
		off += len(line)
		l := strings.TrimRight(line, " \t\n")
		if l == fence || (fence == "---" && l == "...") {
			return frontMatterTitle(fields, fence), s[off:]
		}
		fields = append(fields, l)
	}
	return "", s
}

// frontMatterTitle finds a top-level `title: x` (YAML) or `title = "x"`
// (TOML) line. It is not a YAML parser: anything fancier (block scalars,
// anchors) simply yields no title.
func frontMatterTitle(lines []string, fence string) string {
	sep := ":"
	if fence == "+++" {
		sep = "="
	}
	for _, l := range lines {
		k, v, ok := strings.Cut(l, sep)
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "title") || k != strings.TrimLeft(k, " \t") {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			if u, err := strconv.Unquote(v); err == nil {
				return u
			}
		}
		if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			return strings.ReplaceAll(v[1:len(v)-1], "''", "'")
		}
		if strings.HasPrefix(v, "|") || strings.HasPrefix(v, ">") {
			return ""
		}
		return v
	}
	return ""
}
