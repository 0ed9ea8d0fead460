package breaker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/freshen-io/freshen"
)

// State is the state of the circuit.
type State int

const (
	// Closed: calls pass, failures are counted.
	Closed State = iota
	// Open: calls fail at once, until a probe is due.
	Open
	// HalfOpen: one probe call is let through; its outcome closes or
	// reopens the circuit.
	HalfOpen
)

func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Change describes a change of state, for logs, metrics and readiness.
type Change struct {
	From, To State
	At       time.Time
	// Until is when a probe is due, for a change to Open.
	Until time.Time
	// Err is the failure that opened the circuit, for a change to Open.
	Err error
}

// Config tunes the breaker. Zero fields take their defaults.
type Config struct {
	// FailureThreshold is the number of consecutive failures that opens
	// the circuit (default 5).
	FailureThreshold int
	// FailureWindow opens the circuit sooner when calls are few: once
	// every call has failed for this long, at least two of them (default
	// 1m; negative: never).
	FailureWindow time.Duration
	// OpenFor is how long the circuit first stays open (default 30s); it
	// doubles with each failed probe, up to MaxOpenFor (default 5m), and
	// is back to OpenFor once a probe succeeds.
	OpenFor    time.Duration
	MaxOpenFor time.Duration

	// OnStateChange, when set, is called for each change of state, in
	// order and one at a time, without the breaker's lock held, from the
	// goroutine of a call (or of State) that changed the state; that
	// goroutine also reports changes other goroutines make meanwhile, so
	// the callback should be fast. It may call the breaker's methods.
	OnStateChange func(Change)

	// Now is the clock; tests replace it (default time.Now).
	Now func() time.Time
}

// WithDefaults returns c with its zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.FailureThreshold == 0 {
		c.FailureThreshold = 5
	}
	if c.FailureWindow == 0 {
		c.FailureWindow = time.Minute
	}
	if c.OpenFor == 0 {
		c.OpenFor = 30 * time.Second
	}
	if c.MaxOpenFor == 0 {
		c.MaxOpenFor = 5 * time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports every mistake in the effective configuration (c with
// defaults applied), joined.
func (c Config) Validate() error {
	c = c.WithDefaults()
	var errs []error
	if c.FailureThreshold < 1 {
		errs = append(errs, fmt.Errorf("breaker: config: failure-threshold is %d; it must be at least 1 (0 means the default, 5)", c.FailureThreshold))
	}
	if c.OpenFor < 0 || c.MaxOpenFor < 0 {
		errs = append(errs, fmt.Errorf("breaker: config: open-for (%s) and max-open-for (%s) cannot be negative (0 means the default)", c.OpenFor, c.MaxOpenFor))
	} else if c.OpenFor > c.MaxOpenFor {
		errs = append(errs, fmt.Errorf("breaker: config: open-for (%s) must not exceed max-open-for (%s)", c.OpenFor, c.MaxOpenFor))
	}
	return errors.Join(errs...)
}

// OpenError is the error of a call the breaker refused. It wraps
// freshen.ErrUnavailable; Embed returns it marked retryable no sooner
// than Until (freshen.RetryAfter), when Until is known.
type OpenError struct {
	// Model is the inner embedder's model name.
	Model string
	// State is Open, or HalfOpen while another call probes.
	State State
	// Until is when a probe is due (zero while a probe is in flight).
	Until time.Time
	// Cause is the message of the failure that opened the circuit.
	Cause string
}

func (e *OpenError) Error() string {
	if e.State == HalfOpen {
		return fmt.Sprintf("breaker: %s: %v: circuit half-open, a probe call is in flight (opened after: %s)", e.Model, freshen.ErrUnavailable, e.Cause)
	}
	return fmt.Sprintf("breaker: %s: %v: circuit open until %s (after: %s)", e.Model, freshen.ErrUnavailable, e.Until.UTC().Format(time.RFC3339), e.Cause)
}

// Unwrap returns freshen.ErrUnavailable only: the failure that opened
// the circuit is not this call's, so its class does not carry over.
func (e *OpenError) Unwrap() error { return freshen.ErrUnavailable }

// Embedder is a circuit breaker in front of an inner Embedder.
//
// Stacking: the breaker goes inside retry, so that it counts each attempt
// and an open circuit's retry-after reaches the retry decorator, and
// outside limit, so that refused calls do not queue for rate or slots:
//
//	retry.New(breaker.New(limit.New(provider, lc), bc), rc)
type Embedder struct {
	inner freshen.Embedder
	cfg   Config

	mu    sync.Mutex
	state State
	since time.Time
	// gen counts changes of state; a call remembers the one it started
	// in, and its outcome is ignored if the state changed meanwhile.
	gen          uint64
	failures     int
	firstFailure time.Time
	openFor      time.Duration
	until        time.Time
	probing      bool
	cause        string
	// pending are changes not yet reported to OnStateChange; delivering
	// is set while a goroutine reports them.
	pending    []Change
	delivering bool
}

var (
	_ freshen.Embedder      = (*Embedder)(nil)
	_ freshen.TokenCounter  = (*Embedder)(nil)
	_ freshen.QueryEmbedder = (*Embedder)(nil)
)

// New wraps inner, closed. It panics if cfg.Validate fails: validate
// configuration from users first.
func New(inner freshen.Embedder, cfg Config) *Embedder {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	cfg = cfg.WithDefaults()
	return &Embedder{inner: inner, cfg: cfg, since: cfg.Now(), openFor: cfg.OpenFor}
}

// Model implements freshen.Embedder.
func (b *Embedder) Model() freshen.ModelInfo { return b.inner.Model() }

// CountTokens forwards to the inner embedder's own measure, if it has one.
func (b *Embedder) CountTokens(text string) int { return freshen.CountTokens(b.inner, text) }

// State returns the state of the circuit and since when it is in it. An
// open circuit whose probe is due reports HalfOpen.
func (b *Embedder) State() (State, time.Time) {
	now := b.cfg.Now()
	b.mu.Lock()
	ch := b.advance(now)
	s, since := b.state, b.since
	b.unlock(ch)
	return s, since
}

// Embed implements freshen.Embedder. While the circuit is open it fails
// at once with an *OpenError (wrapping freshen.ErrUnavailable); otherwise
// it calls the inner embedder and returns what it returned.
func (b *Embedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if len(texts) == 0 {
		return nil, nil
	}
	var vecs [][]float32
	err := b.do(ctx, func(ctx context.Context) (err error) {
		vecs, err = b.inner.Embed(ctx, texts)
		return err
	})
	return vecs, err
}

// EmbedQuery implements freshen.QueryEmbedder behind the same circuit,
// using the inner embedder's EmbedQuery when it has one and its Embed of
// the one query otherwise.
func (b *Embedder) EmbedQuery(ctx context.Context, query string) ([]float32, error) {
	var vec []float32
	err := b.do(ctx, func(ctx context.Context) (err error) {
		vec, err = freshen.EmbedQuery(ctx, b.inner, query)
		return err
	})
	return vec, err
}

func (b *Embedder) do(ctx context.Context, call func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	gen, err := b.allow()
	if err != nil {
		return err
	}
	err = call(ctx)
	b.record(ctx, gen, err)
	return err
}

// allow lets a call through, or refuses it with the error to return.
func (b *Embedder) allow() (gen uint64, err error) {
	now := b.cfg.Now()
	b.mu.Lock()
	ch := b.advance(now)
	switch {
	case b.state == Open:
		err = freshen.Retryable(&OpenError{Model: b.inner.Model().Name, State: Open, Until: b.until, Cause: b.cause}, b.until.Sub(now))
	case b.state == HalfOpen && b.probing:
		err = &OpenError{Model: b.inner.Model().Name, State: HalfOpen, Cause: b.cause}
	case b.state == HalfOpen:
		b.probing = true
	}
	gen = b.gen
	b.unlock(ch)
	return gen, err
}

type outcome int

const (
	neutral outcome = iota // says nothing about the provider
	success                // the provider answered
	failure
)

func classify(ctx context.Context, err error) outcome {
	switch {
	case err == nil:
		return success
	case ctx.Err() != nil, errors.Is(err, context.Canceled):
		return neutral
	case freshen.IsPermanent(err), errors.Is(err, freshen.ErrBatchTooLarge):
		return success
	case errors.Is(err, freshen.ErrRateLimited) && !errors.Is(err, freshen.ErrUnavailable):
		// A provider that throttles is up: pacing is the limiter's job,
		// and opening here would only hide its Retry-After.
		return neutral
	default:
		return failure
	}
}

// record counts the outcome of a call let through in generation gen.
func (b *Embedder) record(ctx context.Context, gen uint64, err error) {
	o := classify(ctx, err)
	now := b.cfg.Now()
	b.mu.Lock()
	var ch []Change
	if gen != b.gen {
		// Sent before the state changed: in an open circuit it proves
		// nothing, and a half-open one waits for its own probe.
		b.unlock(nil)
		return
	}
	switch o {
	case neutral:
		b.probing = false // the next call probes instead
	case success:
		b.failures = 0
		if b.state == HalfOpen {
			b.openFor = b.cfg.OpenFor
			ch = b.set(Closed, now, nil)
		}
	case failure:
		switch b.state {
		case Closed:
			if b.failures == 0 {
				b.firstFailure = now
			}
			b.failures++
			if b.failures >= b.cfg.FailureThreshold || (b.cfg.FailureWindow > 0 && now.Sub(b.firstFailure) >= b.cfg.FailureWindow) {
				ch = b.set(Open, now, err)
			}
		case HalfOpen:
			b.openFor = min(2*b.openFor, b.cfg.MaxOpenFor)
			ch = b.set(Open, now, err)
		}
	}
	b.unlock(ch)
}

// advance turns an open circuit whose probe is due half-open. b.mu is
// held.
func (b *Embedder) advance(now time.Time) []Change {
	if b.state == Open && !now.Before(b.until) {
		return b.set(HalfOpen, now, nil)
	}
	return nil
}

// set changes the state. b.mu is held.
func (b *Embedder) set(to State, now time.Time, cause error) []Change {
	c := Change{From: b.state, To: to, At: now}
	b.state, b.since = to, now
	b.gen++
	b.failures = 0
	b.probing = false
	if to == Open {
		b.until = now.Add(b.openFor)
		b.cause = cause.Error()
		c.Until, c.Err = b.until, cause
	}
	return []Change{c}
}

// unlock queues changes and releases b.mu. The first goroutine to find
// no delivery under way delivers the queue, in order, without b.mu held,
// until it is empty, including changes that other goroutines queue
// meanwhile; they do not wait for it.
func (b *Embedder) unlock(changes []Change) {
	if b.cfg.OnStateChange == nil {
		b.mu.Unlock()
		return
	}
	b.pending = append(b.pending, changes...)
	if b.delivering || len(b.pending) == 0 {
		b.mu.Unlock()
		return
	}
	b.delivering = true
	for len(b.pending) > 0 {
		batch := b.pending
		b.pending = nil
		b.mu.Unlock()
		for _, c := range batch {
			b.cfg.OnStateChange(c)
		}
		b.mu.Lock()
	}
	b.delivering = false
	b.mu.Unlock()
}
