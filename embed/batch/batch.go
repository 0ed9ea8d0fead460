// Package batch is an Embedder decorator that merges concurrent Embed
// calls into larger batches (a micro-batcher): workers each embedding one
// object's few new chunks become one model call over many texts, which is
// several times faster for the built-in model and fewer requests for a
// remote provider.
//
// It never changes results: each caller gets exactly the vectors of its
// own texts, in order. A retryable error of a merged call (the provider is
// down) is returned to every caller in it; a permanent one (an input the
// model rejects) is pinned on the callers whose own texts cause it by
// running each of them alone again, so one bad input never fails its
// neighbours.
package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/freshen-io/freshen"
)

// ErrClosed is returned by Embed after Close.
var ErrClosed = errors.New("batch: embedder closed")

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

// Embedder merges concurrent calls to an inner Embedder. Its gathering
// goroutine starts with the first call that can be merged and stops at
// Close.
type Embedder struct {
	inner   freshen.Embedder
	cfg     Config
	reqs    chan *request
	slots   chan struct{}
	closing chan struct{}

	mu      sync.Mutex
	closed  bool
	started bool
	// wg counts Embed calls in progress, the gathering loop and the
	// merged calls it started; Close waits for all of them.
	wg sync.WaitGroup
}

type request struct {
	ctx   context.Context
	texts []string
	done  chan struct{}
	vecs  [][]float32
	err   error
}

var (
	_ freshen.Embedder     = (*Embedder)(nil)
	_ freshen.TokenCounter = (*Embedder)(nil)
)

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
	return &Embedder{
		inner:   inner,
		cfg:     cfg,
		reqs:    make(chan *request),
		slots:   make(chan struct{}, cfg.Parallel),
		closing: make(chan struct{}),
	}
}

// Model implements freshen.Embedder.
func (b *Embedder) Model() freshen.ModelInfo { return b.inner.Model() }

// CountTokens forwards to the inner embedder's own measure, if it has one.
func (b *Embedder) CountTokens(text string) int { return freshen.CountTokens(b.inner, text) }

// EmbedQuery implements freshen.QueryEmbedder: a query goes straight to
// the inner embedder's query side when it has one (it is not merged with
// documents, whose input type differs), else through Embed.
func (b *Embedder) EmbedQuery(ctx context.Context, query string) ([]float32, error) {
	if q, ok := b.inner.(freshen.QueryEmbedder); ok {
		return q.EmbedQuery(ctx, query)
	}
	vecs, err := b.Embed(ctx, []string{query})
	if err != nil {
		return nil, err
	}
	return vecs[0], nil
}

// Embed implements freshen.Embedder. After Close it fails with ErrClosed.
func (b *Embedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if !b.enter(len(texts) > 0 && len(texts) < b.cfg.MaxTexts) {
		return nil, ErrClosed
	}
	defer b.wg.Done()
	if len(texts) == 0 {
		return nil, nil
	}
	if freshen.IsUrgent(ctx) {
		// A fresh edit waits neither for company nor for a slot behind
		// merged backlog: it goes straight to the inner embedder.
		return b.embed(ctx, texts)
	}
	if len(texts) >= b.cfg.MaxTexts {
		// Already a full batch: no reason to wait.
		select {
		case b.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		defer func() { <-b.slots }()
		return b.embed(ctx, texts)
	}
	r := &request{ctx: ctx, texts: texts, done: make(chan struct{})}
	select {
	case b.reqs <- r:
	case <-b.closing:
		return nil, ErrClosed
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

// enter registers a call, starting the gathering loop if the call will
// need it. It reports false once Close has begun. Every Add happens under
// mu before closed is set, so none can race with Close's Wait.
func (b *Embedder) enter(merge bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.wg.Add(1)
	if merge && !b.started {
		b.started = true
		b.wg.Add(1)
		go b.loop()
	}
	return true
}

// Close stops the gathering loop and waits until every call in progress,
// merged or not, has returned: no goroutine of the batcher and no call to
// the inner embedder outlives it. Requests already gathered still run.
// It does not close the inner embedder. A second Close does nothing.
func (b *Embedder) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	close(b.closing)
	b.mu.Unlock()
	b.wg.Wait()
	return nil
}

// loop gathers requests into batches and runs them, until Close.
func (b *Embedder) loop() {
	defer b.wg.Done()
	for {
		var first *request
		select {
		case first = <-b.reqs:
		case <-b.closing:
			return
		}
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
			case <-b.closing:
				break gather // run what was accepted, then stop
			}
		}
		timer.Stop()
		b.slots <- struct{}{} // wait for a free slot, gathering stops meanwhile
		b.wg.Add(1)           // the loop's own count is held, so this cannot race Wait
		go func() {
			defer b.wg.Done()
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
	// The merged call outlives any single caller's context, since others
	// wait on it too, but not all of them: with every caller gone its
	// result is wasted, and Close would wait for it.
	ctx, stop := whileAnyWaits(live)
	// The merged call is metered on its own; each caller is then told
	// its share of the tokens the provider reported.
	var m freshen.Meter
	vecs, err := b.embed(freshen.WithMeter(ctx, &m), texts)
	stop()
	b.share(&m, live)
	if err != nil && len(live) > 1 && freshen.IsPermanent(err) {
		// Some input is bad, and the same texts would fail the same way:
		// find out whose by running each caller alone, under its own ctx
		// since only that caller waits for it.
		for _, r := range live {
			if r.err = r.ctx.Err(); r.err == nil {
				r.vecs, r.err = b.embed(r.ctx, r.texts)
			}
			close(r.done)
		}
		return
	}
	off := 0
	for _, r := range live {
		if err != nil {
			r.err = err
		} else {
			// A full slice expression: a caller appending to its result
			// must not write into its neighbour's.
			r.vecs = vecs[off : off+len(r.texts) : off+len(r.texts)]
		}
		off += len(r.texts)
		close(r.done)
	}
}

// share reports to each caller's meter its part of the tokens m saw, in
// proportion to the tokens of its own texts, so that the callers' meters
// add up to exactly what the provider reported.
func (b *Embedder) share(m *freshen.Meter, live []*request) {
	tokens, ok := m.Tokens()
	if !ok {
		return
	}
	weights := make([]int64, len(live))
	for i, r := range live {
		for _, t := range r.texts {
			weights[i] += int64(freshen.CountTokens(b.inner, t))
		}
	}
	for i, n := range freshen.Shares(tokens, weights) {
		freshen.ReportUsage(live[i].ctx, n)
	}
}

// whileAnyWaits returns a context that is done once every request's
// context is, and a function releasing it.
func whileAnyWaits(reqs []*request) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(reqs[0].ctx))
	var left atomic.Int64
	left.Store(int64(len(reqs)))
	stops := make([]func() bool, len(reqs))
	for i, r := range reqs {
		stops[i] = context.AfterFunc(r.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, s := range stops {
			s()
		}
		cancel()
	}
}

// embed calls the inner embedder and checks that it kept the contract's
// one vector per text, which the split into callers relies on.
func (b *Embedder) embed(ctx context.Context, texts []string) ([][]float32, error) {
	vecs, err := b.inner.Embed(ctx, texts)
	if err != nil {
		return nil, err
	}
	if len(vecs) != len(texts) {
		return nil, fmt.Errorf("batch: inner embedder %s returned %d vectors for %d texts", b.inner.Model().Name, len(vecs), len(texts))
	}
	return vecs, nil
}
