package extract

import (
	"math"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// A PDF page is a set of strings drawn at positions; its lines and
// paragraphs must be rebuilt from them. The rules, in content stream
// order (which is reading order for the producers that matter: word
// processors, LaTeX, browsers):
//
//   - A string continues the current line when its baseline is within
//     half a font size of the line's and it does not jump back to the
//     left by more than a font size; a gap of more than 0.15 of a font
//     size before it is a space. A string drawn again at the same place
//     (the way some producers make bold) is dropped.
//   - A line continues the current paragraph unless the font size
//     changes by more than 15%, or the line does not move down (a new
//     column, a new region), or it moves down by more than 1.3 times the
//     page's usual line spacing (a blank line), or the previous line ends
//     a sentence well short of the usual line width (the last line of a
//     paragraph), or the line starts with a bullet.
//   - Lines of a paragraph are joined with a space; a word hyphenated
//     across lines (a lowercase letter, "-", a line starting in
//     lowercase) is joined without the hyphen.
//
// Multi-column pages whose producer draws line by line across columns
// come out interleaved; tables come out a cell or a row per line.

// pdfLine is a line of text on a page.
type pdfLine struct {
	text   string
	x0, x1 float64
	y      float64
	size   float64 // the font size of most of its text
}

// pdfPara is a paragraph on a page.
type pdfPara struct {
	page  int
	text  string
	size  float64
	lines int
}

// layoutPage returns the paragraphs of the strings runs, drawn on page.
func layoutPage(runs []pdfRun, page int) []pdfPara {
	return buildParas(buildLines(runs), page)
}

// sizeCount is how much text a line has in one font size.
type sizeCount struct {
	size float64
	n    int
}

func buildLines(runs []pdfRun) []pdfLine {
	var (
		lines []pdfLine
		b     strings.Builder
		cur   pdfLine
		sizes []sizeCount
		open  bool
		last  *pdfRun
	)
	flush := func() {
		if !open {
			return
		}
		cur.text = b.String()
		best := -1
		for _, s := range sizes {
			if s.n > best {
				cur.size, best = s.size, s.n
			}
		}
		if strings.TrimSpace(cur.text) != "" {
			lines = append(lines, cur)
		}
		b.Reset()
		sizes = sizes[:0]
		open = false
	}
	count := func(r *pdfRun) {
		n := len(strings.TrimSpace(r.text))
		for i := range sizes {
			if sizes[i].size == r.size {
				sizes[i].n += n
				return
			}
		}
		if len(sizes) < 16 {
			sizes = append(sizes, sizeCount{r.size, n})
		}
	}
	for i := range runs {
		r := &runs[i]
		r.size = max(r.size, 0.1)
		if last != nil && r.text == last.text && math.Abs(r.x0-last.x0) < 0.2*r.size && math.Abs(r.y0-last.y0) < 0.2*r.size {
			continue // drawn twice to look bold
		}
		em := max(r.size, cur.size)
		sameLine := open && !r.rotated && !last.rotated &&
			math.Abs(r.y0-cur.y) <= 0.5*em && r.x0 >= cur.x1-em
		if sameLine {
			if r.x0-cur.x1 > 0.15*em && !strings.HasSuffix(b.String(), " ") && !strings.HasPrefix(r.text, " ") {
				b.WriteByte(' ')
			}
			cur.x1 = max(cur.x1, r.x1)
		} else {
			flush()
			cur = pdfLine{x0: r.x0, x1: r.x1, y: r.y0, size: r.size}
			open = true
		}
		b.WriteString(r.text)
		count(r)
		last = r
	}
	flush()
	return lines
}

// similarSize reports font sizes within 15% of each other.
func similarSize(a, b float64) bool {
	return max(a, b) <= 1.15*min(a, b)
}

func buildParas(lines []pdfLine, page int) []pdfPara {
	if len(lines) == 0 {
		return nil
	}
	// The page's usual line spacing, in font sizes, and line width.
	var ratios, widths []float64
	for i, ln := range lines {
		widths = append(widths, ln.x1-ln.x0)
		if i > 0 && similarSize(lines[i-1].size, ln.size) {
			if r := (lines[i-1].y - ln.y) / ln.size; r > 0.5 && r < 3 {
				ratios = append(ratios, r)
			}
		}
	}
	lead := 1.2
	if len(ratios) > 0 {
		slices.Sort(ratios)
		lead = ratios[len(ratios)/2]
	}
	slices.Sort(widths)
	wide := widths[len(widths)*9/10]

	var paras []pdfPara
	var text []byte
	para := pdfPara{page: page}
	flush := func() {
		if para.lines > 0 {
			para.text = strings.TrimSpace(string(text))
			paras = append(paras, para)
		}
		text = text[:0]
		para = pdfPara{page: page}
	}
	for i, ln := range lines {
		if i > 0 {
			prev := lines[i-1]
			em := max(prev.size, ln.size)
			dy := prev.y - ln.y
			if !similarSize(prev.size, ln.size) || dy < 0.5*em || dy > 1.3*lead*em ||
				(prev.x1-prev.x0 < 0.75*wide && endsSentence(prev.text)) || startsWithBullet(ln.text) {
				flush()
			}
		}
		line := strings.TrimSpace(ln.text)
		if para.lines == 0 {
			para.size = ln.size
			text = append(text, line...)
		} else {
			text = joinLine(text, line)
		}
		para.lines++
	}
	flush()
	return paras
}

// joinLine appends line to a paragraph's text: after a space, or, for a
// word hyphenated across the break, in place of the hyphen.
func joinLine(text []byte, line string) []byte {
	if n := len(text); n >= 2 && text[n-1] == '-' {
		before, _ := utf8.DecodeLastRune(text[:n-1])
		after, _ := utf8.DecodeRuneInString(line)
		if unicode.IsLower(before) && unicode.IsLower(after) {
			return append(text[:n-1], line...)
		}
	}
	return append(append(text, ' '), line...)
}

// endsSentence reports text that ends with sentence punctuation, possibly
// followed by a closing quote or bracket.
func endsSentence(s string) bool {
	s = strings.TrimRightFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || strings.ContainsRune(`"')]»”’`, r)
	})
	r, _ := utf8.DecodeLastRuneInString(s)
	return strings.ContainsRune(".!?:;", r)
}

func startsWithBullet(s string) bool {
	_, ok := cutBullet(strings.TrimSpace(s))
	return ok
}
