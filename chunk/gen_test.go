package chunk

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/freshen-io/freshen"
)

// gen builds realistic Markdown-like documents from a seed: sections with
// headings at levels 1 to 3 (and some level-4 subheadings), paragraphs of
// 20 to 200 words, lists, code blocks, tables and quotes.
type gen struct {
	r *rand.Rand
}

func newGen(seed uint64) *gen {
	return &gen{r: rand.New(rand.NewPCG(seed, 0x636875_6e6b))}
}

var words = strings.Fields(`
the a of and to in is that for it as with was on be by this are from or at
an not have which but they has their all been can more one were will would
there when so if what about into than them some its other could time only
new these two may first any then do also after should our most over such
where many how through well must between each because before same under
index vector chunk document section object bucket prefix event queue worker
ledger embedding model cache hash boundary paragraph heading version replica
storage request response latency throughput budget window token sentence
content change delete insert update reconcile listing stream cursor lease
retry backoff limit error signal metric label service client server config
value record table column row field schema query search score result batch
data file path key store write read commit order sequence system process
simple small large fast slow stable local remote shared cheap costly exact
careful always never often rarely usually quickly slowly directly clearly
keeps moves holds finds makes takes gives builds sends checks counts splits
merges reads writes cuts joins embeds indexes lists leases acknowledges
`)

func (g *gen) word() string { return words[g.r.IntN(len(words))] }

func (g *gen) words(n int) string {
	var b strings.Builder
	for i := 0; i < n; {
		s := min(n-i, 5+g.r.IntN(16))
		for k := 0; k < s; k++ {
			w := g.word()
			if k == 0 {
				w = strings.ToUpper(w[:1]) + w[1:]
			} else {
				b.WriteByte(' ')
			}
			if k == s-1 {
				w += "."
			}
			b.WriteString(w)
		}
		i += s
		if i < n {
			b.WriteByte(' ')
		}
	}
	return b.String()
}

func (g *gen) paragraph() freshen.Block {
	return freshen.Block{Kind: freshen.BlockParagraph, Text: g.words(20 + g.r.IntN(181))}
}

func (g *gen) heading(level int) freshen.Block {
	return freshen.Block{Kind: freshen.BlockHeading, Level: level, Text: g.words(2 + g.r.IntN(5))}
}

func (g *gen) code() freshen.Block {
	var b strings.Builder
	n := 3 + g.r.IntN(18)
	indent := 0
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "%s%s := %s(%s, %d)\n", strings.Repeat("\t", indent), g.word(), g.word(), g.word(), g.r.IntN(1000))
		indent = max(0, min(3, indent+g.r.IntN(3)-1))
	}
	return freshen.Block{Kind: freshen.BlockCode, Text: b.String()}
}

// block is one body block: mostly paragraphs, sometimes a list, code, a
// table, a quote or a level-4 subheading.
func (g *gen) block() []freshen.Block {
	switch p := g.r.IntN(100); {
	case p < 65:
		return []freshen.Block{g.paragraph()}
	case p < 77:
		var bs []freshen.Block
		for range 3 + g.r.IntN(6) {
			bs = append(bs, freshen.Block{Kind: freshen.BlockListItem, Text: g.words(4 + g.r.IntN(17))})
		}
		return bs
	case p < 87:
		return []freshen.Block{g.code()}
	case p < 92:
		bs := []freshen.Block{{Kind: freshen.BlockTableRow, Text: "| name | value | note |"}}
		for range 2 + g.r.IntN(8) {
			bs = append(bs, freshen.Block{Kind: freshen.BlockTableRow,
				Text: fmt.Sprintf("| %s | %d | %s |", g.word(), g.r.IntN(10000), g.words(2+g.r.IntN(6)))})
		}
		return bs
	case p < 96:
		return []freshen.Block{{Kind: freshen.BlockQuote, Text: g.words(10 + g.r.IntN(60))}}
	default:
		return []freshen.Block{g.heading(4), g.paragraph()}
	}
}

// section is a heading of the given level and its body.
func (g *gen) section(level int) []freshen.Block {
	bs := []freshen.Block{g.heading(level)}
	for range 2 + g.r.IntN(7) {
		bs = append(bs, g.block()...)
	}
	return bs
}

// document has about the given number of sections.
func (g *gen) document(sections int) *freshen.Document {
	doc := &freshen.Document{}
	for i := 0; i < sections; i++ {
		level := 1
		if i > 0 {
			level = 2 + g.r.IntN(2)
			if g.r.IntN(8) == 0 {
				level = 1
			}
		}
		doc.Blocks = append(doc.Blocks, g.section(level)...)
	}
	return doc
}
