// Package pipeline is freshen's worker pool: it leases dirty keys from the
// ledger, reads each key's current state from the source, extracts,
// chunks, embeds only chunks whose vectors are not cached, writes the
// index behind a write-ahead intent, and commits to the ledger. Each
// lease is extended while its key is worked on; failures are handled by
// their class (freshen.IsPermanent, freshen.RetryAfter,
// freshen.IsNotAttempt).
//
// It must never trust an event's claims about an object (the source is
// read every time), never write the index without an intent recorded
// first under its current lease, never go on working on a key whose lease
// it lost, and never acknowledge a key before the ledger commit.
package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/internal/service"
)

// Ledger is what the pipeline needs of freshen's ledger.
type Ledger interface {
	freshen.Queue
	freshen.Catalog
	freshen.EmbeddingCache
}

// Config tunes the pipeline. Zero fields take the defaults in Defaults.
type Config struct {
	Bucket string
	// Workers is how many keys are processed at once.
	Workers int
	// Match reports whether a key is watched; others are removed from
	// the index if present and otherwise ignored. Nil watches everything.
	Match func(key string) bool
	// MaxObjectBytes skips larger objects (recorded, not retried).
	MaxObjectBytes int64
	// MaxChunks and MaxTokens (the chunker's estimate) skip an object
	// whose chunks exceed them, before any of it is embedded.
	MaxChunks, MaxTokens int
	// MaxAttempts before a failing key is parked as failed.
	MaxAttempts int
	// LeaseTTL bounds how long a crashed worker keeps a key; a live
	// worker extends its lease every LeaseTTL/3 while it works.
	LeaseTTL time.Duration
	// Backoff is the delay before the first retry; it doubles per attempt
	// up to MaxBackoff, with jitter, and yields to a longer retry-after
	// that a provider asks for.
	Backoff, MaxBackoff time.Duration
	// ShutdownTimeout is how long Stop lets in-flight keys finish before
	// it cancels them (they are then redone by the next lease).
	ShutdownTimeout time.Duration
	// EmbedBatch is how many texts go to the embedder per call.
	EmbedBatch int
	// Owner names this pool in its leases; empty picks a random name.
	Owner string
	// BudgetTokensPerDay stops embedding for the rest of the UTC day once
	// that many tokens were embedded (0: no budget). Keys wait, uncounted.
	BudgetTokensPerDay int64
	// SpentToday, if set, counts the tokens spent today against the
	// budget (default: this ledger's counters).
	SpentToday func(ctx context.Context) (int64, error)
	// Reuse, if set, is asked for the vectors of chunks missing from the
	// ledger's cache before they are embedded: a generation being built
	// for new chunk settings reuses the serving one's vectors of every
	// chunk whose text is unchanged.
	Reuse func(ctx context.Context, model string, chunks []freshen.Chunk) (map[freshen.ChunkHash][]float32, error)
	// Sidecars reads each object's metadata sidecar (KEY.metadata.json)
	// and treats sidecars as tags of their document, never as documents.
	Sidecars bool
	// Tracing makes the spans of each object (default: OpenTelemetry's
	// global provider, a no-op unless tracing is set up).
	Tracing trace.TracerProvider
}

// Defaults are the defaults of Config.
var Defaults = Config{
	Workers:         4,
	MaxAttempts:     5,
	LeaseTTL:        5 * time.Minute,
	Backoff:         time.Second,
	MaxBackoff:      5 * time.Minute,
	ShutdownTimeout: 10 * time.Second,
	EmbedBatch:      32,
	MaxObjectBytes:  32 << 20,
	MaxChunks:       5000,
	MaxTokens:       1_000_000,
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	d := Defaults
	set := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setD := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	set(&c.Workers, d.Workers)
	set(&c.MaxAttempts, d.MaxAttempts)
	set(&c.EmbedBatch, d.EmbedBatch)
	set(&c.MaxChunks, d.MaxChunks)
	set(&c.MaxTokens, d.MaxTokens)
	setD(&c.LeaseTTL, d.LeaseTTL)
	setD(&c.Backoff, d.Backoff)
	setD(&c.MaxBackoff, d.MaxBackoff)
	setD(&c.ShutdownTimeout, d.ShutdownTimeout)
	if c.MaxObjectBytes == 0 {
		c.MaxObjectBytes = d.MaxObjectBytes
	}
	return c
}

// Validate reports every mistake in the effective configuration.
func (c Config) Validate() error {
	c = c.WithDefaults()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Workers < 1 || c.Workers > 256 {
		bad("workers = %d: want 1..256", c.Workers)
	}
	if c.MaxAttempts < 1 {
		bad("limits.max-attempts = %d: want at least 1", c.MaxAttempts)
	}
	if c.MaxObjectBytes < 1 || c.MaxObjectBytes > 1<<30 {
		bad("limits.max-object-bytes = %d: want 1 byte to 1GiB (an object is read into memory to be extracted)", c.MaxObjectBytes)
	}
	if c.MaxChunks < 1 || c.MaxTokens < 1 {
		bad("limits: want max-chunks-per-object and max-tokens-per-object of at least 1, got %d and %d", c.MaxChunks, c.MaxTokens)
	}
	if c.LeaseTTL < time.Second {
		bad("retry.lease-ttl = %s: want at least 1s (workers extend their leases every third of it)", c.LeaseTTL)
	}
	if c.Backoff < 0 || c.MaxBackoff < c.Backoff {
		bad("retry: want 0 <= backoff <= max-backoff, got %s and %s", c.Backoff, c.MaxBackoff)
	}
	if c.ShutdownTimeout < 0 {
		bad("shutdown-timeout = %s must not be negative", c.ShutdownTimeout)
	}
	return errors.Join(errs...)
}

// Outcome says what processing a key did.
type Outcome string

const (
	OutcomeIndexed   Outcome = "indexed"
	OutcomeUnchanged Outcome = "unchanged"
	OutcomeDeleted   Outcome = "deleted"
	// OutcomeAbsent: the key does not exist and never was indexed (an
	// event for a key variant, a create-then-delete).
	OutcomeAbsent  Outcome = "absent"
	OutcomeSkipped Outcome = "skipped"
	// OutcomeRetry: the attempt failed and the key will be retried.
	OutcomeRetry Outcome = "retry"
	// OutcomeFailed: the key is parked as a dead letter.
	OutcomeFailed Outcome = "failed"
	// OutcomeRequeued: the key was given back without counting an
	// attempt (shutdown, or it changed while being read).
	OutcomeRequeued Outcome = "requeued"
	// OutcomeLeaseLost: the lease expired and another worker owns the
	// key now; this worker's work was discarded.
	OutcomeLeaseLost Outcome = "lease-lost"
)

// Result describes one processed key, for progress and metrics.
type Result struct {
	Key     string
	Outcome Outcome
	Reason  string
	// Chunks is the object's chunk count after processing.
	Chunks int
	Work   freshen.Counters
	// TokensReused estimates (by the chunker's measure) the tokens of the
	// chunks of a re-read object that needed no embedding.
	TokensReused int64
	// FirstSeen is when the earliest change to the key was noticed.
	FirstSeen time.Time
	Duration  time.Duration
	// EmbedTime is the part of Duration spent waiting for the embedder.
	EmbedTime time.Duration
	Err       error
	// TraceID is the object's trace (empty when tracing is off).
	TraceID string
	// Origin is where the change came from ("webhook", "reconcile"...).
	Origin string
}

// Pipeline processes dirty keys. Start/Stop run it as a service (freshen
// run); Drain processes until the queue is empty (freshen sync).
type Pipeline struct {
	cfg    Config
	src    freshen.Source
	ext    freshen.Extractor
	chk    freshen.Chunker
	emb    freshen.Embedder
	idx    freshen.Index
	led    Ledger
	log    *slog.Logger
	cache  *embedCache
	onDone func(Result)
	wake   chan struct{}
	tracer trace.Tracer

	mu        sync.Mutex
	running   bool
	stopLease context.CancelFunc
	stopWork  context.CancelFunc
	done      chan struct{}

	// paused is set while the workers cannot write (the disk is full, or
	// the index unreachable): since when, and the error.
	paused atomic.Pointer[pause]
	// budgetDay is the UTC day the budget was last found spent, and
	// budgetErr the error that said so.
	budgetDay atomic.Pointer[string]
	budgetErr atomic.Pointer[error]
}

// BudgetSpent returns the error that paused embedding for the rest of
// the UTC day, or nil while today's budget lasts.
func (p *Pipeline) BudgetSpent() error {
	day := p.budgetDay.Load()
	if day == nil || *day != time.Now().UTC().Format("2006-01-02") {
		return nil
	}
	if e := p.budgetErr.Load(); e != nil {
		return *e
	}
	return nil
}

type pause struct {
	since time.Time
	err   error
}

// Health reports why the pipeline cannot make progress now (the disk
// holding its ledger or index is full, or the index's server cannot be
// reached), or nil. It recovers by itself.
func (p *Pipeline) Health() error {
	if f := p.paused.Load(); f != nil && errors.Is(f.err, freshen.ErrIndexUnavailable) {
		return fmt.Errorf("the index is unavailable since %s: changes wait in the queue until it answers (%w)",
			f.since.UTC().Format(time.RFC3339), f.err)
	}
	if f := p.paused.Load(); f != nil {
		return fmt.Errorf("no space left for the ledger or the index since %s: new changes wait in the queue until space is freed (%w)",
			f.since.UTC().Format(time.RFC3339), f.err)
	}
	return nil
}

// NoteWrite tells the pipeline how a write to the ledger outside it (the
// intake queueing events) went: a full disk pauses the workers as their
// own full writes do, and a write that succeeds again resumes them.
func (p *Pipeline) NoteWrite(err error) {
	switch {
	case errors.Is(err, freshen.ErrNoSpace):
		p.notePause(err)
	case err == nil:
		p.noteProgress()
	}
}

// noteBudget logs, once per day, that the budget is spent.
func (p *Pipeline) noteBudget(err error) {
	p.budgetErr.Store(&err)
	day := time.Now().UTC().Format("2006-01-02")
	if prev := p.budgetDay.Swap(&day); prev == nil || *prev != day {
		p.log.Warn("daily embedding budget spent; changes wait until it renews", "err", err)
	}
}

// notePause records a write that failed for lack of space, or an index
// that cannot be reached: the workers pause until a commit succeeds.
func (p *Pipeline) notePause(err error) {
	if p.paused.CompareAndSwap(nil, &pause{since: time.Now(), err: err}) {
		if errors.Is(err, freshen.ErrIndexUnavailable) {
			p.log.Error("the index is unavailable; pausing until it answers", "err", err)
		} else {
			p.log.Error("no space left for the ledger or the index; pausing until space is freed", "err", err)
		}
	}
}

// noteProgress clears the paused state after a successful commit.
func (p *Pipeline) noteProgress() {
	if f := p.paused.Swap(nil); f != nil {
		p.log.Warn("writes succeed again; resuming", "paused_for", time.Since(f.since).Round(time.Second))
	}
}

// New builds a pipeline. onDone, if not nil, is called from worker
// goroutines after each key (it must be safe for concurrent use).
func New(cfg Config, src freshen.Source, ext freshen.Extractor, chk freshen.Chunker, emb freshen.Embedder,
	idx freshen.Index, led Ledger, log *slog.Logger, onDone func(Result)) *Pipeline {
	cfg = cfg.WithDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Owner == "" {
		var b [6]byte
		rand.Read(b[:])
		cfg.Owner = "worker-" + hex.EncodeToString(b[:])
	}
	p := &Pipeline{cfg: cfg, src: src, ext: ext, chk: chk, emb: emb, idx: idx, led: led, log: log,
		cache: newEmbedCache(led, emb, cfg.EmbedBatch), onDone: onDone, wake: make(chan struct{}, 1)}
	p.cache.budget = cfg.BudgetTokensPerDay
	p.cache.reuse = cfg.Reuse
	if cfg.SpentToday != nil {
		p.cache.spentToday = cfg.SpentToday
	}
	tp := cfg.Tracing
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	p.tracer = tp.Tracer("github.com/freshen-io/freshen/internal/pipeline")
	return p
}

// Wake makes idle workers look for work at once instead of at their next
// poll. It never blocks.
func (p *Pipeline) Wake() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Recover queues every key whose index writes may not have been committed
// before a crash; processing them converges index and ledger.
func (p *Pipeline) Recover(ctx context.Context) (int, error) {
	keys, err := p.led.KeysWithIntents(ctx)
	if err != nil || len(keys) == 0 {
		return 0, err
	}
	for i := range keys {
		keys[i].EventTime = time.Now()
	}
	_, err = p.led.Enqueue(ctx, keys)
	return len(keys), err
}

// Drain processes keys until the queue is empty, waiting out retry
// backoffs, and returns how many keys it processed. It is what `freshen
// sync` runs; a key that keeps failing ends parked, so Drain terminates.
func (p *Pipeline) Drain(ctx context.Context) (int, error) {
	leaseCtx, stopLease := context.WithCancel(ctx)
	defer stopLease()
	return p.run(leaseCtx, ctx, true)
}

// Start runs the workers until Stop (or until ctx is done).
func (p *Pipeline) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running {
		return nil
	}
	leaseCtx, stopLease := context.WithCancel(ctx)
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	p.running, p.stopLease, p.stopWork, p.done = true, stopLease, stopWork, make(chan struct{})
	done := p.done
	go func() {
		defer close(done)
		if _, err := p.run(leaseCtx, workCtx, false); err != nil && leaseCtx.Err() == nil {
			p.log.Error("pipeline stopped", "err", err)
		}
	}()
	return nil
}

// Stop stops in two phases: it stops leasing at once and lets in-flight
// keys finish for up to ShutdownTimeout, then cancels them (their leases
// are released, so they are redone without waiting for expiry). It
// returns when every worker goroutine has returned; it reports whether
// in-flight keys had to be cancelled.
func (p *Pipeline) Stop() (cancelled bool) {
	p.mu.Lock()
	if !p.running {
		p.mu.Unlock()
		return false
	}
	p.running = false
	stopLease, stopWork, done := p.stopLease, p.stopWork, p.done
	p.mu.Unlock()
	stopLease()
	t := time.NewTimer(p.cfg.ShutdownTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		cancelled = true
		p.log.Warn("in-flight objects did not finish in time; cancelling them", "timeout", p.cfg.ShutdownTimeout)
		stopWork()
		<-done
	}
	stopWork()
	return cancelled
}

// run leases under leaseCtx and processes under workCtx until leaseCtx
// is done (or, when drain is set, the queue is empty).
func (p *Pipeline) run(leaseCtx, workCtx context.Context, drain bool) (int, error) {
	// Every worker takes any lease; one more takes only fresh ones, so a
	// fresh edit never waits for a worker while all of them are busy
	// with backlog (a backfill behind a provider's rate limit).
	leases, fresh := make(chan freshen.Lease), make(chan freshen.Lease)
	var wg sync.WaitGroup
	var mu sync.Mutex
	processed := 0
	work := func(ch <-chan freshen.Lease) {
		defer wg.Done()
		for ls := range ch {
			p.handle(workCtx, ls)
			mu.Lock()
			processed++
			mu.Unlock()
		}
	}
	for i := 0; i < p.cfg.Workers; i++ {
		wg.Add(1)
		go work(leases)
	}
	wg.Add(1)
	go work(fresh)
	err := p.dispatch(leaseCtx, leases, fresh, drain)
	close(leases)
	close(fresh)
	wg.Wait()
	if errors.Is(err, context.Canceled) && leaseCtx.Err() != nil && !drain {
		err = nil
	}
	return processed, err
}

// dispatch leases keys and hands them to the workers.
func (p *Pipeline) dispatch(ctx context.Context, out, fresh chan<- freshen.Lease, drain bool) error {
	const poll = 500 * time.Millisecond
	var wait time.Duration // the current wait while paused
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := p.BudgetSpent(); err != nil && drain {
			// `freshen sync` stops and says so; the keys stay queued.
			return err
		}
		n := p.cfg.Workers
		if f := p.paused.Load(); f != nil {
			if drain {
				// `freshen sync` stops and says so; the keys stay queued.
				return f.err
			}
			// Probe with one key at a time, less and less often, until a
			// commit succeeds again: no log flood, no busy loop.
			wait = min(max(2*wait, time.Second), 30*time.Second)
			if !service.Sleep(ctx, wait) {
				return ctx.Err()
			}
			n = 1
		} else {
			wait = 0
		}
		ls, err := p.led.Lease(ctx, freshen.LeaseParams{Owner: p.cfg.Owner, Max: n, TTL: p.cfg.LeaseTTL})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, freshen.ErrNoSpace) {
				p.notePause(err)
				continue
			}
			p.log.Warn("lease failed", "err", err)
			if !service.Sleep(ctx, poll) {
				return ctx.Err()
			}
			continue
		}
		for i, l := range ls {
			var toFresh chan<- freshen.Lease
			if l.Fresh {
				toFresh = fresh
			}
			for handed := false; !handed; {
				select {
				case out <- l:
					handed = true
				case toFresh <- l:
					handed = true
				case <-p.wake:
					// Every worker is busy and a change was announced:
					// hand fresh edits to the worker kept for them now,
					// not after the backlog in hand.
					if err := p.dispatchFresh(ctx, fresh); err != nil {
						p.release(l)
						for _, rest := range ls[i+1:] {
							p.release(rest)
						}
						return err
					}
				case <-ctx.Done():
					// Give back what no worker took, so a restart need not
					// wait for the leases to expire.
					for _, rest := range ls[i:] {
						p.release(rest)
					}
					return ctx.Err()
				}
			}
		}
		if len(ls) > 0 {
			continue
		}
		// Leased keys stay queued until committed, so an empty backlog
		// means nothing is in flight either.
		if drain {
			n, _, err := p.led.Backlog(ctx)
			if err == nil && n == 0 {
				return nil
			}
		}
		idle := 500 * time.Millisecond
		if drain {
			idle = 20 * time.Millisecond
		}
		t := time.NewTimer(idle)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-p.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// dispatchFresh leases the keys events announced, one at a time, and
// hands each to the worker kept for fresh edits.
func (p *Pipeline) dispatchFresh(ctx context.Context, fresh chan<- freshen.Lease) error {
	for {
		ls, err := p.led.Lease(ctx, freshen.LeaseParams{Owner: p.cfg.Owner, Max: 1, TTL: p.cfg.LeaseTTL, FreshOnly: true})
		if err != nil || len(ls) == 0 {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return nil // the next pass of the loop leases as usual
		}
		select {
		case fresh <- ls[0]:
		case <-ctx.Done():
			p.release(ls[0])
			return ctx.Err()
		}
	}
}

// release gives a lease back, whatever the caller's context.
func (p *Pipeline) release(ls freshen.Lease) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.led.Release(ctx, ls); err != nil && !errors.Is(err, freshen.ErrLeaseLost) {
		p.log.Warn("release lease", "key", freshen.KeyForLog(ls.Key), "err", err)
	}
}

// heartbeat extends ls every LeaseTTL/3 until stop is closed. If the
// lease is lost, or cannot be extended before it expires, it cancels the
// work with ErrLeaseLost: a worker must not write the index for a key it
// no longer owns.
func (p *Pipeline) heartbeat(ls freshen.Lease, cancel context.CancelCauseFunc, stop <-chan struct{}) {
	every := p.cfg.LeaseTTL / 3
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		ctx, c := context.WithTimeout(context.Background(), every)
		err := p.led.Extend(ctx, &ls, p.cfg.LeaseTTL)
		c()
		switch {
		case errors.Is(err, freshen.ErrLeaseLost):
			cancel(freshen.ErrLeaseLost)
			return
		case err != nil && time.Now().Add(every).After(ls.Expires):
			p.log.Warn("could not extend lease before it expires; abandoning the key", "key", freshen.KeyForLog(ls.Key), "err", err)
			cancel(freshen.ErrLeaseLost)
			return
		case err != nil:
			p.log.Warn("extend lease", "key", freshen.KeyForLog(ls.Key), "err", err)
		}
	}
}

// backoff is the delay before retry number attempts (from 1): doubling
// from Backoff up to MaxBackoff, with "equal jitter" (half fixed, half
// random) so that keys failing together do not retry together, and never
// sooner than a retry-after the error asks for.
func (p *Pipeline) backoff(attempts int, err error) time.Duration {
	d := min(p.cfg.Backoff<<min(attempts-1, 20), p.cfg.MaxBackoff)
	if d > 1 {
		d = d/2 + mrand.N(d/2+1)
	}
	if after, ok := freshen.RetryAfter(err); ok && after > d {
		d = after
	}
	return d
}

// handle processes one lease and records the outcome in the ledger.
func (p *Pipeline) handle(parent context.Context, ls freshen.Lease) {
	start := time.Now()
	// One trace per object: its stages are the children. The event's
	// time is an attribute, so the lag of each object is visible.
	parent, span := p.tracer.Start(parent, "freshen.object", trace.WithAttributes(
		attribute.String("freshen.key", ls.Key), attribute.String("freshen.origin", ls.Origin),
		attribute.Int("freshen.attempt", ls.Attempts+1), attribute.Bool("freshen.fresh", ls.Fresh),
		attribute.String("freshen.event_time", ls.FirstSeen.UTC().Format(time.RFC3339Nano)),
		attribute.Int64("freshen.lag_at_start_ms", time.Since(ls.FirstSeen).Milliseconds())))
	defer span.End()
	ctx, cancel := context.WithCancelCause(parent)
	if ls.Fresh {
		ctx = freshen.Urgent(ctx) // a fresh edit goes ahead of backlog
	}
	stop := make(chan struct{})
	var hb sync.WaitGroup
	hb.Add(1)
	go func() {
		defer hb.Done()
		p.heartbeat(ls, cancel, stop)
	}()
	res, err := p.process(ctx, ls)
	close(stop)
	hb.Wait()
	lost := errors.Is(context.Cause(ctx), freshen.ErrLeaseLost)
	cancel(nil)
	res.Key, res.FirstSeen, res.Duration, res.Origin = ls.Key, ls.FirstSeen, time.Since(start), ls.Origin
	if sc := span.SpanContext(); sc.HasTraceID() {
		res.TraceID = sc.TraceID().String()
	}
	if err != nil {
		res.Err = err
		p.fail(ls, &res, err, lost, parent.Err() != nil)
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	} else {
		p.noteProgress()
	}
	span.SetAttributes(attribute.String("freshen.outcome", string(res.Outcome)), attribute.Int("freshen.chunks", res.Chunks),
		attribute.Int64("freshen.chunks_embedded", res.Work.ChunksEmbedded), attribute.Int64("freshen.tokens_embedded", res.Work.TokensEmbedded))
	if p.onDone != nil {
		p.onDone(res)
	}
}

// fail records a failed attempt according to its error class.
// lost says the lease was lost while working; stopped, that Stop
// cancelled the work.
func (p *Pipeline) fail(ls freshen.Lease, res *Result, err error, lost, stopped bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ferr error
	switch {
	case lost || errors.Is(err, freshen.ErrLeaseLost):
		res.Outcome = OutcomeLeaseLost
		p.log.Warn("lease lost; another worker owns the key now", "key", freshen.KeyForLog(ls.Key))
		return
	case errors.Is(err, freshen.ErrNoSpace):
		// Not the key's fault: give it back uncounted (if even that can
		// be written) and pause the pool.
		res.Outcome = OutcomeRequeued
		p.notePause(err)
		ferr = p.led.Release(ctx, ls)
		if errors.Is(ferr, freshen.ErrNoSpace) {
			ferr = nil // the lease expires instead
		}
	case stopped:
		res.Outcome = OutcomeRequeued
		ferr = p.led.Release(ctx, ls)
	case errors.Is(err, freshen.ErrIndexUnavailable):
		// Not the key's fault either: the index's server is down. Give
		// the key back and pause the pool, probing, until it answers.
		res.Outcome = OutcomeRequeued
		p.notePause(err)
		ferr = p.led.Release(ctx, ls)
	case freshen.IsNotAttempt(err):
		res.Outcome = OutcomeRequeued
		wait := p.cfg.Backoff
		if after, ok := freshen.RetryAfter(err); ok && after > wait {
			wait = after // a spent budget waits for the next day
		}
		if errors.Is(err, freshen.ErrBudgetSpent) {
			p.noteBudget(err)
		}
		ferr = p.led.Fail(ctx, ls, freshen.Failure{Err: err, RetryAt: time.Now().Add(wait), NotAttempt: true})
	case freshen.IsPermanent(err):
		res.Outcome, res.Reason = OutcomeFailed, err.Error()
		ferr = p.led.Fail(ctx, ls, freshen.Failure{Err: err, RetryAt: time.Now(), MaxAttempts: p.cfg.MaxAttempts, Permanent: true})
		p.log.Warn("processing failed permanently; parked", "key", freshen.KeyForLog(ls.Key), "err", err, "trace_id", res.TraceID)
	default:
		attempts := ls.Attempts + 1
		res.Outcome = OutcomeRetry
		if attempts >= p.cfg.MaxAttempts {
			res.Outcome, res.Reason = OutcomeFailed, err.Error()
		}
		retry := p.backoff(attempts, err)
		ferr = p.led.Fail(ctx, ls, freshen.Failure{Err: err, RetryAt: time.Now().Add(retry), MaxAttempts: p.cfg.MaxAttempts})
		p.log.Warn("processing failed", "key", freshen.KeyForLog(ls.Key), "attempt", attempts, "retry_in", retry.Round(time.Millisecond), "err", err,
			"trace_id", res.TraceID)
	}
	if ferr != nil && !errors.Is(ferr, freshen.ErrLeaseLost) {
		p.log.Error("record failure", "key", freshen.KeyForLog(ls.Key), "err", ferr)
	}
}

// target is the chunk set an object should have in the index.
type target struct {
	refs   []freshen.ChunkRef
	chunks map[freshen.ChunkID]freshen.Chunk
}

func (p *Pipeline) process(ctx context.Context, ls freshen.Lease) (Result, error) {
	model := p.emb.Model().Name
	// One read for all the ledger knows of the key.
	st, err := p.led.State(ctx, ls.Bucket, ls.Key)
	if err != nil {
		return Result{}, err
	}
	prev, intent, pending, cur, known := st.Chunks, st.Intent, st.Pending, st.Object, st.Known

	rec := freshen.ObjectRecord{Bucket: ls.Bucket, Key: ls.Key, Chunker: p.chk.Version(), Model: model}
	var tgt target
	gone, skipped := false, ""
	var obj freshen.ObjectInfo
	switch {
	case p.cfg.Match != nil && !p.cfg.Match(ls.Key):
		gone = true // not watched (any more): make sure nothing of it stays
	case ls.Vanished && (!known || cur.UpdatedAt.Before(ls.FirstSeen)):
		// The listing that began at FirstSeen did not have the key, and
		// nothing about it happened since: it is gone, whatever a HEAD
		// on this spelling says (stores that normalise keys answer for
		// "a//b.md" what they list as "a/b.md").
		gone = true
	default:
		sctx, span := p.tracer.Start(ctx, "s3.stat")
		obj, err = p.src.Stat(sctx, ls.Key)
		endSpan(span, err)
		switch {
		case errors.Is(err, freshen.ErrNotFound):
			gone = true
		case err != nil:
			return Result{}, err
		}
	}
	sidecar := p.cfg.Sidecars && freshen.IsSidecar(ls.Key)
	var meta map[string]any
	if !gone && !sidecar {
		// The attributes every chunk carries: the object's own metadata
		// and its sidecar's.
		attrs, err := p.sidecar(ctx, ls.Key)
		if err != nil {
			return Result{}, err
		}
		meta = freshen.ObjectMetadata(obj, attrs)
		rec.Meta = freshen.MetadataHash(meta)
	}
	if !gone {
		rec.ETag, rec.VersionID, rec.Size, rec.LastModified = obj.ETag, obj.VersionID, obj.Size, obj.LastModified
		if known && !pending && cur.State != freshen.StateFailed && cur.ETag == obj.ETag && cur.Size == obj.Size &&
			cur.Chunker == rec.Chunker && cur.Model == rec.Model && cur.Meta == rec.Meta {
			// Same bytes as committed (a duplicate event, a metadata-only
			// change): nothing to do but leave the queue.
			cur.LastModified, cur.VersionID = obj.LastModified, obj.VersionID
			if err := p.led.Complete(ctx, ls, freshen.Commit{Object: cur, Chunks: prev}); err != nil {
				return Result{}, err
			}
			return Result{Outcome: OutcomeUnchanged, Chunks: len(prev), Work: freshen.Counters{ChunksReused: int64(len(prev))}}, nil
		}
		if sidecar {
			skipped = fmt.Sprintf("metadata sidecar of %q: its attributes tag that object's chunks; it is never indexed itself", freshen.DocumentOf(ls.Key))
		} else {
			tgt, skipped, err = p.read(ctx, obj)
		}
		if errors.Is(err, freshen.ErrNotFound) {
			gone, err = true, nil
		}
		if err != nil {
			return Result{}, err
		}
	}
	// A metadata-only change (new user metadata, a sidecar edit) rewrites
	// every chunk with its new metadata, from the embedding cache.
	retag := known && !gone && skipped == "" && cur.Meta != rec.Meta

	// Diff against what the index holds. After a crash (pending intent)
	// the index may hold anything the intent named, and may lack chunks
	// the ledger lists: rewrite every target chunk, delete the rest.
	have := map[freshen.ChunkID]bool{}
	for _, c := range prev {
		have[c.ID] = true
	}
	want := map[freshen.ChunkID]bool{}
	for _, r := range tgt.refs {
		want[r.ID] = true
	}
	var upserts, deletes []freshen.ChunkID
	for _, r := range tgt.refs {
		if pending || retag || !have[r.ID] {
			upserts = append(upserts, r.ID)
		}
	}
	candidates := maps.Clone(have)
	if pending {
		for _, id := range slices.Concat(intent.Upserts, intent.Deletes) {
			candidates[id] = true
		}
	}
	for id := range candidates {
		if !want[id] {
			deletes = append(deletes, id)
		}
	}
	slices.Sort(deletes)

	res := Result{Chunks: len(tgt.refs)}
	var records []freshen.Record
	embedded := map[freshen.ChunkHash]bool{}
	if len(upserts) > 0 {
		need := make([]freshen.Chunk, 0, len(upserts))
		for _, id := range upserts {
			need = append(need, tgt.chunks[id])
		}
		t0 := time.Now()
		ectx, span := p.tracer.Start(ctx, "embed", trace.WithAttributes(attribute.Int("freshen.chunks", len(need)), attribute.String("freshen.model", model)))
		vecs, work, mine, err := p.cache.vectors(ectx, model, need)
		embedded = mine
		res.EmbedTime = time.Since(t0)
		res.Work = work
		batch := int64(max(p.cfg.EmbedBatch, 1))
		span.SetAttributes(attribute.Int64("freshen.embedded", work.ChunksEmbedded), attribute.Int64("freshen.cache_hits", int64(len(need))-work.ChunksEmbedded),
			attribute.Int64("freshen.tokens", work.TokensEmbedded), attribute.Int64("freshen.batches", (work.ChunksEmbedded+batch-1)/batch),
			attribute.Int64("freshen.batch_size", batch))
		endSpan(span, err)
		if err != nil {
			return res, err
		}
		for _, id := range upserts {
			c := tgt.chunks[id]
			records = append(records, freshen.Record{ID: id, Bucket: ls.Bucket, Key: ls.Key, Hash: c.Hash, Ordinal: c.Ordinal,
				Text: c.Text, Headings: c.Headings, Metadata: chunkMetadata(meta, c), Vector: vecs[c.Hash]})
		}
	}
	// Chunks kept as they were, or whose vectors came from the cache,
	// cost nothing: they count as reused.
	res.Work.ChunksReused = int64(len(tgt.refs)) - res.Work.ChunksEmbedded
	if res.Work.ChunksReused < 0 {
		res.Work.ChunksReused = 0
	}
	for _, c := range tgt.chunks {
		if !embedded[c.Hash] {
			res.TokensReused += int64(c.Tokens)
		}
	}

	if len(upserts)+len(deletes) > 0 {
		if err := p.led.BeginIntent(ctx, ls, freshen.Intent{Upserts: upserts, Deletes: deletes}); err != nil {
			return res, err
		}
		wctx, span := p.tracer.Start(ctx, "index.write", trace.WithAttributes(attribute.Int("freshen.upserts", len(records)), attribute.Int("freshen.deletes", len(deletes))))
		err := p.write(wctx, ls, rec, records, deletes)
		endSpan(span, err)
		if err != nil {
			return res, err
		}
	}

	// Embedding work was counted when the vectors were cached.
	commit := freshen.Commit{Object: rec, Gone: gone, Chunks: tgt.refs, Work: freshen.Counters{ChunksReused: res.Work.ChunksReused}}
	switch {
	case gone && len(prev) == 0 && !pending && !known:
		res.Outcome = OutcomeAbsent
	case gone:
		res.Outcome = OutcomeDeleted
	case skipped != "":
		commit.Object.State, commit.Object.Reason = freshen.StateSkipped, skipped
		res.Outcome, res.Reason = OutcomeSkipped, skipped
	default:
		commit.Object.State = freshen.StateIndexed
		res.Outcome = OutcomeIndexed
	}
	cctx, span := p.tracer.Start(ctx, "ledger.commit")
	err = p.led.Complete(cctx, ls, commit)
	endSpan(span, err)
	if err != nil {
		return res, err
	}
	if sidecar {
		// The sidecar changed (or went): its document's chunks are
		// re-tagged.
		doc := freshen.Change{Bucket: ls.Bucket, Key: freshen.DocumentOf(ls.Key), Kind: freshen.ChangeUpsert, EventTime: ls.FirstSeen, Origin: ls.Origin}
		if _, err := p.led.Enqueue(ctx, []freshen.Change{doc}); err != nil {
			return res, fmt.Errorf("queue the document of a sidecar: %w", err)
		}
		p.Wake()
	}
	return res, nil
}

// sidecar reads key's metadata sidecar, if it has one, from the store
// (one HEAD per object). The ledger's row of the sidecar would save that
// request, but it lags while the sidecar itself is being processed: a
// document read then would miss attributes that `freshen sync` already
// listed. A malformed sidecar does not stop the document: its error
// becomes the attribute sidecar_error, visible in lookups and search hits.
func (p *Pipeline) sidecar(ctx context.Context, key string) (map[string]any, error) {
	if !p.cfg.Sidecars {
		return nil, nil
	}
	obj, err := p.src.Stat(ctx, freshen.SidecarOf(key))
	if errors.Is(err, freshen.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if obj.Size > freshen.MaxSidecarBytes {
		return map[string]any{"sidecar_error": fmt.Sprintf("%d bytes: over the %d a sidecar may have", obj.Size, freshen.MaxSidecarBytes)}, nil
	}
	r, err := p.src.Open(ctx, obj)
	if errors.Is(err, freshen.ErrNotFound) || errors.Is(err, freshen.ErrPreconditionFailed) {
		// It changed or went while being read: its own change is queued
		// and re-tags the document again.
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, freshen.MaxSidecarBytes+1))
	if err != nil {
		return nil, err
	}
	attrs, err := freshen.ParseSidecar(b)
	if err != nil {
		return map[string]any{"sidecar_error": err.Error()}, nil
	}
	return attrs, nil
}

// chunkMetadata is the object's metadata, plus the chunk's pages in paged
// formats ("page", and "page_end" when it spans several).
func chunkMetadata(meta map[string]any, c freshen.Chunk) map[string]any {
	if c.Page == 0 || meta == nil {
		return meta
	}
	m := maps.Clone(meta)
	m["page"] = float64(c.Page)
	if c.PageEnd > c.Page {
		m["page_end"] = float64(c.PageEnd)
	}
	return m
}

// endSpan ends a stage's span, marking it failed by err.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// write makes one key's index writes: as one fenced Apply where the index
// has it (an external store applications read directly), else as an
// upsert and a delete. An index that already holds a newer write of the
// key (ErrStaleWrite) means another worker owns it now: the lease is lost.
func (p *Pipeline) write(ctx context.Context, ls freshen.Lease, rec freshen.ObjectRecord, records []freshen.Record, deletes []freshen.ChunkID) error {
	if w, ok := p.idx.(freshen.ObjectWriter); ok {
		version := rec.VersionID
		if version == "" {
			version = rec.ETag
		}
		err := w.Apply(ctx, freshen.ObjectWrite{Bucket: ls.Bucket, Key: ls.Key, Version: version, Fence: ls.Token, Upserts: records, Deletes: deletes})
		if errors.Is(err, freshen.ErrStaleWrite) {
			return fmt.Errorf("index write: %w (%w)", freshen.ErrLeaseLost, err)
		}
		if err != nil {
			return fmt.Errorf("index write: %w", err)
		}
		return nil
	}
	if err := p.idx.Upsert(ctx, records); err != nil {
		return fmt.Errorf("index upsert: %w", err)
	}
	if err := p.idx.Delete(ctx, deletes); err != nil {
		return fmt.Errorf("index delete: %w", err)
	}
	return nil
}

// read fetches, extracts and chunks one object version. A non-empty skip
// reason means the object is deliberately not indexed.
// Chunks reads, extracts and chunks one object version as processing
// would, without embedding or writing anything (for estimates). A
// non-empty skip reason means the object would not be indexed.
func (p *Pipeline) Chunks(ctx context.Context, obj freshen.ObjectInfo) (chunks []freshen.Chunk, skip string, err error) {
	t, skip, err := p.read(ctx, obj)
	for _, r := range t.refs {
		chunks = append(chunks, t.chunks[r.ID])
	}
	return chunks, skip, err
}

func (p *Pipeline) read(ctx context.Context, obj freshen.ObjectInfo) (target, string, error) {
	if obj.Size > p.cfg.MaxObjectBytes {
		return target{}, fmt.Sprintf("%d bytes exceeds limits.max-object-bytes (%d)", obj.Size, p.cfg.MaxObjectBytes), nil
	}
	// s3.get is the request until the body starts; extract reads the
	// body as it parses (the object is not held twice).
	gctx, span := p.tracer.Start(ctx, "s3.get", trace.WithAttributes(attribute.Int64("freshen.size", obj.Size)))
	r, err := p.src.Open(gctx, obj)
	endSpan(span, err)
	if err != nil {
		return target{}, "", err
	}
	defer r.Close()
	xctx, span := p.tracer.Start(ctx, "extract", trace.WithAttributes(attribute.String("freshen.content_type", obj.ContentType)))
	doc, err := p.ext.Extract(xctx, io.LimitReader(r, p.cfg.MaxObjectBytes+1), obj)
	span.End()
	if errors.Is(err, freshen.ErrUnsupported) || errors.Is(err, freshen.ErrTooLarge) {
		return target{}, err.Error(), nil
	}
	if err != nil {
		return target{}, "", fmt.Errorf("extract: %w", err)
	}
	_, span = p.tracer.Start(ctx, "chunk")
	chunks, err := p.chk.Split(doc)
	span.SetAttributes(attribute.Int("freshen.chunks", len(chunks)))
	endSpan(span, err)
	if err != nil {
		return target{}, "", fmt.Errorf("chunk: %w", err)
	}
	// The limits bound what one object can cost the embedder (a list of
	// a million short items, a line without spaces): an object over them
	// is skipped whole, before any of it is embedded, not indexed in part.
	if len(chunks) > p.cfg.MaxChunks {
		return target{}, fmt.Sprintf("%s chunks exceeds limits.max-chunks-per-object (%s)",
			grouped(int64(len(chunks))), grouped(int64(p.cfg.MaxChunks))), nil
	}
	var tokens int64
	for _, c := range chunks {
		tokens += int64(c.Tokens)
	}
	if tokens > int64(p.cfg.MaxTokens) {
		return target{}, fmt.Sprintf("%s estimated tokens exceeds limits.max-tokens-per-object (%s)",
			grouped(tokens), grouped(int64(p.cfg.MaxTokens))), nil
	}
	t := target{chunks: make(map[freshen.ChunkID]freshen.Chunk, len(chunks))}
	seen := map[freshen.ChunkHash]int{}
	for _, c := range chunks {
		id := freshen.MakeChunkID(obj.Bucket, obj.Key, c.Hash, seen[c.Hash])
		seen[c.Hash]++
		t.refs = append(t.refs, freshen.ChunkRef{ID: id, Hash: c.Hash, Ordinal: c.Ordinal})
		t.chunks[id] = c
	}
	return t, "", nil
}

// grouped formats n with a comma between groups of three digits, so that
// a skip reason reads "1,234,567 estimated tokens" rather than a run of
// digits to count.
func grouped(n int64) string {
	s := strconv.FormatInt(n, 10)
	sign := ""
	if n < 0 {
		sign, s = "-", s[1:]
	}
	var b strings.Builder
	b.WriteString(sign)
	for i, d := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	return b.String()
}
