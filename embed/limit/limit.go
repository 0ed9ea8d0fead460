package limit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/embed/internal/wait"
)

// Config sets the limits. Zero fields take their defaults; a zero rate or
// concurrency means no such limit.
type Config struct {
	// RequestsPerMinute caps calls to the inner embedder (0: no cap).
	RequestsPerMinute int
	// TokensPerMinute caps the tokens sent to it, counted with
	// freshen.CountTokens(inner, text) (0: no cap).
	TokensPerMinute int
	// RequestBurst and TokenBurst are the sizes of the buckets: how much
	// may go at once after a quiet spell (default: ten seconds' worth of
	// the configured rate, at least 1). A call needing more tokens than
	// TokenBurst waits until the bucket is full, then goes alone, and the
	// excess is owed: the calls after it wait until it is paid back.
	RequestBurst int
	TokenBurst   int
	// MaxConcurrency caps the calls in flight to the inner embedder (0:
	// no cap). Calls wait for a slot first, then for the buckets.
	MaxConcurrency int

	// DecreaseFactor multiplies the rates when the inner embedder answers
	// with freshen.ErrRateLimited (default 0.7). Calls already in flight
	// when the rates were cut do not cut them again.
	DecreaseFactor float64
	// MinFraction is the floor of the rates, a fraction of the configured
	// ones (default 0.05).
	MinFraction float64
	// IncreaseFraction is what each success adds back to the rates, a
	// fraction of the configured ones (default 0.05), up to them.
	IncreaseFraction float64

	// Now and Sleep are the clock and the wait; tests replace them. Sleep
	// returns ctx.Err() if ctx is done first. Defaults: time.Now, a timer.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// WithDefaults returns c with its zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.RequestBurst == 0 {
		c.RequestBurst = tenSeconds(c.RequestsPerMinute)
	}
	if c.TokenBurst == 0 {
		c.TokenBurst = tenSeconds(c.TokensPerMinute)
	}
	if c.DecreaseFactor == 0 {
		c.DecreaseFactor = 0.7
	}
	if c.MinFraction == 0 {
		c.MinFraction = 0.05
	}
	if c.IncreaseFraction == 0 {
		c.IncreaseFraction = 0.05
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Sleep == nil {
		c.Sleep = wait.Sleep
	}
	return c
}

func tenSeconds(perMinute int) int { return max(1, (perMinute+5)/6) }

// Validate reports every mistake in the effective configuration (c with
// defaults applied), joined.
func (c Config) Validate() error {
	c = c.WithDefaults()
	var errs []error
	for _, f := range []struct {
		name string
		v    int
	}{
		{"requests-per-minute", c.RequestsPerMinute},
		{"tokens-per-minute", c.TokensPerMinute},
		{"request-burst", c.RequestBurst},
		{"token-burst", c.TokenBurst},
		{"max-concurrency", c.MaxConcurrency},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("limit: config: %s is %d; it cannot be negative (0 means no limit, or the default)", f.name, f.v))
		}
	}
	if c.DecreaseFactor <= 0 || c.DecreaseFactor >= 1 {
		errs = append(errs, fmt.Errorf("limit: config: decrease-factor is %g; it must be between 0 and 1, exclusive", c.DecreaseFactor))
	}
	if c.MinFraction <= 0 || c.MinFraction > 1 {
		errs = append(errs, fmt.Errorf("limit: config: min-fraction is %g; it must be above 0 and at most 1", c.MinFraction))
	}
	if c.IncreaseFraction <= 0 || c.IncreaseFraction > 1 {
		errs = append(errs, fmt.Errorf("limit: config: increase-fraction is %g; it must be above 0 and at most 1", c.IncreaseFraction))
	}
	return errors.Join(errs...)
}

// Embedder limits the calls to an inner Embedder.
//
// Stacking: limit goes inside retry (each attempt is limited, and a retry
// waiting out its backoff holds no slot) and inside a circuit breaker
// (an open breaker fails calls at once instead of queueing them here):
//
//	retry.New(breaker.New(limit.New(provider, lc), bc), rc)
type Embedder struct {
	inner freshen.Embedder
	cfg   Config
	// reqs and toks are nil when their rate is not capped; slots is nil
	// when concurrency is not.
	reqs, toks *rate.Limiter
	slots      chan struct{}
	urgentSlot chan struct{} // one more slot, for urgent calls only

	queued, inFlight atomic.Int64

	mu sync.Mutex
	// factor is the effective rates' fraction of the configured ones.
	factor float64
	// cuts counts the cuts of factor; a call remembers it when it starts,
	// so that the answers of calls sent at the old rates cut only once.
	cuts        uint64
	pausedUntil time.Time
	rateLimited int64
}

var (
	_ freshen.Embedder      = (*Embedder)(nil)
	_ freshen.TokenCounter  = (*Embedder)(nil)
	_ freshen.QueryEmbedder = (*Embedder)(nil)
)

// New wraps inner. It panics if cfg.Validate fails: validate
// configuration from users first.
func New(inner freshen.Embedder, cfg Config) *Embedder {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	cfg = cfg.WithDefaults()
	e := &Embedder{inner: inner, cfg: cfg, factor: 1}
	if cfg.RequestsPerMinute > 0 {
		e.reqs = rate.NewLimiter(perSecond(cfg.RequestsPerMinute, 1), cfg.RequestBurst)
	}
	if cfg.TokensPerMinute > 0 {
		e.toks = rate.NewLimiter(perSecond(cfg.TokensPerMinute, 1), cfg.TokenBurst)
	}
	if cfg.MaxConcurrency > 0 {
		e.slots = make(chan struct{}, cfg.MaxConcurrency)
		e.urgentSlot = make(chan struct{}, 1)
	}
	return e
}

func perSecond(perMinute int, factor float64) rate.Limit {
	return rate.Limit(float64(perMinute) * factor / 60)
}

// Model implements freshen.Embedder.
func (e *Embedder) Model() freshen.ModelInfo { return e.inner.Model() }

// CountTokens forwards to the inner embedder's own measure, if it has one.
func (e *Embedder) CountTokens(text string) int { return freshen.CountTokens(e.inner, text) }

// Embed implements freshen.Embedder. It waits for a concurrency slot, for
// the end of a pause and for the buckets, then calls the inner embedder
// once and returns what it returned. If ctx ends while it waits, it
// returns ctx.Err() and gives back what it had reserved.
func (e *Embedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if len(texts) == 0 {
		return nil, nil
	}
	var vecs [][]float32
	err := e.do(ctx, e.tokens(texts), func(ctx context.Context) (err error) {
		vecs, err = e.inner.Embed(ctx, texts)
		return err
	})
	return vecs, err
}

// EmbedQuery implements freshen.QueryEmbedder under the same limits, as
// one request, using the inner embedder's EmbedQuery when it has one and
// its Embed of the one query otherwise.
func (e *Embedder) EmbedQuery(ctx context.Context, query string) ([]float32, error) {
	var vec []float32
	err := e.do(ctx, e.tokens([]string{query}), func(ctx context.Context) (err error) {
		vec, err = freshen.EmbedQuery(ctx, e.inner, query)
		return err
	})
	return vec, err
}

func (e *Embedder) tokens(texts []string) int {
	if e.toks == nil {
		return 0
	}
	n := 0
	for _, t := range texts {
		n += freshen.CountTokens(e.inner, t)
	}
	return n
}

func (e *Embedder) do(ctx context.Context, tokens int, call func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if e.slots != nil {
		slots := e.slots
		select {
		case e.slots <- struct{}{}:
		default:
			e.queued.Add(1)
			var extra chan struct{}
			if freshen.IsUrgent(ctx) {
				extra = e.urgentSlot // one slot kept for fresh edits
			}
			select {
			case e.slots <- struct{}{}:
				e.queued.Add(-1)
			case extra <- struct{}{}:
				e.queued.Add(-1)
				slots = extra
			case <-ctx.Done():
				e.queued.Add(-1)
				return ctx.Err()
			}
		}
		defer func() { <-slots }()
	}
	if err := e.waitPause(ctx); err != nil {
		return err
	}
	wait := e.waitBuckets
	if !freshen.IsUrgent(ctx) {
		wait = e.waitBucketsBehindUrgent
	}
	if err := wait(ctx, tokens); err != nil {
		return err
	}
	// A pause may have begun while this call waited for the buckets.
	if err := e.waitPause(ctx); err != nil {
		return err
	}
	e.mu.Lock()
	cuts := e.cuts
	e.mu.Unlock()
	e.inFlight.Add(1)
	err := call(ctx)
	e.inFlight.Add(-1)
	e.adapt(cuts, err)
	return err
}

// waitPause waits until no pause asked for by a rate-limited answer is in
// force.
func (e *Embedder) waitPause(ctx context.Context) error {
	for {
		e.mu.Lock()
		until := e.pausedUntil
		e.mu.Unlock()
		d := until.Sub(e.cfg.Now())
		if d <= 0 {
			return nil
		}
		if err := e.cfg.Sleep(ctx, d); err != nil {
			return err
		}
	}
}

// waitBuckets reserves one request and tokens tokens, and waits until
// both reservations are due.
func (e *Embedder) waitBuckets(ctx context.Context, tokens int) error {
	now := e.cfg.Now()
	var held []*rate.Reservation
	var delay time.Duration
	if e.reqs != nil {
		r := e.reqs.ReserveN(now, 1)
		held = append(held, r)
		delay = r.DelayFrom(now)
	}
	if e.toks != nil && tokens > 0 {
		// A bucket never holds more than its burst, so a larger call
		// waits for a full bucket and takes all of it; the rest is
		// reserved as debt that the calls after it wait out. Each
		// reservation is at most the burst, so none is refused.
		burst := e.toks.Burst()
		first := true
		for left := tokens; left > 0; {
			k := min(left, burst)
			r := e.toks.ReserveN(now, k)
			held = append(held, r)
			if first {
				delay = max(delay, r.DelayFrom(now))
				first = false
			}
			left -= k
		}
	}
	if delay <= 0 {
		return nil
	}
	if err := e.cfg.Sleep(ctx, delay); err != nil {
		// Give back what this call will not use, the latest first, so
		// that each can be restored.
		at := e.cfg.Now()
		for i := len(held) - 1; i >= 0; i-- {
			held[i].CancelAt(at)
		}
		return err
	}
	return nil
}

// backlogPoll bounds how long backlog sleeps between looks at the
// buckets while it waits behind urgent calls.
const backlogPoll = 50 * time.Millisecond

// waitBucketsBehindUrgent is waitBuckets for backlog: it takes tokens
// only when they are there now, instead of reserving future ones, so
// that an urgent call (a fresh edit), which reserves, is served next
// rather than behind every waiting backlog call. A call larger than a
// bucket's burst reserves as waitBuckets does.
func (e *Embedder) waitBucketsBehindUrgent(ctx context.Context, tokens int) error {
	if e.toks != nil && tokens > e.toks.Burst() {
		return e.waitBuckets(ctx, tokens)
	}
	for {
		now := e.cfg.Now()
		var held []*rate.Reservation
		var delay time.Duration
		if e.reqs != nil {
			r := e.reqs.ReserveN(now, 1)
			held = append(held, r)
			delay = r.DelayFrom(now)
		}
		if e.toks != nil && tokens > 0 {
			r := e.toks.ReserveN(now, tokens)
			held = append(held, r)
			delay = max(delay, r.DelayFrom(now))
		}
		if delay <= 0 {
			return nil
		}
		for i := len(held) - 1; i >= 0; i-- {
			held[i].CancelAt(now)
		}
		// Whole milliseconds: the buckets' float arithmetic would
		// otherwise leave a nanosecond to wait.
		delay = (delay + time.Millisecond - 1).Truncate(time.Millisecond)
		if err := e.cfg.Sleep(ctx, min(delay, backlogPoll)); err != nil {
			return err
		}
	}
}

// adapt moves the rates after an answer: a multiplicative cut and a
// pause for rate-limited answers, an additive step back up for successes.
func (e *Embedder) adapt(cuts uint64, err error) {
	now := e.cfg.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case err == nil:
		if e.factor < 1 {
			e.factor = min(1, e.factor+e.cfg.IncreaseFraction)
			e.apply(now)
		}
	case errors.Is(err, freshen.ErrRateLimited):
		e.rateLimited++
		if cuts == e.cuts {
			e.factor = max(e.cfg.MinFraction, e.factor*e.cfg.DecreaseFactor)
			e.cuts++
			e.apply(now)
		}
		if after, ok := freshen.RetryAfter(err); ok {
			if until := now.Add(after); until.After(e.pausedUntil) {
				e.pausedUntil = until
			}
		}
	}
}

// apply sets the buckets' rates from factor. e.mu is held.
func (e *Embedder) apply(now time.Time) {
	if e.reqs != nil {
		e.reqs.SetLimitAt(now, perSecond(e.cfg.RequestsPerMinute, e.factor))
	}
	if e.toks != nil {
		e.toks.SetLimitAt(now, perSecond(e.cfg.TokensPerMinute, e.factor))
	}
}

// Stats is a snapshot of the limiter, for metrics and logs.
type Stats struct {
	// RequestsPerMinute and TokensPerMinute are the effective rates
	// (0: not capped).
	RequestsPerMinute float64
	TokensPerMinute   float64
	// Factor is the effective rates' fraction of the configured ones,
	// between MinFraction and 1.
	Factor float64
	// RequestsAvailable and TokensAvailable are what the buckets hold now;
	// negative when reserved ahead (0 when not capped).
	RequestsAvailable float64
	TokensAvailable   float64
	// PausedUntil is when the last pause asked for by a rate-limited
	// answer ends (zero if none).
	PausedUntil time.Time
	// Queued counts the calls waiting for a concurrency slot; InFlight
	// the calls to the inner embedder in progress.
	Queued, InFlight int64
	// RateLimited counts the rate-limited answers since New.
	RateLimited int64
}

// Stats returns a snapshot. It is safe for concurrent use.
func (e *Embedder) Stats() Stats {
	now := e.cfg.Now()
	e.mu.Lock()
	s := Stats{
		Factor:      e.factor,
		PausedUntil: e.pausedUntil,
		RateLimited: e.rateLimited,
	}
	e.mu.Unlock()
	if e.reqs != nil {
		s.RequestsPerMinute = float64(e.reqs.Limit()) * 60
		s.RequestsAvailable = e.reqs.TokensAt(now)
	}
	if e.toks != nil {
		s.TokensPerMinute = float64(e.toks.Limit()) * 60
		s.TokensAvailable = e.toks.TokensAt(now)
	}
	s.Queued, s.InFlight = e.queued.Load(), e.inFlight.Load()
	return s
}

// Delay returns how long a call embedding texts would now wait for a
// pause and the buckets (not for a concurrency slot), without reserving
// anything: what a scheduler may use to decide whether to send now.
func (e *Embedder) Delay(texts []string) time.Duration {
	now := e.cfg.Now()
	e.mu.Lock()
	d := max(0, e.pausedUntil.Sub(now))
	e.mu.Unlock()
	wait := func(lim *rate.Limiter, n int) time.Duration {
		need := float64(min(n, lim.Burst())) - lim.TokensAt(now)
		if need <= 0 {
			return 0
		}
		return time.Duration(math.Ceil(need / float64(lim.Limit()) * float64(time.Second)))
	}
	if e.reqs != nil {
		d = max(d, wait(e.reqs, 1))
	}
	if e.toks != nil {
		d = max(d, wait(e.toks, e.tokens(texts)))
	}
	return d
}
