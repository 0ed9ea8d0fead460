package chunk

import (
	"flag"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/freshen-io/freshen"
)

// newHashes counts the chunks of after whose hash is not in before, as
// multisets: what the pipeline would embed after the edit.
func newHashes(before, after []freshen.Chunk) int {
	have := map[freshen.ChunkHash]int{}
	for _, c := range before {
		have[c.Hash]++
	}
	n := 0
	for _, c := range after {
		if have[c.Hash] > 0 {
			have[c.Hash]--
			continue
		}
		n++
	}
	return n
}

func paragraphs(doc *freshen.Document) []int {
	var idx []int
	for i, b := range doc.Blocks {
		if b.Kind == freshen.BlockParagraph {
			idx = append(idx, i)
		}
	}
	return idx
}

// paragraphGaps lists where a paragraph can be inserted: between any two
// blocks, except between two items of one list or two rows of one table
// (that is an edit of the list or table, tested separately).
func paragraphGaps(doc *freshen.Document) []int {
	var gaps []int
	for at := 1; at <= len(doc.Blocks); at++ {
		if at < len(doc.Blocks) {
			a, b := doc.Blocks[at-1].Kind, doc.Blocks[at].Kind
			if a == b && (a == freshen.BlockListItem || a == freshen.BlockTableRow) {
				continue
			}
		}
		gaps = append(gaps, at)
	}
	return gaps
}

func withBlocks(doc *freshen.Document, blocks []freshen.Block) *freshen.Document {
	d := *doc
	d.Blocks = blocks
	return &d
}

// edit is one kind of change applied at a random place.
type edit struct {
	name string
	// apply returns the edited document, and whether the edit inserted a
	// block that does not fit with the chunk it lands in (see overflows).
	apply func(c *Chunker, g *gen, doc *freshen.Document) (*freshen.Document, bool)
	// medianOne says the median number of re-embedded chunks must be 1.
	medianOne bool
}

// overflows reports whether block b, inserted before doc.Blocks[at] inside
// a chunk, exceeds MaxTokens together with the part of that chunk before
// the gap or the part after it. That chunk must then be cut by size rather
// than by content. In [A B] with A+P and P+B both over MaxTokens, inserting
// P between A and B can only give [A] [P] [B]: three new chunks.
func overflows(c *Chunker, doc *freshen.Document, at int, b freshen.Block) bool {
	us, _, spans := c.layout(doc.Blocks)
	tok := EstimateTokens(normalizeProse(b.Text))
	for _, sp := range spans {
		if us[sp.start].block < at && at <= us[sp.end].block {
			before, after := 0, 0
			for _, u := range us[sp.start : sp.end+1] {
				if u.block < at {
					before += u.tok
				} else {
					after += u.tok
				}
			}
			return before+tok > c.cfg.MaxTokens || tok+after > c.cfg.MaxTokens
		}
	}
	return false
}

// forcedNear reports whether a chunk that the edit from a to b changed, or
// the chunk just before it, ends at a forced (size-based) cut, in a or in b.
func forcedNear(t testing.TB, c *Chunker, a, b *freshen.Document) bool {
	ca, cb := mustSplit(t, c, a), mustSplit(t, c, b)
	return forcedChanged(c, a, ca, cb) || forcedChanged(c, b, cb, ca)
}

func forcedChanged(c *Chunker, doc *freshen.Document, chunks, other []freshen.Chunk) bool {
	have := map[freshen.ChunkHash]bool{}
	for _, o := range other {
		have[o.Hash] = true
	}
	_, _, spans := c.layout(doc.Blocks)
	for k := range chunks {
		if !have[chunks[k].Hash] && (spans[k].forced || k > 0 && spans[k-1].forced) {
			return true
		}
	}
	return false
}

func insertAt(c *Chunker, doc *freshen.Document, at int, b freshen.Block) (*freshen.Document, bool) {
	return withBlocks(doc, slices.Insert(slices.Clone(doc.Blocks), at, b)), overflows(c, doc, at, b)
}

var edits = []edit{
	{"insert", func(c *Chunker, g *gen, doc *freshen.Document) (*freshen.Document, bool) {
		gaps := paragraphGaps(doc)
		return insertAt(c, doc, gaps[g.r.IntN(len(gaps))], g.paragraph())
	}, true},
	{"insert-anywhere", func(c *Chunker, g *gen, doc *freshen.Document) (*freshen.Document, bool) {
		// Even inside a list or a table.
		return insertAt(c, doc, 1+g.r.IntN(len(doc.Blocks)), g.paragraph())
	}, false},
	{"insert-item", func(c *Chunker, g *gen, doc *freshen.Document) (*freshen.Document, bool) {
		var gaps []int
		for i, b := range doc.Blocks {
			if b.Kind == freshen.BlockListItem {
				gaps = append(gaps, i, i+1)
			}
		}
		item := freshen.Block{Kind: freshen.BlockListItem, Text: g.words(4 + g.r.IntN(17))}
		return insertAt(c, doc, gaps[g.r.IntN(len(gaps))], item)
	}, true},
	{"delete", func(c *Chunker, g *gen, doc *freshen.Document) (*freshen.Document, bool) {
		ps := paragraphs(doc)
		at := ps[g.r.IntN(len(ps))]
		return withBlocks(doc, slices.Delete(slices.Clone(doc.Blocks), at, at+1)), false
	}, false},
	{"edit", func(c *Chunker, g *gen, doc *freshen.Document) (*freshen.Document, bool) {
		ps := paragraphs(doc)
		at := ps[g.r.IntN(len(ps))]
		ws := strings.Fields(doc.Blocks[at].Text)
		k := g.r.IntN(len(ws))
		old := strings.TrimSuffix(ws[k], ".")
		w := g.word()
		for w == old {
			w = g.word()
		}
		ws[k] = strings.Replace(ws[k], old, w, 1)
		blocks := slices.Clone(doc.Blocks)
		blocks[at].Text = strings.Join(ws, " ")
		return withBlocks(doc, blocks), false
	}, true},
}

// TestEditLocality checks the point of the package: one paragraph
// inserted, deleted or edited anywhere in a document of 50+ chunks
// re-embeds at most 2 chunks, and usually 1. Only a size-based cut can
// add a third: an inserted block that does not fit with the chunk it lands
// in (see overflows), or a forced cut next to the change; both are counted
// and reported.
func TestEditLocality(t *testing.T) {
	c, _ := setup(t, Config{})
	seeds, positions := *localitySeeds, 30
	for _, e := range edits {
		t.Run(e.name, func(t *testing.T) {
			var dist [8]int // dist[k]: edits that re-embed k chunks (7: 7 or more)
			var chunks []int
			overflowed, forced := 0, 0
			for seed := range uint64(seeds) {
				g := newGen(seed)
				doc := g.document(25)
				before := mustSplit(t, c, doc)
				chunks = append(chunks, len(before))
				for range positions {
					edited, overflow := e.apply(c, g, doc)
					n := newHashes(before, mustSplit(t, c, edited))
					dist[min(n, len(dist)-1)]++
					limit := 2
					if n > 2 {
						switch {
						case overflow:
							overflowed++
							limit = 3
						case forcedNear(t, c, doc, edited):
							forced++
							limit = 3
						}
					}
					if n > limit {
						t.Errorf("seed %d: %s re-embeds %d chunks, want at most %d", seed, e.name, n, limit)
						if *debugLocality {
							t.Logf("BEFORE\n%s\nAFTER\n%s", describe(t, c, doc, mustSplit(t, c, edited)), describe(t, c, edited, before))
						}
					}
				}
			}
			slices.Sort(chunks)
			if chunks[0] < 50 {
				t.Errorf("generated documents have as few as %d chunks; want 50+", chunks[0])
			}
			t.Logf("%s: %d edits on documents of %d-%d chunks; re-embedded chunks: %s; 3 allowed because the block overflowed its chunk: %d, because of a forced cut: %d",
				e.name, seeds*positions, chunks[0], chunks[len(chunks)-1], formatDist(dist[:]), overflowed, forced)
			if median := medianOf(dist[:]); e.medianOne && median != 1 {
				t.Errorf("median re-embedded chunks = %d, want 1", median)
			}
		})
	}
}

func formatDist(dist []int) string {
	total := 0
	for _, n := range dist {
		total += n
	}
	var parts []string
	for k, n := range dist {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d: %d (%.1f%%)", k, n, 100*float64(n)/float64(total)))
		}
	}
	return strings.Join(parts, ", ")
}

func medianOf(dist []int) int {
	total := 0
	for _, n := range dist {
		total += n
	}
	seen := 0
	for k, n := range dist {
		seen += n
		if 2*seen > total {
			return k
		}
	}
	return len(dist) - 1
}

var (
	localitySeeds = flag.Int("locality-seeds", 25, "documents per edit kind in TestEditLocality")
	debugLocality = flag.Bool("locality-debug", false, "print the chunks around each edit over its bound")
)

// describe prints the chunks of doc that are not in other, with their
// neighbours, unit by unit: tokens, "!" for a unit that meets the content
// condition.
func describe(t testing.TB, c *Chunker, doc *freshen.Document, other []freshen.Chunk) string {
	have := map[freshen.ChunkHash]bool{}
	for _, o := range other {
		have[o.Hash] = true
	}
	us, _, spans := c.layout(doc.Blocks)
	chunks := mustSplit(t, c, doc)
	var b strings.Builder
	for k, sp := range spans {
		near := false
		for d := -1; d <= 1; d++ {
			if j := k + d; j >= 0 && j < len(chunks) && !have[chunks[j].Hash] {
				near = true
			}
		}
		if !near {
			continue
		}
		mark := " "
		if !have[chunks[k].Hash] {
			mark = "*"
		}
		fmt.Fprintf(&b, "%s %3d forced=%-5v", mark, k, sp.forced)
		for _, u := range us[sp.from : sp.end+1] {
			m := ""
			if c.meets(&u) {
				m = "!"
			}
			fmt.Fprintf(&b, " %s:%d%s", u.text[:min(6, len(u.text))], u.tok, m)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
