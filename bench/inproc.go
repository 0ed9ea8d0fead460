package main

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/chunk"
	"github.com/freshen-io/freshen/extract"
	"github.com/freshen-io/freshen/index/embedded"
	"github.com/freshen-io/freshen/internal/memsource"
	"github.com/freshen-io/freshen/internal/pipeline"
	"github.com/freshen-io/freshen/ledger/sqlite"
)

// stack is an in-process freshen over an in-memory bucket.
type stack struct {
	dir string
	src *memsource.Source
	led *sqlite.Ledger
	idx *embedded.Index
	chk *chunk.Chunker
	emb freshen.Embedder
	p   *pipeline.Pipeline
}

func newStack(ctx context.Context, emb freshen.Embedder, workers int, onDone func(pipeline.Result)) (*stack, error) {
	dir, err := os.MkdirTemp("", "freshen-bench-")
	if err != nil {
		return nil, err
	}
	s := &stack{dir: dir, src: memsource.New("bench"), emb: emb}
	if s.led, err = sqlite.Open(ctx, filepath.Join(dir, "ledger.db")); err != nil {
		return nil, err
	}
	if s.idx, err = embedded.Open(ctx, filepath.Join(dir, "index.db"), emb.Model().Dim); err != nil {
		return nil, err
	}
	if s.chk, err = chunk.New(chunk.Config{}); err != nil {
		return nil, err
	}
	s.p = pipeline.New(pipeline.Config{Bucket: "bench", Workers: workers, Backoff: 10 * time.Millisecond},
		s.src, extract.New(extract.Config{}), s.chk, emb, s.idx, s.led, nil, onDone)
	return s, nil
}

func (s *stack) close() {
	s.idx.Close()
	s.led.Close()
	os.RemoveAll(s.dir)
}

// sync enqueues keys and processes them all.
func (s *stack) sync(ctx context.Context, keys ...string) error {
	var cs []freshen.Change
	for _, k := range keys {
		cs = append(cs, freshen.Change{Bucket: "bench", Key: k, EventTime: time.Now()})
	}
	if _, err := s.led.Enqueue(ctx, cs); err != nil {
		return err
	}
	_, err := s.p.Drain(ctx)
	return err
}

var words = strings.Fields(`river mountain budget invoice server cluster garden recipe harbor engine customer
	market schedule library window winter summer lantern orchard bridge valley protocol contract meeting journey
	harvest signal circuit forest village kitchen painting melody planet theory student teacher hospital railway
	airport factory battery camera language history science weather ocean desert island castle festival museum
	theater election currency software network the of and to in is for on with as by at from that this it`)

func paragraph(r *rand.Rand, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		w := words[r.Intn(len(words))]
		if i == 0 || strings.HasSuffix(b.String(), ". ") {
			w = strings.ToUpper(w[:1]) + w[1:]
		}
		b.WriteString(w)
		if r.Intn(10) == 0 || i == n-1 {
			b.WriteString(".")
		}
		if i < n-1 {
			b.WriteString(" ")
		}
	}
	return b.String()
}

// pipelineCeiling processes small documents with a zero-cost embedder.
func pipelineCeiling(ctx context.Context, quick bool) (objsPerS float64, chunksPerObj int, err error) {
	n := 2000
	if quick {
		n = 300
	}
	s, err := newStack(ctx, &countingEmbedder{}, 4, nil)
	if err != nil {
		return 0, 0, err
	}
	defer s.close()
	r := rand.New(rand.NewSource(1))
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("docs/%05d.md", i)
		var b strings.Builder
		fmt.Fprintf(&b, "# Document %d\n\n", i)
		for p := 0; p < 6; p++ {
			b.WriteString(paragraph(r, 60+r.Intn(60)) + "\n\n")
		}
		s.src.Put(keys[i], "text/markdown", []byte(b.String()))
	}
	start := time.Now()
	if err := s.sync(ctx, keys...); err != nil {
		return 0, 0, err
	}
	sec := time.Since(start).Seconds()
	sum, err := s.led.Summary(ctx)
	if err != nil {
		return 0, 0, err
	}
	if sum.Indexed != n {
		return 0, 0, fmt.Errorf("pipeline ceiling: %d of %d objects indexed", sum.Indexed, n)
	}
	return float64(n) / sec, sum.Chunks / n, nil
}
