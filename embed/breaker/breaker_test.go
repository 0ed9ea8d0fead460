package breaker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/embed/embedtest"
	"github.com/freshen-io/freshen/embed/internal/fake"
)

type testBundle struct {
	inner   *fake.Embedder
	clock   *fake.Clock
	start   time.Time
	changes *changes
}

type changes struct {
	mu   sync.Mutex
	list []Change
}

func (c *changes) add(ch Change) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.list = append(c.list, ch)
}

// path returns the states gone through, from the first From.
func (c *changes) path() []State {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.list) == 0 {
		return nil
	}
	out := []State{c.list[0].From}
	for _, ch := range c.list {
		out = append(out, ch.To)
	}
	return out
}

// setup wraps inner (a fresh fake when nil) with the fake clock and a
// recorder of changes.
func setup(t *testing.T, inner freshen.Embedder, cfg Config) (*Embedder, *testBundle) {
	t.Helper()
	b := &testBundle{clock: fake.NewClock(), changes: &changes{}}
	b.start = b.clock.Now()
	if inner == nil {
		inner = &fake.Embedder{}
	}
	b.inner = fake.Inner(inner)
	b.inner.Clock = b.clock
	cfg.Now, cfg.OnStateChange = b.clock.Now, b.changes.add
	return New(inner, cfg), b
}

var errDown = fmt.Errorf("provider: 503: %w", freshen.ErrUnavailable)

// failing fails every call while down is set.
func failing() (*fake.Embedder, *sync.Map) {
	var m sync.Map
	return &fake.Embedder{Fail: func(int, []string) error {
		if _, ok := m.Load("down"); ok {
			return errDown
		}
		return nil
	}}, &m
}

func call(e *Embedder) error {
	_, err := e.Embed(context.Background(), []string{"a"})
	return err
}

func wantState(t *testing.T, e *Embedder, want State, since time.Time) {
	t.Helper()
	if s, at := e.State(); s != want || !at.Equal(since) {
		t.Fatalf("State() = %v since %v, want %v since %v", s, at, want, since)
	}
}

func TestConformance(t *testing.T) {
	embedtest.Run(t, func(t *testing.T) freshen.Embedder {
		e, _ := setup(t, nil, Config{})
		return e
	})
}

func TestForwards(t *testing.T) {
	e, b := setup(t, nil, Config{})
	fake.WantForwards(t, e, b.inner, "abcdefgh", 8)
}

func TestOpensAfterConsecutiveFailures(t *testing.T) {
	inner, m := failing()
	m.Store("down", true)
	e, b := setup(t, inner, Config{FailureThreshold: 3, OpenFor: 30 * time.Second})
	for i := range 3 {
		wantState(t, e, Closed, b.start)
		if err := call(e); err != errDown {
			t.Fatalf("call %d = %v, want the inner error as it is", i, err)
		}
	}
	wantState(t, e, Open, b.start)

	b.clock.Advance(10 * time.Second)
	err := call(e)
	if n := inner.Calls(); n != 3 {
		t.Errorf("%d calls reached the inner embedder, want 3: an open circuit fails at once", n)
	}
	if !errors.Is(err, freshen.ErrUnavailable) || !freshen.IsNotAttempt(err) || freshen.IsPermanent(err) {
		t.Errorf("open circuit's error %v: want one wrapping ErrUnavailable, not an attempt, not permanent", err)
	}
	var oe *OpenError
	until := b.start.Add(30 * time.Second)
	if !errors.As(err, &oe) || !oe.Until.Equal(until) || !strings.Contains(err.Error(), until.UTC().Format(time.RFC3339)) {
		t.Errorf("open circuit's error %v does not say until %v", err, until)
	}
	if after, ok := freshen.RetryAfter(err); !ok || after != 20*time.Second {
		t.Errorf("RetryAfter = %v, %v; want the 20s left", after, ok)
	}
	if p := b.changes.path(); !slices.Equal(p, []State{Closed, Open}) {
		t.Errorf("changes %v, want closed, open", p)
	}
	if ch := b.changes.list[0]; ch.Err != errDown || !ch.Until.Equal(until) || !ch.At.Equal(b.start) {
		t.Errorf("change to open = %+v, want its cause, at and until", ch)
	}
}

func TestSuccessResetsCount(t *testing.T) {
	inner, m := failing()
	e, b := setup(t, inner, Config{FailureThreshold: 3})
	for _, down := range []bool{true, true, false, true, true} {
		if down {
			m.Store("down", true)
		} else {
			m.Delete("down")
		}
		call(e)
	}
	wantState(t, e, Closed, b.start)
}

func TestNotFailures(t *testing.T) {
	perm := freshen.Permanent(errors.New("provider: 400: invalid input"))
	for name, c := range map[string]struct {
		err     error
		cancel  bool // the caller cancels during the call
		neutral bool // neither failure nor answer
	}{
		"Permanent":     {err: perm},
		"EmptyInput":    {err: fmt.Errorf("provider: %w", freshen.ErrEmptyInput)},
		"BatchTooLarge": {err: freshen.Retryable(fmt.Errorf("provider: 413: %w", freshen.ErrBatchTooLarge), 0)},
		"Cancelled":     {err: errDown, cancel: true, neutral: true},
		"InnerCanceled": {err: fmt.Errorf("provider: %w", context.Canceled), neutral: true},
	} {
		t.Run(name, func(t *testing.T) {
			// Two failures, then five of these: not five failures.
			seq := []error{errDown, errDown, c.err, c.err, c.err, c.err, c.err, errDown, errDown}
			e, b := setup(t, nil, Config{FailureThreshold: 3})
			for i := range seq {
				ctx, cancel := context.WithCancel(context.Background())
				b.inner.Fail = func(int, []string) error {
					if i >= 2 && i < 7 && c.cancel {
						cancel()
					}
					return seq[i]
				}
				e.Embed(ctx, []string{"a"})
				cancel()
				if i == 6 {
					wantState(t, e, Closed, b.start)
				}
			}
			// Then two failures more: an answer from the provider
			// resets the count; a cancelled call says nothing, so the two
			// before it and the two after it are four in a row.
			want := Closed
			if c.neutral {
				want = Open
			}
			if s, _ := e.State(); s != want {
				t.Errorf("after two more failures: %v, want %v", s, want)
			}
		})
	}
}

func TestOpensWhenAllCallsFailForWindow(t *testing.T) {
	inner, m := failing()
	m.Store("down", true)
	e, b := setup(t, inner, Config{FailureThreshold: 100, FailureWindow: time.Minute})
	call(e)
	b.clock.Advance(30 * time.Second)
	call(e)
	wantState(t, e, Closed, b.start)
	b.clock.Advance(30 * time.Second)
	call(e)
	wantState(t, e, Open, b.start.Add(time.Minute))

	// A success in the window starts it again.
	e, b = setup(t, inner, Config{FailureThreshold: 100, FailureWindow: time.Minute})
	call(e)
	b.clock.Advance(30 * time.Second)
	m.Delete("down")
	call(e)
	m.Store("down", true)
	call(e)
	b.clock.Advance(40 * time.Second)
	call(e)
	wantState(t, e, Closed, b.start)
}

// open returns a breaker opened at the bundle's start, with its inner
// embedder failing while m holds "down".
func open(t *testing.T, cfg Config) (*Embedder, *testBundle, *sync.Map) {
	t.Helper()
	inner, m := failing()
	m.Store("down", true)
	cfg.FailureThreshold = 1
	e, b := setup(t, inner, cfg)
	call(e)
	wantState(t, e, Open, b.start)
	return e, b, m
}

func TestHalfOpenLetsOneProbeThrough(t *testing.T) {
	e, b, m := open(t, Config{OpenFor: 30 * time.Second})
	m.Delete("down")
	b.clock.Advance(30 * time.Second)
	halfAt := b.clock.Now()
	wantState(t, e, HalfOpen, halfAt)

	b.inner.Entered = make(chan struct{}, 10)
	b.inner.Hold = make(chan struct{})
	probe := make(chan error)
	go func() { probe <- call(e) }()
	<-b.inner.Entered
	// While the probe is out, other calls fail at once.
	err := call(e)
	var oe *OpenError
	if !errors.As(err, &oe) || oe.State != HalfOpen || !freshen.IsNotAttempt(err) {
		t.Errorf("call during the probe = %v, want an OpenError for a half-open circuit", err)
	}
	if n := b.inner.Calls(); n != 2 {
		t.Errorf("%d calls reached the inner embedder, want 2 (the opening failure and the probe)", n)
	}
	b.clock.Advance(time.Second)
	close(b.inner.Hold)
	if err := <-probe; err != nil {
		t.Fatalf("probe: %v", err)
	}
	wantState(t, e, Closed, halfAt.Add(time.Second))
	if p := b.changes.path(); !slices.Equal(p, []State{Closed, Open, HalfOpen, Closed}) {
		t.Errorf("changes %v, want closed, open, half-open, closed", p)
	}
	if err := call(e); err != nil {
		t.Errorf("closed again: %v", err)
	}
}

func TestFailedProbeReopensForLonger(t *testing.T) {
	e, b, m := open(t, Config{OpenFor: 30 * time.Second, MaxOpenFor: 100 * time.Second})
	var opens []time.Duration
	for range 3 {
		_, _ = e.State()
		ch := b.changes.list[len(b.changes.list)-1]
		opens = append(opens, ch.Until.Sub(ch.At))
		b.clock.Advance(ch.Until.Sub(b.clock.Now()))
		call(e) // the probe, failing
	}
	if want := []time.Duration{30 * time.Second, 60 * time.Second, 100 * time.Second}; !slices.Equal(opens, want) {
		t.Errorf("open for %v, want %v (doubling up to MaxOpenFor)", opens, want)
	}
	// A successful probe closes, and the next opening is short again.
	b.clock.Advance(100 * time.Second)
	m.Delete("down")
	if err := call(e); err != nil {
		t.Fatal(err)
	}
	m.Store("down", true)
	call(e)
	ch := b.changes.list[len(b.changes.list)-1]
	if ch.To != Open || ch.Until.Sub(ch.At) != 30*time.Second {
		t.Errorf("opened again: %+v, want for 30s", ch)
	}
}

func TestCancelledProbeLetsAnotherProbe(t *testing.T) {
	e, b, m := open(t, Config{OpenFor: time.Second})
	m.Delete("down")
	b.clock.Advance(time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	b.inner.Fail = func(int, []string) error { cancel(); return context.Canceled }
	if _, err := e.Embed(ctx, []string{"a"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("probe = %v, want context.Canceled", err)
	}
	if s, _ := e.State(); s != HalfOpen {
		t.Fatalf("after a cancelled probe: %v, want half-open", s)
	}
	b.inner.Fail = nil
	if err := call(e); err != nil {
		t.Fatalf("next call = %v, want it let through as the probe", err)
	}
	if s, _ := e.State(); s != Closed {
		t.Errorf("after the probe succeeded: %v, want closed", s)
	}
}

func TestOutcomesOfEarlierStateIgnored(t *testing.T) {
	// A call sent while closed returns once the circuit is half-open:
	// whatever its outcome, the circuit waits for its own probe.
	for name, late := range map[string]error{"Success": nil, "Failure": errDown} {
		t.Run(name, func(t *testing.T) {
			release := make(chan struct{})
			inner := &fake.Embedder{Entered: make(chan struct{}, 10), Fail: func(n int, _ []string) error {
				if n == 0 {
					<-release
					return late
				}
				return errDown
			}}
			e, b := setup(t, inner, Config{FailureThreshold: 1, OpenFor: time.Second})
			slow := make(chan error)
			go func() { slow <- call(e) }()
			<-inner.Entered
			if err := call(e); err != errDown {
				t.Fatalf("second call = %v", err)
			}
			b.clock.Advance(time.Second)
			wantState(t, e, HalfOpen, b.start.Add(time.Second))
			close(release)
			if err := <-slow; err != late {
				t.Fatalf("late call = %v", err)
			}
			wantState(t, e, HalfOpen, b.start.Add(time.Second))
		})
	}
}

func TestStateChangesInOrderWithoutLock(t *testing.T) {
	inner, m := failing()
	m.Store("down", true)
	e, b := setup(t, inner, Config{FailureThreshold: 1, OpenFor: time.Second})
	var (
		mu     sync.Mutex
		seen   []Change
		states []State
	)
	inCallback, proceed := make(chan struct{}), make(chan struct{})
	e.cfg.OnStateChange = func(c Change) {
		if c.To == Open {
			close(inCallback)
			<-proceed
		}
		s, _ := e.State() // may call the breaker
		mu.Lock()
		seen = append(seen, c)
		states = append(states, s)
		mu.Unlock()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		call(e)
	}()
	<-inCallback
	// While the change to open is being reported, another goroutine
	// changes the state: it neither waits for the callback nor has its
	// change reported first.
	b.clock.Advance(time.Second)
	stateDone := make(chan State)
	go func() {
		s, _ := e.State()
		stateDone <- s
	}()
	select {
	case s := <-stateDone:
		if s != HalfOpen {
			t.Errorf("State() = %v, want half-open", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("State blocked while OnStateChange ran")
	}
	close(proceed)
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0].To != Open || seen[1].To != HalfOpen {
		t.Errorf("changes reported %+v, want to open, then to half-open", seen)
	}
}

func TestEmbedQuery(t *testing.T) {
	t.Run("InnerQueryEmbedder", func(t *testing.T) {
		e, _ := setup(t, &fake.QueryEmbedder{}, Config{})
		v, err := e.EmbedQuery(context.Background(), "where")
		if err != nil || !slices.Equal(v, fake.HashVec("query: where")) {
			t.Errorf("EmbedQuery = %v: did not use the inner EmbedQuery", err)
		}
	})
	t.Run("FallsBackToEmbed", func(t *testing.T) {
		e, b := setup(t, nil, Config{})
		v, err := e.EmbedQuery(context.Background(), "where")
		if err != nil || !slices.Equal(v, fake.HashVec("where")) || len(b.inner.Texts()) != 1 {
			t.Errorf("EmbedQuery = %v: not the inner Embed", err)
		}
	})
	t.Run("SameCircuit", func(t *testing.T) {
		e, b, _ := open(t, Config{})
		if _, err := e.EmbedQuery(context.Background(), "where"); !errors.Is(err, freshen.ErrUnavailable) {
			t.Errorf("EmbedQuery on an open circuit = %v, want ErrUnavailable", err)
		}
		if n := b.inner.Calls(); n != 1 {
			t.Errorf("%d calls, want only the one that opened it", n)
		}
	})
}

func TestValidate(t *testing.T) {
	fake.WantValidate(t,
		Config{FailureThreshold: -1},
		Config{OpenFor: -time.Second},
		Config{OpenFor: time.Hour, MaxOpenFor: time.Minute},
	)
	d := Config{}.WithDefaults()
	if d.FailureThreshold != 5 || d.FailureWindow != time.Minute || d.OpenFor != 30*time.Second || d.MaxOpenFor != 5*time.Minute {
		t.Errorf("defaults = %+v", d)
	}
}

// TestThrottlingIsNotDown: a provider answering 429 is up; the limiter
// paces it, and the breaker stays closed however many 429s come.
func TestThrottlingIsNotDown(t *testing.T) {
	throttled := freshen.Retryable(fmt.Errorf("429: %w", freshen.ErrRateLimited), time.Second)
	inner := &fake.Embedder{Fail: func(int, []string) error { return throttled }}
	e, b := setup(t, inner, Config{FailureThreshold: 3})
	inner.Clock = b.clock
	for range 10 {
		call(e)
	}
	wantState(t, e, Closed, b.start)
}
