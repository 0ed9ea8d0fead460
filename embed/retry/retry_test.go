package retry

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
	inner *fake.Embedder
	clock *fake.Clock
	obs   *observer
	// rands records the n of every call to Rand.
	rands *[]int64
}

type observer struct {
	mu      sync.Mutex
	reasons []string
}

func (o *observer) Retry(reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.reasons = append(o.reasons, reason)
}

// setup wraps inner (a fresh fake when nil) with the fake clock, an
// observer and a Rand that draws the top of its range unless cfg sets
// another.
func setup(t *testing.T, inner freshen.Embedder, cfg Config) (*Embedder, *testBundle) {
	t.Helper()
	b := &testBundle{clock: fake.NewClock(), obs: &observer{}, rands: new([]int64)}
	if inner == nil {
		inner = &fake.Embedder{}
	}
	b.inner = fake.Inner(inner)
	// The fake's own measure, so that forwarding shows.
	b.inner.Count = func(text string) int { return 1000 + len(text) }
	cfg.Now, cfg.Sleep, cfg.Observer = b.clock.Now, b.clock.Sleep, b.obs
	draw := cfg.Rand
	if draw == nil {
		draw = func(n int64) int64 { return n - 1 }
	}
	var mu sync.Mutex
	cfg.Rand = func(n int64) int64 {
		mu.Lock()
		*b.rands = append(*b.rands, n)
		mu.Unlock()
		return draw(n)
	}
	return New(inner, cfg), b
}

var texts = []string{"a", "b", "c", "d", "e"}

func wantVecs(t *testing.T, got [][]float32, in []string) {
	t.Helper()
	if len(got) != len(in) {
		t.Fatalf("got %d vectors for %d texts", len(got), len(in))
	}
	for i, s := range in {
		if !slices.Equal(got[i], fake.HashVec(s)) {
			t.Fatalf("vector %d is not the vector of %q: out of order or wrong", i, s)
		}
	}
}

func unavailable() error { return fmt.Errorf("provider: 503: %w", freshen.ErrUnavailable) }
func rateLimited(after time.Duration) error {
	return freshen.Retryable(fmt.Errorf("provider: 429: %w", freshen.ErrRateLimited), after)
}

func TestConformance(t *testing.T) {
	for name, fail := range map[string]func(int, []string) error{
		"Reliable": nil,
		// Every other call fails, retryably: the suite must not notice.
		"Flaky": func(n int, _ []string) error {
			if n%2 == 0 {
				return unavailable()
			}
			return nil
		},
		// Requests of more than two texts are too large: the suite's
		// batches are answered by halves, in order.
		"SmallRequests": func(_ int, in []string) error {
			if len(in) > 2 {
				return fmt.Errorf("provider: 413: %w", freshen.ErrBatchTooLarge)
			}
			return nil
		},
	} {
		t.Run(name, func(t *testing.T) {
			embedtest.Run(t, func(t *testing.T) freshen.Embedder {
				e, _ := setup(t, &fake.Embedder{Fail: fail}, Config{})
				return e
			})
		})
	}
}

func TestForwards(t *testing.T) {
	e, b := setup(t, nil, Config{})
	fake.WantForwards(t, e, b.inner, "abcd", 1004)
}

func TestRetriesRetryableErrors(t *testing.T) {
	e, b := setup(t, &fake.Embedder{Fail: fake.Script(unavailable(), rateLimited(0), errors.New("connection reset"),
		fmt.Errorf("provider: %w", context.DeadlineExceeded))}, Config{})
	got, err := e.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	wantVecs(t, got, texts)
	if n := len(b.inner.Texts()); n != 5 {
		t.Errorf("%d calls, want 5 (4 failures, then success)", n)
	}
	want := []string{ReasonUnavailable, ReasonRateLimited, ReasonOther, ReasonTimeout}
	if !slices.Equal(b.obs.reasons, want) {
		t.Errorf("observed reasons %q, want %q", b.obs.reasons, want)
	}
	if s := e.Stats(); s.Retries != 4 || s.GaveUp != 0 {
		t.Errorf("Stats() = %+v, want 4 retries", s)
	}
}

func TestFullJitterExponentialBackoff(t *testing.T) {
	cfg := Config{MaxAttempts: 7, BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}
	fails := []error{unavailable(), unavailable(), unavailable(), unavailable(), unavailable(), unavailable()}

	// The bound of each draw doubles from BaseDelay up to MaxDelay, and
	// the wait is the draw, whatever it is in [0, bound].
	e, b := setup(t, &fake.Embedder{Fail: fake.Script(fails...)}, cfg)
	if _, err := e.Embed(context.Background(), texts); err != nil {
		t.Fatal(err)
	}
	bounds := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second}
	var ns []int64
	for _, d := range bounds {
		ns = append(ns, int64(d)+1) // Rand(n) draws from [0, n): bound included
	}
	if !slices.Equal(*b.rands, ns) {
		t.Errorf("Rand called with %v, want %v", *b.rands, ns)
	}
	if got := b.clock.Slept(); !slices.Equal(got, bounds) {
		t.Errorf("waited %v, want the draws %v", got, bounds)
	}

	// Full jitter: a draw of 0 means retrying at once, not after a
	// fixed half.
	cfg.Rand = func(int64) int64 { return 0 }
	e, b = setup(t, &fake.Embedder{Fail: fake.Script(fails...)}, cfg)
	if _, err := e.Embed(context.Background(), texts); err != nil {
		t.Fatal(err)
	}
	if got := b.clock.Slept(); !slices.Equal(got, make([]time.Duration, 6)) {
		t.Errorf("with draws of 0 waited %v, want no waits", got)
	}
}

func TestNeverSoonerThanRetryAfter(t *testing.T) {
	cfg := Config{BaseDelay: 100 * time.Millisecond, Rand: func(int64) int64 { return 0 }}
	e, b := setup(t, &fake.Embedder{Fail: fake.Script(rateLimited(7 * time.Second))}, cfg)
	if _, err := e.Embed(context.Background(), texts); err != nil {
		t.Fatal(err)
	}
	if got := b.clock.Slept(); !slices.Equal(got, []time.Duration{7 * time.Second}) {
		t.Errorf("waited %v, want the 7s the error asked for", got)
	}

	// A retry-after shorter than the draw does not shorten it.
	cfg.Rand = nil // the top of the range
	e, b = setup(t, &fake.Embedder{Fail: fake.Script(rateLimited(time.Millisecond))}, cfg)
	if _, err := e.Embed(context.Background(), texts); err != nil {
		t.Fatal(err)
	}
	if got := b.clock.Slept(); !slices.Equal(got, []time.Duration{100 * time.Millisecond}) {
		t.Errorf("waited %v, want the 100ms drawn", got)
	}
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	var cause = errors.New("connection reset")
	e, b := setup(t, &fake.Embedder{Fail: func(int, []string) error { return freshen.Retryable(cause, time.Second) }}, Config{MaxAttempts: 3})
	_, err := e.Embed(context.Background(), texts)
	if !errors.Is(err, cause) {
		t.Fatalf("Embed = %v, want the last error", err)
	}
	if n := len(b.inner.Texts()); n != 3 {
		t.Errorf("%d calls, want MaxAttempts = 3", n)
	}
	// Still classified: retryable, with its retry-after.
	if freshen.IsPermanent(err) {
		t.Errorf("the error given up with became permanent: %v", err)
	}
	if after, ok := freshen.RetryAfter(err); !ok || after != time.Second {
		t.Errorf("RetryAfter = %v, %v; want the cause's 1s", after, ok)
	}
	if s := e.Stats(); s.Retries != 2 || s.GaveUp != 1 {
		t.Errorf("Stats() = %+v, want 2 retries and 1 given up", s)
	}
}

func TestGivesUpAfterMaxElapsed(t *testing.T) {
	always := func(after time.Duration) func(int, []string) error {
		return func(int, []string) error { return rateLimited(after) }
	}
	// Retries at 0.7s and 1.4s would be due; only the first starts
	// within a second.
	e, b := setup(t, &fake.Embedder{Fail: always(700 * time.Millisecond)}, Config{MaxElapsed: time.Second, Rand: func(int64) int64 { return 0 }})
	_, err := e.Embed(context.Background(), texts)
	if !errors.Is(err, freshen.ErrRateLimited) {
		t.Fatalf("Embed = %v, want the last error", err)
	}
	if n := len(b.inner.Texts()); n != 2 {
		t.Errorf("%d calls, want 2 within MaxElapsed", n)
	}

	// A retry-after beyond the budget is not waited for at all.
	e, b = setup(t, &fake.Embedder{Fail: always(5 * time.Minute)}, Config{})
	_, err = e.Embed(context.Background(), texts)
	if after, ok := freshen.RetryAfter(err); !ok || after != 5*time.Minute {
		t.Fatalf("Embed = %v (retry-after %v), want the last error with its retry-after", err, after)
	}
	if n, slept := len(b.inner.Texts()), b.clock.Slept(); n != 1 || len(slept) != 0 {
		t.Errorf("%d calls and waits %v; want one call and no wait", n, slept)
	}
}

func TestNeverRetriesPermanentErrors(t *testing.T) {
	for name, perm := range map[string]error{
		"Marked":     freshen.Permanent(errors.New("provider: 400: invalid input")),
		"EmptyInput": fmt.Errorf("provider: %w", freshen.ErrEmptyInput),
	} {
		t.Run(name, func(t *testing.T) {
			e, b := setup(t, &fake.Embedder{Fail: fake.Script(perm)}, Config{})
			_, err := e.Embed(context.Background(), texts)
			if err != perm {
				t.Errorf("Embed = %v, want %v as it is", err, perm)
			}
			if n := len(b.inner.Texts()); n != 1 {
				t.Errorf("%d calls, want 1", n)
			}
		})
	}
}

func TestNeverRetriesContextErrors(t *testing.T) {
	t.Run("CancelledDuringCall", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		e, b := setup(t, &fake.Embedder{Fail: func(int, []string) error { cancel(); return unavailable() }}, Config{})
		_, err := e.Embed(ctx, texts)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Embed = %v, want context.Canceled", err)
		}
		if n := len(b.inner.Texts()); n != 1 {
			t.Errorf("%d calls, want 1", n)
		}
		if s := e.Stats(); s.Retries != 0 || len(b.obs.reasons) != 0 {
			t.Errorf("counted a retry after the caller cancelled: %+v, %q", s, b.obs.reasons)
		}
	})
	t.Run("InnerCancelled", func(t *testing.T) {
		e, b := setup(t, &fake.Embedder{Fail: fake.Script(fmt.Errorf("provider: %w", context.Canceled))}, Config{})
		if _, err := e.Embed(context.Background(), texts); !errors.Is(err, context.Canceled) {
			t.Errorf("Embed = %v, want context.Canceled", err)
		}
		if n := len(b.inner.Texts()); n != 1 {
			t.Errorf("%d calls, want 1", n)
		}
	})
	t.Run("CancelledWhileWaiting", func(t *testing.T) {
		e, b := setup(t, &fake.Embedder{Fail: fake.Script(unavailable())}, Config{})
		b.clock.OnSleep = func(context.Context) error { return context.Canceled }
		_, err := e.Embed(context.Background(), texts)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Embed = %v, want context.Canceled", err)
		}
		if n := len(b.inner.Texts()); n != 1 {
			t.Errorf("%d calls, want 1", n)
		}
	})
	t.Run("DeadlineBeforeRetry", func(t *testing.T) {
		e, b := setup(t, &fake.Embedder{Fail: fake.Script(rateLimited(2 * time.Minute))}, Config{MaxElapsed: time.Hour})
		ctx, cancel := context.WithDeadline(context.Background(), b.clock.Now().Add(time.Minute))
		defer cancel()
		_, err := e.Embed(ctx, texts)
		if !errors.Is(err, freshen.ErrRateLimited) {
			t.Errorf("Embed = %v, want the provider's error rather than a wait into the deadline", err)
		}
		if n, slept := len(b.inner.Texts()), b.clock.Slept(); n != 1 || len(slept) != 0 {
			t.Errorf("%d calls and waits %v; want one call and no wait", n, slept)
		}
	})
}

func TestSplitsBatchTooLarge(t *testing.T) {
	tooLarge := freshen.Retryable(fmt.Errorf("provider: 413: %w", freshen.ErrBatchTooLarge), 0)
	e, b := setup(t, &fake.Embedder{Fail: func(_ int, in []string) error {
		if len(in) > 2 {
			return tooLarge
		}
		return nil
	}}, Config{})
	got, err := e.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	wantVecs(t, got, texts)
	want := [][]string{{"a", "b", "c", "d", "e"}, {"a", "b"}, {"c", "d", "e"}, {"c"}, {"d", "e"}}
	if calls := b.inner.Texts(); !slices.EqualFunc(calls, want, slices.Equal) {
		t.Errorf("calls %q, want halves %q", calls, want)
	}
	if s := e.Stats(); s.Splits != 2 || s.Retries != 0 {
		t.Errorf("Stats() = %+v, want 2 splits and no retries", s)
	}
	if slept := b.clock.Slept(); len(slept) != 0 {
		t.Errorf("waited %v before embedding halves", slept)
	}
}

func TestSingleTextTooLargeIsPermanent(t *testing.T) {
	// Retryable outside, as a provider might mark it: still permanent
	// once it is one text.
	tooLarge := freshen.Retryable(fmt.Errorf("provider: 413: %w", freshen.ErrBatchTooLarge), time.Second)
	e, b := setup(t, &fake.Embedder{Fail: func(_ int, in []string) error {
		if slices.ContainsFunc(in, func(s string) bool { return len(s) > 10 }) {
			return tooLarge
		}
		return nil
	}}, Config{})
	_, err := e.Embed(context.Background(), []string{"ok", strings.Repeat("x", 11)})
	if !errors.Is(err, freshen.ErrBatchTooLarge) || !freshen.IsPermanent(err) {
		t.Errorf("Embed = %v (permanent: %v), want a permanent error wrapping ErrBatchTooLarge", err, freshen.IsPermanent(err))
	}
	if n := len(b.inner.Texts()); n != 3 {
		t.Errorf("%d calls, want 3 (the pair, then each text)", n)
	}
	if s := e.Stats(); s.Retries != 0 {
		t.Errorf("retried a request found too large: %+v", s)
	}
}

func TestEmbedQuery(t *testing.T) {
	t.Run("InnerQueryEmbedder", func(t *testing.T) {
		inner := &fake.QueryEmbedder{Embedder: fake.Embedder{Fail: fake.Script(unavailable())}}
		e, b := setup(t, inner, Config{})
		v, err := e.EmbedQuery(context.Background(), "where")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(v, fake.HashVec("query: where")) {
			t.Errorf("EmbedQuery did not use the inner EmbedQuery")
		}
		if len(inner.Queries()) != 2 || len(b.inner.Texts()) != 0 {
			t.Errorf("%d queries and %d Embed calls, want 2 queries (one retry) and no Embed", len(inner.Queries()), len(b.inner.Texts()))
		}
	})
	t.Run("FallsBackToEmbed", func(t *testing.T) {
		e, b := setup(t, &fake.Embedder{Fail: fake.Script(unavailable())}, Config{})
		v, err := e.EmbedQuery(context.Background(), "where")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(v, fake.HashVec("where")) {
			t.Errorf("EmbedQuery of an embedder without queries is not its Embed")
		}
		if n := len(b.inner.Texts()); n != 2 {
			t.Errorf("%d calls, want 2 (one retry)", n)
		}
	})
	t.Run("NeverRetriesPermanent", func(t *testing.T) {
		inner := &fake.QueryEmbedder{Embedder: fake.Embedder{Fail: fake.Script(freshen.Permanent(errors.New("bad")))}}
		e, _ := setup(t, inner, Config{})
		if _, err := e.EmbedQuery(context.Background(), "where"); !freshen.IsPermanent(err) {
			t.Errorf("EmbedQuery = %v, want the permanent error", err)
		}
		if len(inner.Queries()) != 1 {
			t.Errorf("%d queries, want 1", len(inner.Queries()))
		}
	})
	t.Run("TooLargeIsPermanent", func(t *testing.T) {
		inner := &fake.QueryEmbedder{Embedder: fake.Embedder{Fail: fake.Script(fmt.Errorf("413: %w", freshen.ErrBatchTooLarge))}}
		e, _ := setup(t, inner, Config{})
		if _, err := e.EmbedQuery(context.Background(), "where"); !freshen.IsPermanent(err) || !errors.Is(err, freshen.ErrBatchTooLarge) {
			t.Errorf("EmbedQuery = %v, want a permanent error wrapping ErrBatchTooLarge", err)
		}
	})
}

func TestValidate(t *testing.T) {
	fake.WantValidate(t,
		Config{MaxAttempts: -1},
		Config{MaxElapsed: -time.Second},
		Config{BaseDelay: time.Minute, MaxDelay: time.Second},
	)
	d := Config{}.WithDefaults()
	if d.MaxAttempts != 6 || d.MaxElapsed != time.Minute || d.BaseDelay != 500*time.Millisecond || d.MaxDelay != 30*time.Second {
		t.Errorf("defaults = %+v", d)
	}
}
