package extract

import (
	"context"
	"encoding/xml"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/freshen-io/freshen"
)

// extractPPTX returns the blocks of a PowerPoint presentation, slide by
// slide, each with its slide number in Block.Page, and the title from its
// core properties (dc:title). The rules:
//
//   - Slides come in presentation order (the slide list of
//     ppt/presentation.xml and its relationships), or, if that list
//     cannot be read, in the order of their file numbers; hidden slides
//     are included.
//   - A slide's title placeholder is a heading: level 1 for a title
//     slide's (ctrTitle), 2 for the others; it comes first.
//   - Every other paragraph of text (a:p) of a shape, in the order of the
//     shapes, is a paragraph; line breaks are kept. Date, footer and
//     slide number placeholders are left out: they repeat on every
//     slide.
//   - A table row (a:tr) is a table row, its cells joined with " | ".
//   - The speaker notes of a slide (the body of its notes slide) follow
//     it as paragraphs.
func extractPPTX(ctx context.Context, data []byte, lim officeLimits, nt *notes) ([]freshen.Block, string, error) {
	o, err := openOOXML(ctx, data, lim, "PowerPoint presentation")
	if err != nil {
		return nil, "", err
	}
	main := o.relTarget("", "officeDocument", "ppt/presentation.xml")
	if !o.has(main) {
		main = "ppt/presentation.xml"
	}
	slides, err := o.slideOrder(main, nt)
	if err != nil {
		return nil, "", err
	}
	var blocks []freshen.Block
	for i, name := range slides {
		sb, err := o.slideBlocks(name, i+1, false)
		if err != nil {
			return nil, "", err
		}
		blocks = append(blocks, sb...)
		if notes := o.relTarget(name, "notesSlide", ""); notes != "" && o.has(notes) {
			nb, err := o.slideBlocks(notes, i+1, true)
			if err != nil {
				return nil, "", err
			}
			blocks = append(blocks, nb...)
		}
	}
	return blocks, o.title(nt), nil
}

// slideFile matches the usual name of a slide part.
var slideFile = regexp.MustCompile(`^ppt/slides/slide([0-9]{1,9})\.xml$`)

// slideOrder returns the part names of the slides in presentation order.
func (o *ooxml) slideOrder(main string, nt *notes) ([]string, error) {
	var ids []string
	err := o.walk(main, func(t xml.Token, _ int) (bool, error) {
		if e, ok := t.(xml.StartElement); ok && is(e.Name, nsPres, "sldId") {
			ids = append(ids, attr(e, "id", nsRels...))
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	rels, err := o.rels(main)
	if err != nil {
		return nil, err
	}
	targets := map[string]string{} // slide relationships: ID to part name
	for _, r := range rels {
		if _, dup := targets[r.id]; !dup && strings.HasSuffix(r.typ, "/slide") && o.has(r.target) {
			targets[r.id] = r.target
		}
	}
	var slides []string
	seen := map[string]bool{}
	for _, id := range ids {
		if target, ok := targets[id]; ok && !seen[partName(target)] {
			seen[partName(target)] = true
			slides = append(slides, target)
		}
	}
	if len(slides) > 0 || len(ids) == 0 && !o.hasSlideFiles() {
		return slides, nil
	}
	// The list does not lead to the slides: take the slide files in the
	// order of their numbers.
	type numbered struct {
		n    int
		name string
	}
	var found []numbered
	for name := range o.files {
		if m := slideFile.FindStringSubmatch(name); m != nil {
			n, _ := strconv.Atoi(m[1])
			found = append(found, numbered{n, name})
		}
	}
	slices.SortFunc(found, func(a, b numbered) int { return a.n - b.n })
	for _, f := range found {
		slides = append(slides, f.name)
	}
	nt.add("pptx: the slide list of %s does not lead to the slides; they are in the order of their file names", main)
	return slides, nil
}

func (o *ooxml) hasSlideFiles() bool {
	for name := range o.files {
		if slideFile.MatchString(name) {
			return true
		}
	}
	return false
}

// pptxShape is a shape being read: its placeholder type and paragraphs.
type pptxShape struct {
	ph    string // placeholder type; "" if not a placeholder
	isPh  bool
	paras []string
}

// slideBlocks returns the blocks of a slide, or with notes of a notes
// slide (only its body placeholder), all on page.
func (o *ooxml) slideBlocks(name string, page int, notes bool) ([]freshen.Block, error) {
	var (
		titles, body []freshen.Block
		shapes       []*pptxShape
		para         strings.Builder
		inPara, text bool
		tables       int
		row          []string
		cell         *strings.Builder
		skip         skipper
	)
	emit := func(kind freshen.BlockKind, level int, s string) {
		b := freshen.Block{Kind: kind, Level: level, Text: s, Page: page}
		if kind == freshen.BlockHeading {
			titles = append(titles, b)
		} else {
			body = append(body, b)
		}
	}
	err := o.walk(name, func(t xml.Token, depth int) (bool, error) {
		if skip.skipping(t, depth) {
			return false, nil
		}
		switch t := t.(type) {
		case xml.StartElement:
			switch {
			case is(t.Name, nsMC, "Fallback"):
				skip.skip(depth)
			case is(t.Name, nsPres, "sp"):
				shapes = append(shapes, &pptxShape{})
			case is(t.Name, nsPres, "ph") && len(shapes) > 0:
				s := shapes[len(shapes)-1]
				s.isPh, s.ph = true, attr(t, "type")
			case is(t.Name, nsDraw, "p"):
				inPara = true
				para.Reset()
			case is(t.Name, nsDraw, "t"):
				text = true
			case is(t.Name, nsDraw, "br") && inPara:
				para.WriteByte('\n')
			case is(t.Name, nsDraw, "tbl"):
				tables++
			case is(t.Name, nsDraw, "tr") && tables == 1:
				row = row[:0]
			case is(t.Name, nsDraw, "tc") && tables == 1:
				cell = &strings.Builder{}
			}
		case xml.CharData:
			if text && inPara {
				para.Write(t)
			}
		case xml.EndElement:
			switch {
			case is(t.Name, nsDraw, "t"):
				text = false
			case is(t.Name, nsDraw, "p") && inPara:
				inPara = false
				switch {
				case cell != nil:
					cell.WriteString(para.String())
					cell.WriteByte(' ')
				case len(shapes) > 0:
					s := shapes[len(shapes)-1]
					s.paras = append(s.paras, para.String())
				case !notes:
					emit(freshen.BlockParagraph, 0, para.String())
				}
			case is(t.Name, nsDraw, "tc") && tables == 1 && cell != nil:
				row = append(row, strings.Join(strings.Fields(cell.String()), " "))
				cell = nil
			case is(t.Name, nsDraw, "tr") && tables == 1:
				if !notes && strings.TrimSpace(strings.Join(row, "")) != "" {
					emit(freshen.BlockTableRow, 0, strings.Join(row, " | "))
				}
			case is(t.Name, nsDraw, "tbl"):
				tables = max(tables-1, 0)
			case is(t.Name, nsPres, "sp") && len(shapes) > 0:
				s := shapes[len(shapes)-1]
				shapes = shapes[:len(shapes)-1]
				emitShape(s, notes, emit)
			}
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	return append(titles, body...), nil
}

// emitShape emits the paragraphs of a shape: a title as one heading, the
// repeated placeholders not at all, the others paragraph by paragraph; in
// a notes slide, only the body.
func emitShape(s *pptxShape, notes bool, emit func(freshen.BlockKind, int, string)) {
	switch {
	case notes:
		if !s.isPh || s.ph != "body" {
			return
		}
	case s.ph == "title" || s.ph == "ctrTitle":
		level := 2
		if s.ph == "ctrTitle" {
			level = 1
		}
		emit(freshen.BlockHeading, level, strings.Join(strings.Fields(strings.Join(s.paras, " ")), " "))
		return
	case s.ph == "dt" || s.ph == "ftr" || s.ph == "sldNum" || s.ph == "hdr" || s.ph == "sldImg":
		return
	}
	for _, p := range s.paras {
		emit(freshen.BlockParagraph, 0, p)
	}
}
