package main

import (
	"fmt"
	"html"
	"math"
	"math/rand"
	"strings"
)

// doc is a generated document: sections of blocks, rendered to Markdown
// or HTML. Edits work on this structure, then re-render.
type doc struct {
	html     bool
	title    string
	sections []section_
}

type section_ struct {
	heading string
	level   int
	blocks  []block_
}

type block_ struct {
	kind string // "p", "li", "code"
	text string
}

// genDoc makes a document of roughly size bytes.
func genDoc(r *rand.Rand, i int, size int, isHTML bool) *doc {
	d := &doc{html: isHTML, title: fmt.Sprintf("Guide %d: %s %s", i, words[r.Intn(60)], words[r.Intn(60)])}
	total := 0
	for total < size {
		s := section_{heading: fmt.Sprintf("%s %s %s", strings.Title(words[r.Intn(60)]), words[r.Intn(60)], words[r.Intn(60)]), level: 2 + r.Intn(2)}
		for n := 2 + r.Intn(6); n > 0 && total < size; n-- {
			var b block_
			switch x := r.Intn(10); {
			case x < 7:
				b = block_{"p", paragraph(r, 20+r.Intn(180))}
			case x < 9:
				b = block_{"li", paragraph(r, 5+r.Intn(20))}
			default:
				b = block_{"code", fmt.Sprintf("func f%d(x int) int {\n\treturn x * %d\n}", r.Intn(1000), r.Intn(100))}
			}
			total += len(b.text)
			s.blocks = append(s.blocks, b)
		}
		d.sections = append(d.sections, s)
	}
	return d
}

func (d *doc) clone() *doc {
	c := &doc{html: d.html, title: d.title}
	for _, s := range d.sections {
		s.blocks = append([]block_(nil), s.blocks...)
		c.sections = append(c.sections, s)
	}
	return c
}

func (d *doc) render() string {
	var b strings.Builder
	if d.html {
		fmt.Fprintf(&b, "<!doctype html><html><head><title>%s</title><style>body{font:14px sans-serif}</style></head><body>\n<h1>%s</h1>\n", html.EscapeString(d.title), html.EscapeString(d.title))
		for _, s := range d.sections {
			fmt.Fprintf(&b, "<h%d>%s</h%d>\n", s.level, html.EscapeString(s.heading), s.level)
			inList := false
			for _, bl := range s.blocks {
				if bl.kind == "li" && !inList {
					b.WriteString("<ul>\n")
					inList = true
				} else if bl.kind != "li" && inList {
					b.WriteString("</ul>\n")
					inList = false
				}
				switch bl.kind {
				case "p":
					fmt.Fprintf(&b, "<p>%s</p>\n", html.EscapeString(bl.text))
				case "li":
					fmt.Fprintf(&b, "<li>%s</li>\n", html.EscapeString(bl.text))
				case "code":
					fmt.Fprintf(&b, "<pre><code>%s</code></pre>\n", html.EscapeString(bl.text))
				}
			}
			if inList {
				b.WriteString("</ul>\n")
			}
		}
		b.WriteString("</body></html>\n")
		return b.String()
	}
	fmt.Fprintf(&b, "# %s\n\n", d.title)
	for _, s := range d.sections {
		fmt.Fprintf(&b, "%s %s\n\n", strings.Repeat("#", s.level), s.heading)
		for i, bl := range s.blocks {
			switch bl.kind {
			case "p":
				b.WriteString(bl.text + "\n\n")
			case "li":
				b.WriteString("- " + bl.text + "\n")
				if i+1 == len(s.blocks) || s.blocks[i+1].kind != "li" {
					b.WriteString("\n")
				}
			case "code":
				b.WriteString("```go\n" + bl.text + "\n```\n\n")
			}
		}
	}
	return b.String()
}

// paragraphs lists (section, block) positions of prose paragraphs.
func (d *doc) paragraphs() [][2]int {
	var out [][2]int
	for si, s := range d.sections {
		for bi, b := range s.blocks {
			if b.kind == "p" {
				out = append(out, [2]int{si, bi})
			}
		}
	}
	return out
}

// logUniform draws a size between lo and hi, uniform in log space.
func logUniform(r *rand.Rand, lo, hi float64) int {
	return int(math.Exp(math.Log(lo) + r.Float64()*(math.Log(hi)-math.Log(lo))))
}
