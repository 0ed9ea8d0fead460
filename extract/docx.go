package extract

import (
	"context"
	"encoding/xml"
	"strconv"
	"strings"

	"github.com/freshen-io/freshen"
)

// extractDOCX returns the blocks of a Word document's body, and the title
// from its core properties (dc:title). The rules:
//
//   - Each paragraph (w:p) is a block. Its text is the text of its runs
//     (w:t, and m:t in equations); a tab is a tab, a line break (w:br,
//     w:cr) a line break. Deleted text (tracked changes) and field codes
//     are left out, inserted text is in.
//   - A paragraph is a heading when its style, or a style it is based on,
//     is a built-in heading ("heading 1" to "heading 9", level 1 to 9,
//     capped to 6) or Title (level 1), or has an outline level; a
//     paragraph outline level overrides its style's. A style that
//     styles.xml does not define is a heading if its ID is one of Word's:
//     Heading1..Heading9, Title.
//   - A paragraph with numbering (w:numPr, its own or its style's) is a
//     list item.
//   - A table row (w:tr) is a table row, its cells' text flattened to one
//     line each and joined with " | "; a table nested in a cell is part
//     of the cell's text. Rows with no text are dropped.
//   - Text boxes are read where they are anchored, before the paragraph
//     that holds them; the fallback content of markup-compatibility
//     blocks (mc:Fallback), which repeats the chosen content, is not.
//
// Headers, footers, footnotes and comments, which are parts of their own,
// are not read.
func extractDOCX(ctx context.Context, data []byte, lim officeLimits, nt *notes) ([]freshen.Block, string, error) {
	o, err := openOOXML(ctx, data, lim, "Word document")
	if err != nil {
		return nil, "", err
	}
	main := o.relTarget("", "officeDocument", "word/document.xml")
	if !o.has(main) {
		main = "word/document.xml"
	}
	styles := o.docxStyles(main, nt)
	w := docxWalker{styles: styles}
	if err := o.walk(main, w.token); err != nil {
		return nil, "", err
	}
	return w.blocks, o.title(nt), nil
}

// docxStyle is what a paragraph style says about its paragraphs.
type docxStyle struct {
	name    string // lower-cased
	basedOn string
	outline int  // outline level from 1, 0 for none
	list    bool // numbered
}

// docxStyles reads the paragraph styles of the document main, by style ID.
// Styles that cannot be read are noted and left out: headings then fall
// back to the usual style IDs.
func (o *ooxml) docxStyles(main string, nt *notes) map[string]docxStyle {
	name := o.relTarget(main, "styles", "word/styles.xml")
	if !o.has(name) {
		return nil
	}
	styles := map[string]docxStyle{}
	var id string
	var cur docxStyle
	err := o.walk(name, func(t xml.Token, depth int) (bool, error) {
		switch t := t.(type) {
		case xml.StartElement:
			switch {
			case is(t.Name, nsWord, "style"):
				id, cur = "", docxStyle{}
				if attr(t, "type") == "paragraph" {
					id = attr(t, "styleId")
				}
			case id == "":
			case is(t.Name, nsWord, "name"):
				cur.name = strings.ToLower(attr(t, "val"))
			case is(t.Name, nsWord, "basedOn"):
				cur.basedOn = attr(t, "val")
			case is(t.Name, nsWord, "outlineLvl"):
				cur.outline = outlineLevel(attr(t, "val"))
			case is(t.Name, nsWord, "numId"):
				cur.list = attr(t, "val") != "0"
			}
		case xml.EndElement:
			if is(t.Name, nsWord, "style") && id != "" {
				styles[id] = cur
				id = ""
			}
		}
		return false, nil
	})
	if err != nil {
		nt.add("docx: the styles cannot be read (%v); headings are recognized by style ID only", err)
		return nil
	}
	return styles
}

// outlineLevel turns a w:outlineLvl value (0 to 8; 9 is body text) into a
// heading level from 1, or 0.
func outlineLevel(val string) int {
	n, err := strconv.Atoi(val)
	if err != nil || n < 0 || n > 8 {
		return 0
	}
	return n + 1
}

// headingOf returns the heading level of a style name: "heading N" is N,
// "title" 1; 0 for any other.
func headingOf(name string) int {
	if name == "title" {
		return 1
	}
	if rest, ok := strings.CutPrefix(name, "heading "); ok {
		if n, err := strconv.Atoi(rest); err == nil && n >= 1 && n <= 9 {
			return n
		}
	}
	return 0
}

// styleInfo returns the heading level and numbering a paragraph of style
// id inherits, following basedOn links. A style the styles part does not
// define (or there is none) is known by the IDs Word gives its built-in
// styles in English: Title, Heading1 to Heading9.
func styleInfo(styles map[string]docxStyle, id string) (level int, list bool) {
	if _, ok := styles[id]; !ok {
		lower := strings.ToLower(id)
		if lower == "title" {
			return 1, false
		}
		if rest, ok := strings.CutPrefix(lower, "heading"); ok {
			return headingOf("heading " + rest), false
		}
		return 0, false
	}
	for range 32 {
		s, ok := styles[id]
		if !ok {
			break
		}
		if level == 0 {
			level = headingOf(s.name)
			if level == 0 {
				level = s.outline
			}
		}
		list = list || s.list
		if s.basedOn == "" || s.basedOn == id {
			break
		}
		id = s.basedOn
	}
	return level, list
}

// docxPara is a paragraph being read.
type docxPara struct {
	text    strings.Builder
	style   string
	outline int // the paragraph's own outline level, from 1
	// numbered is the paragraph's own numbering (w:numId 0 turns off its
	// style's), nil if it says nothing.
	numbered *bool
}

// docxCell collects the text of a table cell.
type docxCell struct{ text strings.Builder }

// docxWalker builds the blocks of word/document.xml from its tokens.
type docxWalker struct {
	styles map[string]docxStyle
	blocks []freshen.Block
	paras  []*docxPara // open paragraphs, innermost last
	tables int         // open tables
	row    []string    // cells of the current row of the outermost table
	cell   *docxCell   // the open cell of the outermost table
	inRun  int         // open w:r
	inPPr  bool        // inside the paragraph properties
	text   bool        // inside w:t or m:t
	skip   skipper
}

func (w *docxWalker) token(t xml.Token, depth int) (bool, error) {
	if w.skip.skipping(t, depth) {
		return false, nil
	}
	switch t := t.(type) {
	case xml.StartElement:
		w.start(t, depth)
	case xml.EndElement:
		w.end(t)
	case xml.CharData:
		if w.text && len(w.paras) > 0 {
			w.paras[len(w.paras)-1].text.Write(t)
		}
	}
	return false, nil
}

func (w *docxWalker) start(e xml.StartElement, depth int) {
	var p *docxPara
	if len(w.paras) > 0 {
		p = w.paras[len(w.paras)-1]
	}
	switch {
	case is(e.Name, nsMC, "Fallback"), is(e.Name, nsWord, "del"), is(e.Name, nsWord, "moveFrom"),
		is(e.Name, nsWord, "instrText"), is(e.Name, nsWord, "delText"):
		w.skip.skip(depth)
	case is(e.Name, nsWord, "p"):
		w.paras = append(w.paras, &docxPara{})
	case is(e.Name, nsWord, "pPr"):
		w.inPPr = true
	case is(e.Name, nsWord, "r"):
		w.inRun++
	case is(e.Name, nsWord, "t"), is(e.Name, nsMath, "t"):
		w.text = true
	case is(e.Name, nsWord, "tbl"):
		w.tables++
	case is(e.Name, nsWord, "tr") && w.tables == 1:
		w.row = w.row[:0]
	case is(e.Name, nsWord, "tc") && w.tables == 1:
		w.cell = &docxCell{}
	case p == nil:
	case w.inPPr:
		switch {
		case is(e.Name, nsWord, "pStyle"):
			p.style = attr(e, "val")
		case is(e.Name, nsWord, "outlineLvl"):
			p.outline = outlineLevel(attr(e, "val"))
		case is(e.Name, nsWord, "numId"):
			numbered := attr(e, "val") != "0"
			p.numbered = &numbered
		}
	case w.inRun > 0:
		switch {
		case is(e.Name, nsWord, "tab"):
			p.text.WriteByte('\t')
		case is(e.Name, nsWord, "br"), is(e.Name, nsWord, "cr"):
			p.text.WriteByte('\n')
		case is(e.Name, nsWord, "noBreakHyphen"):
			p.text.WriteByte('-')
		}
	}
}

func (w *docxWalker) end(e xml.EndElement) {
	switch {
	case is(e.Name, nsWord, "p") && len(w.paras) > 0:
		p := w.paras[len(w.paras)-1]
		w.paras = w.paras[:len(w.paras)-1]
		w.endPara(p)
	case is(e.Name, nsWord, "pPr"):
		w.inPPr = false
	case is(e.Name, nsWord, "r"):
		w.inRun = max(w.inRun-1, 0)
	case is(e.Name, nsWord, "t"), is(e.Name, nsMath, "t"):
		w.text = false
	case is(e.Name, nsWord, "tbl"):
		w.tables = max(w.tables-1, 0)
	case is(e.Name, nsWord, "tc") && w.tables == 1 && w.cell != nil:
		w.row = append(w.row, strings.Join(strings.Fields(w.cell.text.String()), " "))
		w.cell = nil
	case is(e.Name, nsWord, "tr") && w.tables == 1:
		if strings.TrimSpace(strings.Join(w.row, "")) != "" {
			w.blocks = add(w.blocks, freshen.BlockTableRow, 0, strings.Join(w.row, " | "))
		}
		w.row = w.row[:0]
	}
}

// endPara emits a finished paragraph: into the open table cell, if any,
// else as a block of its kind.
func (w *docxWalker) endPara(p *docxPara) {
	text := p.text.String()
	if w.cell != nil {
		w.cell.text.WriteString(text)
		w.cell.text.WriteByte(' ')
		return
	}
	level, list := styleInfo(w.styles, p.style)
	if p.outline > 0 {
		level = p.outline
	}
	if p.numbered != nil {
		list = *p.numbered
	}
	switch {
	case level > 0:
		w.blocks = add(w.blocks, freshen.BlockHeading, level, strings.Join(strings.Fields(text), " "))
	case list:
		w.blocks = add(w.blocks, freshen.BlockListItem, 0, text)
	default:
		w.blocks = add(w.blocks, freshen.BlockParagraph, 0, text)
	}
}
