package chunk

import (
	"testing"

	"github.com/freshen-io/freshen"
)

// BenchmarkSplit measures Split on a generated Markdown-like document of
// about 200 KB. Run: go test ./chunk/ -run '^$' -bench Split -benchmem
func BenchmarkSplit(b *testing.B) {
	c, _ := setup(b, Config{})
	g := newGen(1)
	doc := &freshen.Document{}
	size := 0
	for size < 200<<10 {
		for _, blk := range g.section(2 + g.r.IntN(2)) {
			doc.Blocks = append(doc.Blocks, blk)
			size += len(blk.Text)
		}
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	var n int
	for b.Loop() {
		n = len(mustSplit(b, c, doc))
	}
	b.ReportMetric(float64(n), "chunks")
}
