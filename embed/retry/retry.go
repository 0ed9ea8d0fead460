package retry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/embed/internal/wait"
)

// Reasons passed to Observer.Retry: a small fixed set, so that they can
// label a metric.
const (
	// ReasonRateLimited: the error wraps freshen.ErrRateLimited.
	ReasonRateLimited = "rate_limited"
	// ReasonUnavailable: the error wraps freshen.ErrUnavailable (the
	// provider is down, or a breaker in front of it is open).
	ReasonUnavailable = "unavailable"
	// ReasonTimeout: the inner call timed out on its own (a request
	// timeout) while the caller's context was still live.
	ReasonTimeout = "timeout"
	// ReasonOther: any other retryable error (a reset connection, a 5xx
	// the client did not classify further).
	ReasonOther = "other"
)

// Observer is told about every retry, for metrics. Retry is called from
// the goroutine of the Embed call that retries, just before it waits; it
// must be fast and safe for concurrent use.
type Observer interface {
	Retry(reason string)
}

// Config tunes the retries. Zero fields take their defaults.
type Config struct {
	// MaxAttempts caps the calls to the inner embedder for one request,
	// the first included (default 6; 1 disables retries). When a request
	// is split in halves, each half has its own attempts.
	MaxAttempts int
	// MaxElapsed caps the time from the start of Embed to the start of
	// the last retry (default 1m): a retry that could not start by then,
	// because the backoff or a retry-after reaches past it, is not waited
	// for; the last error is returned at once instead. Halves of a split
	// request share their parent's budget.
	MaxElapsed time.Duration
	// BaseDelay bounds the wait before the first retry (default 500ms);
	// the bound doubles for each later retry, up to MaxDelay. The wait is
	// drawn uniformly from [0, bound] ("full jitter"), so that callers
	// failing together do not retry together.
	BaseDelay time.Duration
	// MaxDelay caps the bound (default 30s). A retry-after asked for by
	// the error is honoured even when it is longer.
	MaxDelay time.Duration

	// Observer, when set, is told about each retry.
	Observer Observer

	// Now, Sleep and Rand are the clock, the wait and the jitter source;
	// tests replace them. Sleep returns ctx.Err() if ctx is done first.
	// Rand returns a number in [0, n). Defaults: time.Now, a timer,
	// math/rand/v2's Int64N.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	Rand  func(n int64) int64
}

// WithDefaults returns c with its zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 6
	}
	if c.MaxElapsed == 0 {
		c.MaxElapsed = time.Minute
	}
	if c.BaseDelay == 0 {
		c.BaseDelay = 500 * time.Millisecond
	}
	if c.MaxDelay == 0 {
		c.MaxDelay = 30 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Sleep == nil {
		c.Sleep = wait.Sleep
	}
	if c.Rand == nil {
		c.Rand = rand.Int64N
	}
	return c
}

// Validate reports every mistake in the effective configuration (c with
// defaults applied), joined.
func (c Config) Validate() error {
	c = c.WithDefaults()
	var errs []error
	if c.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("retry: config: max-attempts is %d; it must be at least 1 (0 means the default, 6)", c.MaxAttempts))
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"max-elapsed", c.MaxElapsed}, {"base-delay", c.BaseDelay}, {"max-delay", c.MaxDelay}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("retry: config: %s is %s; it cannot be negative (0 means the default)", f.name, f.v))
		}
	}
	if c.BaseDelay > c.MaxDelay {
		errs = append(errs, fmt.Errorf("retry: config: base-delay (%s) must not exceed max-delay (%s)", c.BaseDelay, c.MaxDelay))
	}
	return errors.Join(errs...)
}

// Embedder retries calls to an inner Embedder.
//
// Stacking: retry goes outside the limit and breaker decorators, so that
// each attempt is rate limited and counted by the breaker, and so that no
// concurrency slot is held while it waits:
//
//	retry.New(breaker.New(limit.New(provider, lc), bc), rc)
//
// An open breaker's error carries the time it half-opens as a retry-after:
// retry waits for it if that fits in its budget, and otherwise returns it
// at once (it wraps freshen.ErrUnavailable: not an attempt for the
// pipeline).
type Embedder struct {
	inner freshen.Embedder
	cfg   Config

	retries atomic.Int64
	splits  atomic.Int64
	gaveUp  atomic.Int64
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
	return &Embedder{inner: inner, cfg: cfg.WithDefaults()}
}

// Stats counts what the decorator did since New, for metrics.
type Stats struct {
	// Retries is the number of calls made again after a retryable error.
	Retries int64
	// Splits is the number of requests split in halves because the
	// provider found them too large.
	Splits int64
	// GaveUp is the number of requests (or halves) that failed with a
	// retryable error after using up their attempts or time.
	GaveUp int64
}

// Stats returns the counters. It is safe for concurrent use.
func (e *Embedder) Stats() Stats {
	return Stats{Retries: e.retries.Load(), Splits: e.splits.Load(), GaveUp: e.gaveUp.Load()}
}

// Model implements freshen.Embedder.
func (e *Embedder) Model() freshen.ModelInfo { return e.inner.Model() }

// CountTokens forwards to the inner embedder's own measure, if it has one.
func (e *Embedder) CountTokens(text string) int { return freshen.CountTokens(e.inner, text) }

// Embed implements freshen.Embedder. It returns nil once a call succeeds;
// a permanent error, or an error once ctx is done, at once; and the last
// retryable error, wrapped with the number of attempts, once the budget
// is used up. A request the provider finds too large
// (freshen.ErrBatchTooLarge) is split in halves, each embedded (and
// retried, and split) on its own, one after the other; a single text too
// large fails with a permanent error.
func (e *Embedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if len(texts) == 0 {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return e.embed(ctx, e.cfg.Now(), texts)
}

func (e *Embedder) embed(ctx context.Context, start time.Time, texts []string) ([][]float32, error) {
	var vecs [][]float32
	err := e.do(ctx, start, func(ctx context.Context) error {
		v, err := e.inner.Embed(ctx, texts)
		if err == nil && len(v) != len(texts) {
			// Splitting relies on one vector per text; retrying a broken
			// embedder would not mend it.
			return freshen.Permanent(fmt.Errorf("retry: inner embedder %s returned %d vectors for %d texts", e.inner.Model().Name, len(v), len(texts)))
		}
		vecs = v
		return err
	})
	if err == nil || !tooLarge(ctx, err) {
		return vecs, err
	}
	if len(texts) == 1 {
		return nil, freshen.Permanent(fmt.Errorf("retry: a single text is too large for one request: %w", err))
	}
	e.splits.Add(1)
	// Halves one after the other: a provider that found the whole too
	// large is not helped by receiving both at once.
	mid := len(texts) / 2
	out := make([][]float32, 0, len(texts))
	for _, half := range [][]string{texts[:mid], texts[mid:]} {
		v, err := e.embed(ctx, start, half)
		if err != nil {
			return nil, err
		}
		out = append(out, v...)
	}
	return out, nil
}

// EmbedQuery implements freshen.QueryEmbedder with the same retries as
// Embed, using the inner embedder's EmbedQuery when it has one and its
// Embed of the one query otherwise. A query too large for one request
// fails with a permanent error.
func (e *Embedder) EmbedQuery(ctx context.Context, query string) ([]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var vec []float32
	err := e.do(ctx, e.cfg.Now(), func(ctx context.Context) error {
		v, err := freshen.EmbedQuery(ctx, e.inner, query)
		vec = v
		return err
	})
	if err != nil && tooLarge(ctx, err) {
		return nil, freshen.Permanent(fmt.Errorf("retry: the query is too large for one request: %w", err))
	}
	if err != nil {
		return nil, err
	}
	return vec, nil
}

// tooLarge reports whether err asks for a smaller request (and the caller
// still waits for an answer).
func tooLarge(ctx context.Context, err error) bool {
	return errors.Is(err, freshen.ErrBatchTooLarge) && ctx.Err() == nil
}

// do calls call until it succeeds, fails in a way retrying cannot help,
// or the budget is used up.
func (e *Embedder) do(ctx context.Context, start time.Time, call func(context.Context) error) error {
	for attempt := 1; ; attempt++ {
		err := call(ctx)
		if err == nil {
			return nil
		}
		if cerr := ctx.Err(); cerr != nil {
			// The caller gave up; whatever the inner embedder said, the
			// answer is about ctx.
			if errors.Is(err, cerr) || freshen.IsPermanent(err) {
				return err
			}
			return fmt.Errorf("retry: %w (last error: %v)", cerr, err)
		}
		reason, ok := classify(err)
		if !ok {
			return err
		}
		if attempt >= e.cfg.MaxAttempts {
			e.gaveUp.Add(1)
			return fmt.Errorf("retry: gave up after %d attempts: %w", attempt, err)
		}
		d := e.backoff(attempt, err)
		at := e.cfg.Now().Add(d)
		if at.Sub(start) > e.cfg.MaxElapsed {
			e.gaveUp.Add(1)
			return fmt.Errorf("retry: gave up after %d attempts: the next, in %s, would start past max elapsed %s: %w", attempt, d, e.cfg.MaxElapsed, err)
		}
		if dl, ok := ctx.Deadline(); ok && at.After(dl) {
			// Waiting would only end in ctx's error; the provider's is
			// more use to the caller (its class, its retry-after).
			e.gaveUp.Add(1)
			return fmt.Errorf("retry: gave up after %d attempts: the next, in %s, would start past the caller's deadline: %w", attempt, d, err)
		}
		e.retries.Add(1)
		if o := e.cfg.Observer; o != nil {
			o.Retry(reason)
		}
		if serr := e.cfg.Sleep(ctx, d); serr != nil {
			return fmt.Errorf("retry: waiting %s to retry: %w (last error: %v)", d, serr, err)
		}
	}
}

// classify says whether err is worth retrying, and why it happened. The
// caller's context is live.
func classify(err error) (reason string, retry bool) {
	switch {
	case errors.Is(err, freshen.ErrBatchTooLarge):
		return "", false // the same request fails again; the caller splits it
	case freshen.IsPermanent(err):
		return "", false
	case errors.Is(err, context.Canceled):
		return "", false // someone cancelled the call on purpose
	case errors.Is(err, freshen.ErrRateLimited):
		return ReasonRateLimited, true
	case errors.Is(err, freshen.ErrUnavailable):
		return ReasonUnavailable, true
	case isTimeout(err):
		// The caller's ctx is live, so this is the inner call's own
		// request timeout.
		return ReasonTimeout, true
	default:
		return ReasonOther, true
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &t) && t.Timeout())
}

// backoff is the wait before retry number n (from 1): uniform in [0,
// min(MaxDelay, BaseDelay*2^(n-1))], and never less than the error's
// retry-after.
func (e *Embedder) backoff(n int, err error) time.Duration {
	bound := e.cfg.BaseDelay
	for i := 1; i < n && bound < e.cfg.MaxDelay; i++ {
		if bound > e.cfg.MaxDelay/2 {
			bound = e.cfg.MaxDelay
			break
		}
		bound *= 2
	}
	d := time.Duration(e.cfg.Rand(int64(bound) + 1))
	if after, ok := freshen.RetryAfter(err); ok && after > d {
		d = after
	}
	return d
}
