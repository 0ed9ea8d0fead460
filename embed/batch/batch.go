// Package batch is an Embedder decorator that merges concurrent Embed
// calls into larger batches (a micro-batcher): workers each embedding one
// object's few new chunks become one model call over many texts, which is
// several times faster for the built-in model and fewer requests for a
// remote provider.
//
// It never changes results: each caller gets exactly the vectors of its
// own texts, in order, and an error of a merged call is returned to every
// caller in it.
package batch

import (
	"context"
	"sync"
	"time"

	"github.com/freshen-io/freshen"
)

// Config tunes the batcher.
type Config struct {
	// MaxTexts caps one merged call (default 64).
	MaxTexts int
	// MaxWait is how long the first waiting call may wait for company
	// (default 2ms); an idle embedder never waits longer than this.
	MaxWait time.Duration
	// Parallel is how many merged calls may run at once (default 2).
	Parallel int
}

// Embedder merges concurrent calls to an inner Embedder.
type Embedder struct {
	inner freshen.Embedder
	cfg   Config
	reqs  chan *request
	slots chan struct{}
	once  sync.Once
}

type request struct {
	ctx   context.Context
	texts []string
	done  chan struct{}
	vecs  [][]float32
	err   error
}

var _ freshen.Embedder = (*Embedder)(nil)

// New wraps inner.
func New(inner freshen.Embedder, cfg Config) *Embedder {
	if cfg.MaxTexts <= 0 {
		cfg.MaxTexts = 64
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 2 * time.Millisecond
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 2
	}
	return &Embedder{inner: inner, cfg: cfg, reqs: make(chan *request), slots: make(chan struct{}, cfg.Parallel)}
}

// Model implements freshen.Embedder.
func (b *Embedder) Model() freshen.ModelInfo { return b.inner.Model() }

// CountTokens forwards to the inner embedder when it counts tokens.
func (b *Embedder) CountTokens(text string) int {
	if tc, ok := b.inner.(interface{ CountTokens(string) int }); ok {
		return tc.CountTokens(text)
	}
	return (len(text) + 3) / 4
}

// Embed implements freshen.Embedder.
func (b *Embedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if len(texts) == 0 {
		return nil, nil
	}
	if len(texts) >= b.cfg.MaxTexts {
		// Already a full batch: no reason to wait.
		b.slots <- struct{}{}
		defer func() { <-b.slots }()
		return b.inner.Embed(ctx, texts)
	}
	b.once.Do(func() { go b.loop() })
	r := &request{ctx: ctx, texts: texts, done: make(chan struct{})}
	select {
	case b.reqs <- r:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case <-r.done:
		return r.vecs, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// loop gathers requests into batches and runs them.
func (b *Embedder) loop() {
	for first := range b.reqs {
		batch := []*request{first}
		n := len(first.texts)
		timer := time.NewTimer(b.cfg.MaxWait)
	gather:
		for n < b.cfg.MaxTexts {
			select {
			case r := <-b.reqs:
				batch = append(batch, r)
				n += len(r.texts)
			case <-timer.C:
				break gather
			}
		}
		timer.Stop()
		b.slots <- struct{}{} // wait for a free slot, gathering stops meanwhile
		go func() {
			defer func() { <-b.slots }()
			b.run(batch, n)
		}()
	}
}

func (b *Embedder) run(batch []*request, n int) {
	texts := make([]string, 0, n)
	var live []*request
	for _, r := range batch {
		if r.ctx.Err() != nil {
			r.err = r.ctx.Err()
			close(r.done)
			continue
		}
		live = append(live, r)
		texts = append(texts, r.texts...)
	}
	if len(live) == 0 {
		return
	}
	// The merged call outlives any single caller's context: others wait
	// on it too.
	vecs, err := b.inner.Embed(context.WithoutCancel(live[0].ctx), texts)
	off := 0
	for _, r := range live {
		if err != nil {
			r.err = err
		} else {
			r.vecs = vecs[off : off+len(r.texts)]
		}
		off += len(r.texts)
		close(r.done)
	}
}
