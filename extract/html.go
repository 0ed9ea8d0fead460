package extract

import (
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/freshen-io/freshen"
)

// extractHTML returns the visible text of an HTML document as blocks, and
// its <title>. The rules:
//
//   - Invisible content is dropped: script, style, noscript, template,
//     head (the title aside), embedded objects and media, form option
//     lists, SVG, and elements marked hidden (the hidden attribute,
//     aria-hidden="true", an inline display:none).
//   - h1–h6 are headings with their level; pre (and the obsolete listing,
//     xmp, plaintext) is code, verbatim; tr is a table row, its td/th cells
//     flattened to one line each and joined with " | ".
//   - p, li, blockquote, div, section, article and the other block-level
//     elements each start and end a block. Text that sits directly in a
//     block element, outside any child block, becomes a block of the
//     enclosing kind: a list item inside li, a quote inside blockquote,
//     else a paragraph. So "<li>a<ul><li>b</li></ul>c</li>" is three list
//     items, in document order.
//   - Inline elements (a, span, em, code, ...) are part of the text around
//     them; br is a line break; white space collapses except in code;
//     entities are decoded by the parser. Images contribute nothing.
//
// HTML nested deeper than the parser accepts (512 open elements) is read
// again with the tokenizer alone, which keeps the text and the headings
// but not the structure; a note says so.
func extractHTML(s string, nt *notes) ([]freshen.Block, string) {
	root, err := html.Parse(strings.NewReader(s))
	if err != nil {
		nt.add("html: the parser refused the document (%v); extracted its text without structure", strings.TrimPrefix(err.Error(), "html: "))
		return htmlTokens(s)
	}
	var w htmlWalker
	w.walk(root, freshen.BlockParagraph)
	w.flush(freshen.BlockParagraph)
	return w.blocks, findTitle(root)
}

// extractHTMLFragment returns the blocks of a piece of HTML inside another
// document (a Markdown HTML block); kind is what loose text becomes.
func extractHTMLFragment(s string, kind freshen.BlockKind, nt *notes) []freshen.Block {
	body := &html.Node{Type: html.ElementNode, Data: "body", DataAtom: atom.Body}
	nodes, err := html.ParseFragment(strings.NewReader(s), body)
	if err != nil {
		nt.add("html: the parser refused the document (%v); extracted its text without structure", strings.TrimPrefix(err.Error(), "html: "))
		blocks, _ := htmlTokens(s)
		return blocks
	}
	var w htmlWalker
	for _, n := range nodes {
		w.walk(n, kind)
	}
	w.flush(kind)
	return w.blocks
}

type htmlWalker struct {
	blocks []freshen.Block
	buf    strings.Builder // loose text waiting for the end of its block
}

// flush emits the pending loose text as a block of kind.
func (w *htmlWalker) flush(kind freshen.BlockKind) {
	if w.buf.Len() == 0 {
		return
	}
	w.blocks = add(w.blocks, kind, 0, w.buf.String())
	w.buf.Reset()
}

// walk emits the blocks of n; kind is what loose text in n becomes. The
// parser bounds the depth of the tree, and with it the recursion.
func (w *htmlWalker) walk(n *html.Node, kind freshen.BlockKind) {
	switch n.Type {
	case html.TextNode:
		w.buf.WriteString(strings.ReplaceAll(n.Data, "\n", " "))
		return
	case html.DocumentNode:
		w.children(n, kind)
		return
	case html.ElementNode:
	default:
		return // comments, doctypes
	}
	if isInvisible(n) {
		return
	}
	switch n.DataAtom {
	case atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6:
		w.flush(kind)
		w.blocks = add(w.blocks, freshen.BlockHeading, int(n.Data[1]-'0'), flatText(n))
	case atom.Pre, atom.Listing, atom.Xmp, atom.Plaintext:
		w.flush(kind)
		var b strings.Builder
		rawText(&b, n)
		w.blocks = add(w.blocks, freshen.BlockCode, 0, b.String())
	case atom.Tr:
		w.flush(kind)
		var cells []string
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.ElementNode && (c.DataAtom == atom.Td || c.DataAtom == atom.Th) && !isInvisible(c) {
				cells = append(cells, flatText(c))
			}
		}
		w.blocks = add(w.blocks, freshen.BlockTableRow, 0, strings.Join(cells, " | "))
	case atom.Li:
		w.container(n, kind, freshen.BlockListItem)
	case atom.Blockquote:
		w.container(n, kind, freshen.BlockQuote)
	case atom.Br:
		w.buf.WriteByte('\n')
	case atom.Hr:
		w.flush(kind)
	case atom.Img:
	default:
		if isBlockElement(n) {
			w.container(n, kind, kind)
		} else {
			w.children(n, kind)
		}
	}
}

func (w *htmlWalker) children(n *html.Node, kind freshen.BlockKind) {
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		w.walk(c, kind)
	}
}

// container walks a block element: the text before it belongs to the
// outer block (outer), the loose text inside it to a block of kind.
func (w *htmlWalker) container(n *html.Node, outer, kind freshen.BlockKind) {
	w.flush(outer)
	w.children(n, kind)
	w.flush(kind)
}

// isInvisible reports an element whose content a reader never sees.
func isInvisible(n *html.Node) bool {
	if n.Namespace == "svg" {
		return true
	}
	switch n.DataAtom {
	case atom.Script, atom.Style, atom.Noscript, atom.Template, atom.Head, atom.Title,
		atom.Iframe, atom.Object, atom.Embed, atom.Canvas, atom.Audio, atom.Video,
		atom.Select, atom.Datalist, atom.Svg:
		return true
	}
	for _, a := range n.Attr {
		switch a.Key {
		case "hidden":
			return true
		case "aria-hidden":
			if strings.EqualFold(strings.TrimSpace(a.Val), "true") {
				return true
			}
		case "style":
			if strings.Contains(strings.ToLower(strings.Join(strings.Fields(a.Val), "")), "display:none") {
				return true
			}
		}
	}
	return false
}

// isBlockElement reports the elements that start and end a block. An
// element not listed (inline, or unknown such as a custom element) flows
// with the text around it.
func isBlockElement(n *html.Node) bool {
	switch n.DataAtom {
	case atom.Html, atom.Body, atom.P, atom.Div, atom.Section, atom.Article, atom.Main,
		atom.Header, atom.Footer, atom.Nav, atom.Aside, atom.Address, atom.Hgroup,
		atom.Ul, atom.Ol, atom.Menu, atom.Dl, atom.Dt, atom.Dd,
		atom.Figure, atom.Figcaption, atom.Details, atom.Summary, atom.Dialog,
		atom.Form, atom.Fieldset, atom.Legend, atom.Center,
		atom.Table, atom.Caption, atom.Thead, atom.Tbody, atom.Tfoot, atom.Td, atom.Th,
		atom.Colgroup, atom.Frameset, atom.Noframes, atom.Search:
		return true
	}
	return false
}

// flatText returns all visible text under n on one line: block boundaries
// and line breaks become spaces.
func flatText(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		switch n.Type {
		case html.TextNode:
			b.WriteString(n.Data)
			return
		case html.ElementNode:
			if isInvisible(n) {
				return
			}
			if n.DataAtom == atom.Br || n.DataAtom == atom.Tr || isBlockElement(n) {
				b.WriteByte(' ')
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
		if n.Type == html.ElementNode && (isBlockElement(n) || n.DataAtom == atom.Tr) {
			b.WriteByte(' ')
		}
	}
	walk(n)
	return strings.Join(strings.Fields(b.String()), " ")
}

// rawText appends the visible text under n verbatim, br as a newline.
func rawText(b *strings.Builder, n *html.Node) {
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		switch c.Type {
		case html.TextNode:
			b.WriteString(c.Data)
		case html.ElementNode:
			if c.DataAtom == atom.Br {
				b.WriteByte('\n')
			} else if !isInvisible(c) {
				rawText(b, c)
			}
		}
	}
}

// findTitle returns the text of the document's first <title> outside SVG.
func findTitle(root *html.Node) string {
	stack := []*html.Node{root}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if n.Type == html.ElementNode && n.Namespace == "" && n.DataAtom == atom.Title {
			var b strings.Builder
			rawText(&b, n)
			return b.String()
		}
		if n.Type == html.ElementNode && n.Namespace == "svg" {
			continue
		}
		for c := n.LastChild; c != nil; c = c.PrevSibling {
			stack = append(stack, c)
		}
	}
	return ""
}

// htmlTokens extracts text with the tokenizer alone, for HTML the parser
// refuses. Invisible elements are skipped by name; block-level tags cut
// blocks; headings, list items and pre keep their kind; table cells are
// joined with " | ".
func htmlTokens(s string) ([]freshen.Block, string) {
	z := html.NewTokenizer(strings.NewReader(s))
	var (
		blocks    []freshen.Block
		buf       strings.Builder
		kind      = freshen.BlockParagraph
		level     int
		title     string
		inTitle   bool
		skip      atom.Atom // invisible element being skipped, 0 if none
		skipDepth int
		cells     int
	)
	flush := func(next freshen.BlockKind, nextLevel int) {
		if buf.Len() > 0 {
			blocks = add(blocks, kind, level, buf.String())
			buf.Reset()
		}
		kind, level = next, nextLevel
	}
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			flush(freshen.BlockParagraph, 0)
			return blocks, title
		case html.TextToken:
			switch {
			case inTitle:
				if title == "" {
					title = string(z.Text())
				}
			case skip != 0:
			case kind == freshen.BlockCode:
				buf.Write(z.Text())
			default:
				buf.WriteString(strings.ReplaceAll(string(z.Text()), "\n", " "))
			}
		case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			start := tt == html.StartTagToken
			if skip != 0 {
				if a == skip && start {
					skipDepth++
				} else if a == skip && tt == html.EndTagToken {
					if skipDepth--; skipDepth == 0 {
						skip = 0
					}
				}
				continue
			}
			inTitle = a == atom.Title && start
			switch a {
			case atom.Script, atom.Style, atom.Noscript, atom.Template, atom.Iframe, atom.Object,
				atom.Canvas, atom.Audio, atom.Video, atom.Select, atom.Datalist, atom.Svg:
				if start {
					skip, skipDepth = a, 1
				}
			case atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6:
				if start {
					flush(freshen.BlockHeading, int(name[1]-'0'))
				} else {
					flush(freshen.BlockParagraph, 0)
				}
			case atom.Li, atom.Pre, atom.Blockquote, atom.Tr:
				next := freshen.BlockParagraph
				if start {
					next = tokenKind(a)
				}
				flush(next, 0)
				cells = 0
			case atom.Td, atom.Th:
				if start {
					if cells > 0 {
						buf.WriteString(" | ")
					}
					cells++
				}
			case atom.Br:
				buf.WriteByte('\n')
			default:
				if n := (&html.Node{Type: html.ElementNode, DataAtom: a}); isBlockElement(n) || a == atom.Hr {
					flush(kind, level)
				}
			}
		}
	}
}

func tokenKind(a atom.Atom) freshen.BlockKind {
	switch a {
	case atom.Li:
		return freshen.BlockListItem
	case atom.Pre:
		return freshen.BlockCode
	case atom.Blockquote:
		return freshen.BlockQuote
	case atom.Tr:
		return freshen.BlockTableRow
	}
	return freshen.BlockParagraph
}
