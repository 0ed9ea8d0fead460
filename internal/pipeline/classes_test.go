package pipeline

import (
	"context"
	"errors"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/chunk"
	"github.com/freshen-io/freshen/extract"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// results collects the Results of a pipeline.
type results struct {
	mu  sync.Mutex
	all []Result
}

func (r *results) add(x Result) { r.mu.Lock(); r.all = append(r.all, x); r.mu.Unlock() }

func (r *results) snapshot() []Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Result(nil), r.all...)
}

func (r *results) outcomes() []Outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Outcome
	for _, x := range r.all {
		out = append(out, x.Outcome)
	}
	return out
}

func (b *testBundle) pipelineWith(t *testing.T, cfg Config, src freshen.Source, led Ledger, onDone func(Result)) *Pipeline {
	t.Helper()
	chk, err := chunk.New(chunk.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if src == nil {
		src = b.src
	}
	if led == nil {
		led = b.led
	}
	cfg.Bucket = "b"
	return New(cfg, src, extract.New(extract.Config{}), chk, b.emb, b.idx, led, nil, onDone)
}

func attempts(t *testing.T, b *testBundle, key string) freshen.ObjectRecord {
	t.Helper()
	o, err := b.led.Object(context.Background(), "b", key)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestPermanentErrorParksAtOnce(t *testing.T) {
	_, b := setup(t)
	var rs results
	p := b.pipelineWith(t, Config{MaxAttempts: 5, Backoff: time.Millisecond}, nil, nil, rs.add)
	b.src.Put("a.md", "text/markdown", []byte(doc("A", "Text the provider rejects.")))
	bad := freshen.Permanent(errors.New("provider: 400 input rejected"))
	b.emb.failWith.Store(&bad)
	b.enqueue(t, "a.md")
	if _, err := p.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	o := attempts(t, b, "a.md")
	if o.State != freshen.StateFailed || o.Attempts != 1 || !strings.Contains(o.Reason, "input rejected") {
		t.Fatalf("object = %+v; want parked after one attempt", o)
	}
	if got := rs.outcomes(); len(got) != 1 || got[0] != OutcomeFailed {
		t.Fatalf("outcomes = %v", got)
	}
}

func TestWrongDimensionIsPermanent(t *testing.T) {
	_, b := setup(t)
	b.emb.dim = 7 // the model says 8
	p := b.pipelineWith(t, Config{MaxAttempts: 5, Backoff: time.Millisecond}, nil, nil, nil)
	b.src.Put("a.md", "text/markdown", []byte(doc("A", "Some text.")))
	b.enqueue(t, "a.md")
	if _, err := p.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	o := attempts(t, b, "a.md")
	if o.State != freshen.StateFailed || o.Attempts != 1 || !strings.Contains(o.Reason, "dimension") {
		t.Fatalf("object = %+v; want parked for the wrong dimension", o)
	}
	if n := len(b.indexKeys(t)); n != 0 {
		t.Fatalf("%d keys reached the index", n)
	}
}

// flakyEmbedder fails its first call with err, then works.
type flakyEmbedder struct {
	*fakeEmbedder
	err   error
	calls atomic.Int64
	mu    sync.Mutex
	times []time.Time
}

func (f *flakyEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	f.mu.Lock()
	f.times = append(f.times, time.Now())
	f.mu.Unlock()
	if f.calls.Add(1) == 1 {
		return nil, f.err
	}
	return f.fakeEmbedder.Embed(ctx, texts)
}

func TestRetryAfterIsHonoured(t *testing.T) {
	_, b := setup(t)
	const after = 300 * time.Millisecond
	fe := &flakyEmbedder{fakeEmbedder: b.emb, err: freshen.Retryable(errors.New("429 slow down"), after)}
	chk, _ := chunk.New(chunk.Config{})
	p := New(Config{Bucket: "b", MaxAttempts: 5, Backoff: time.Millisecond, MaxBackoff: time.Millisecond},
		b.src, extract.New(extract.Config{}), chk, fe, b.idx, b.led, nil, nil)
	b.src.Put("a.md", "text/markdown", []byte(doc("A", "Some text.")))
	b.enqueue(t, "a.md")
	if _, err := p.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if o := attempts(t, b, "a.md"); o.State != freshen.StateIndexed {
		t.Fatalf("object = %+v", o)
	}
	if len(fe.times) != 2 {
		t.Fatalf("%d embed calls, want 2", len(fe.times))
	}
	if gap := fe.times[1].Sub(fe.times[0]); gap < after {
		t.Fatalf("retried after %s; the provider asked for %s (backoff alone is 1ms)", gap, after)
	}
}

func TestBackoffHasJitterAndCap(t *testing.T) {
	p := New(Config{Backoff: 100 * time.Millisecond, MaxBackoff: time.Second}, nil, nil, nil, &fakeEmbedder{}, nil, nil, nil, nil)
	seen := map[time.Duration]bool{}
	for i := 0; i < 50; i++ {
		d := p.backoff(3, errors.New("x")) // 400ms before jitter
		if d < 200*time.Millisecond || d > 400*time.Millisecond {
			t.Fatalf("backoff(3) = %s, want within [200ms, 400ms]", d)
		}
		seen[d] = true
	}
	if len(seen) < 10 {
		t.Fatalf("only %d distinct delays in 50: no jitter", len(seen))
	}
	if d := p.backoff(30, errors.New("x")); d > time.Second {
		t.Fatalf("backoff(30) = %s over the 1s cap", d)
	}
}

// changingSource reports every Open as a changed object n times.
type changingSource struct {
	freshen.Source
	n atomic.Int64
}

func (s *changingSource) Open(ctx context.Context, obj freshen.ObjectInfo) (io.ReadCloser, error) {
	if s.n.Add(-1) >= 0 {
		return nil, freshen.ErrPreconditionFailed
	}
	return s.Source.Open(ctx, obj)
}

func TestChangedWhileReadingIsNotAnAttempt(t *testing.T) {
	_, b := setup(t)
	src := &changingSource{Source: b.src}
	src.n.Store(6) // more than MaxAttempts
	p := b.pipelineWith(t, Config{MaxAttempts: 3, Backoff: time.Millisecond}, src, nil, nil)
	b.src.Put("busy.md", "text/markdown", []byte(doc("Busy", "Rewritten all the time.")))
	b.enqueue(t, "busy.md")
	if _, err := p.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if o := attempts(t, b, "busy.md"); o.State != freshen.StateIndexed {
		t.Fatalf("object = %+v; six precondition failures must not park it", o)
	}
}

// partitionedLedger loses every lease at the first heartbeat.
type partitionedLedger struct {
	Ledger
	extends atomic.Int64
}

func (l *partitionedLedger) Extend(ctx context.Context, ls *freshen.Lease, ttl time.Duration) error {
	l.extends.Add(1)
	return freshen.ErrLeaseLost
}

// TestLostLeaseStopsTheWorker: a worker whose lease was taken over stops
// before it writes the index, and records nothing against the key.
func TestLostLeaseStopsTheWorker(t *testing.T) {
	_, b := setup(t)
	led := &partitionedLedger{Ledger: b.led}
	var rs results
	p := b.pipelineWith(t, Config{LeaseTTL: 150 * time.Millisecond, Backoff: time.Millisecond}, nil, led, rs.add)
	b.emb.block.Store(true) // a slow embedder: only the heartbeat ends the wait
	b.src.Put("slow.md", "text/markdown", []byte(doc("Slow", "Takes forever to embed.")))
	b.enqueue(t, "slow.md")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	must(t, p.Start(ctx))
	deadline := time.Now().Add(10 * time.Second)
	for len(rs.outcomes()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	p.Stop()
	if got := rs.outcomes(); len(got) == 0 || got[0] != OutcomeLeaseLost {
		t.Fatalf("outcomes = %v, want lease-lost", got)
	}
	if n := len(b.indexKeys(t)); n != 0 {
		t.Fatalf("a worker without a lease wrote %d keys to the index", n)
	}
	if _, err := b.led.Object(context.Background(), "b", "slow.md"); !errors.Is(err, freshen.ErrNotFound) {
		t.Fatalf("a worker without a lease recorded the key: %v", err)
	}
}

// TestHeartbeatKeepsSlowKeys: a key that takes longer than its lease TTL
// is not handed to a second worker while the first still works on it.
func TestHeartbeatKeepsSlowKeys(t *testing.T) {
	_, b := setup(t)
	b.emb.slow = 400 * time.Millisecond
	var rs results
	p := b.pipelineWith(t, Config{LeaseTTL: 150 * time.Millisecond, Backoff: time.Millisecond}, nil, nil, rs.add)
	b.src.Put("slow.md", "text/markdown", []byte(doc("Slow", "Takes a while to embed.")))
	b.enqueue(t, "slow.md")
	if _, err := p.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := rs.outcomes(); len(got) != 1 || got[0] != OutcomeIndexed {
		t.Fatalf("outcomes = %v, want one indexed (no second worker, no lost lease)", got)
	}
	if n := b.emb.texts.Load(); n != 1 {
		t.Fatalf("embedded %d texts, want 1", n)
	}
}

// TestStopIsTwoPhase: Stop stops leasing, waits ShutdownTimeout for the
// key in flight, then cancels it and gives its lease back uncounted.
func TestStopIsTwoPhase(t *testing.T) {
	_, b := setup(t)
	b.emb.block.Store(true)
	var rs results
	p := b.pipelineWith(t, Config{ShutdownTimeout: 100 * time.Millisecond}, nil, nil, rs.add)
	b.src.Put("a.md", "text/markdown", []byte(doc("A", "In flight at shutdown.")))
	b.enqueue(t, "a.md")
	must(t, p.Start(context.Background()))
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if n, _, _ := b.led.Backlog(context.Background()); n == 1 {
			if q, _ := b.led.Lease(context.Background(), freshen.LeaseParams{Owner: "probe", Max: 1, TTL: time.Millisecond}); len(q) == 0 {
				break // leased by the pipeline
			} else {
				b.led.Release(context.Background(), q[0])
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !p.Stop() {
		t.Fatal("Stop did not have to cancel the blocked key")
	}
	p.Stop() // harmless
	if got := rs.outcomes(); len(got) != 1 || got[0] != OutcomeRequeued {
		t.Fatalf("outcomes = %v, want requeued", got)
	}
	ls, err := b.led.Lease(context.Background(), freshen.LeaseParams{Owner: "next", Max: 1, TTL: time.Minute})
	must(t, err)
	if len(ls) != 1 || ls[0].Attempts != 0 {
		t.Fatalf("after Stop: leases %+v; want the key free at once with no attempt counted", ls)
	}
}

// cancelOnce makes the first Embed call wait until its context is
// cancelled (as a worker that lost its lease or is stopping), and signals
// when it has started.
type cancelOnce struct {
	*fakeEmbedder
	started chan struct{}
	calls   atomic.Int64
}

func (c *cancelOnce) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if c.calls.Add(1) == 1 {
		close(c.started)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return c.fakeEmbedder.Embed(ctx, texts)
}

// TestWaiterDoesNotInheritCancellation: a worker waiting for another
// worker's embedding of the same chunk does not fail when that worker is
// cancelled; it embeds the chunk itself.
func TestWaiterDoesNotInheritCancellation(t *testing.T) {
	_, b := setup(t)
	emb := &cancelOnce{fakeEmbedder: b.emb, started: make(chan struct{})}
	c := newEmbedCache(b.led, emb, 8)
	chunks := []freshen.Chunk{{Hash: "h-shared", Text: "the same paragraph in two objects"}}
	first, cancelFirst := context.WithCancel(context.Background())
	firstErr := make(chan error, 1)
	go func() {
		_, _, _, err := c.vectors(first, "fake", chunks)
		firstErr <- err
	}()
	<-emb.started
	second := make(chan error, 1)
	var vecs map[freshen.ChunkHash][]float32
	go func() {
		var err error
		vecs, _, _, err = c.vectors(context.Background(), "fake", chunks)
		second <- err
	}()
	// Let the second caller register as a waiter before the first is
	// cancelled: it waits on the in-flight call, which is what the bug
	// needs; if it came later it would embed on its own anyway.
	for c.shared.Load() == 0 {
		runtime.Gosched()
	}
	cancelFirst()
	if err := <-firstErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("first caller: %v", err)
	}
	if err := <-second; err != nil {
		t.Fatalf("the waiting caller inherited the other's cancellation: %v", err)
	}
	if len(vecs["h-shared"]) != 8 {
		t.Fatalf("vectors = %v", vecs)
	}
}
