package limit

import (
	"context"
	"errors"
	"fmt"
	"math"
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
	start time.Time
}

// setup wraps inner (a fresh fake when nil) with the fake clock.
func setup(t *testing.T, inner freshen.Embedder, cfg Config) (*Embedder, *testBundle) {
	t.Helper()
	b := &testBundle{clock: fake.NewClock()}
	b.start = b.clock.Now()
	if inner == nil {
		inner = &fake.Embedder{}
	}
	b.inner = fake.Inner(inner)
	b.inner.Clock = b.clock
	cfg.Now, cfg.Sleep = b.clock.Now, b.clock.Sleep
	return New(inner, cfg), b
}

func embed(t *testing.T, e *Embedder, texts ...string) {
	t.Helper()
	if _, err := e.Embed(context.Background(), texts); err != nil {
		t.Fatalf("Embed(%q): %v", texts, err)
	}
}

func rateLimited(after time.Duration) error {
	return freshen.Retryable(fmt.Errorf("provider: 429: %w", freshen.ErrRateLimited), after)
}

// waitFor polls cond until it holds, failing the test after a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

func TestConformance(t *testing.T) {
	for name, cfg := range map[string]Config{
		"NoLimits": {},
		// Tight enough that the suite's calls wait for every limit.
		"Tight": {RequestsPerMinute: 60, RequestBurst: 1, TokensPerMinute: 600, TokenBurst: 10, MaxConcurrency: 2},
	} {
		t.Run(name, func(t *testing.T) {
			embedtest.Run(t, func(t *testing.T) freshen.Embedder {
				e, _ := setup(t, nil, cfg)
				return e
			})
		})
	}
}

func TestForwards(t *testing.T) {
	e, b := setup(t, nil, Config{})
	fake.WantForwards(t, e, b.inner, "abcdefgh", 8)
}

func TestRequestsPerMinute(t *testing.T) {
	e, b := setup(t, nil, Config{RequestsPerMinute: 60, RequestBurst: 2})
	for range 4 {
		embed(t, e, "a")
	}
	want := []time.Duration{0, 0, time.Second, 2 * time.Second}
	if got := b.inner.Times(b.start); !slices.Equal(got, want) {
		t.Errorf("calls at %v, want %v (a burst of 2, then one a second)", got, want)
	}
	if s := e.Stats(); s.RequestsPerMinute != 60 {
		t.Errorf("Stats().RequestsPerMinute = %v, want 60", s.RequestsPerMinute)
	}
}

func TestTokensPerMinuteCountedByInner(t *testing.T) {
	// 10 tokens a second. Sixty bytes are 60 tokens by the inner
	// embedder's count, but only 15 by the default estimate.
	e, b := setup(t, nil, Config{TokensPerMinute: 600, TokenBurst: 100})
	text := strings.Repeat("x", 60)
	embed(t, e, text)
	embed(t, e, text)
	want := []time.Duration{0, 2 * time.Second}
	if got := b.inner.Times(b.start); !slices.Equal(got, want) {
		t.Errorf("calls at %v, want %v", got, want)
	}
	// The second call emptied the bucket: 10 tokens more take a second.
	if d := e.Delay([]string{"0123456789"}); d != time.Second {
		t.Errorf("Delay of 10 tokens from an empty bucket = %v, want 1s", d)
	}
}

func TestCallLargerThanBurstGoesAloneOnceFull(t *testing.T) {
	e, b := setup(t, nil, Config{TokensPerMinute: 600, TokenBurst: 100})
	embed(t, e, strings.Repeat("a", 50))  // the bucket holds 50 after it
	embed(t, e, strings.Repeat("b", 250)) // waits until full: 5s
	embed(t, e, strings.Repeat("c", 10))  // waits for the 150 owed and its 10: 16s
	want := []time.Duration{0, 5 * time.Second, 21 * time.Second}
	if got := b.inner.Times(b.start); !slices.Equal(got, want) {
		t.Errorf("calls at %v, want %v", got, want)
	}
}

func TestMaxConcurrency(t *testing.T) {
	inner := &fake.Embedder{Entered: make(chan struct{}, 10), Hold: make(chan struct{})}
	e, _ := setup(t, inner, Config{MaxConcurrency: 2})
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for i := range 3 {
		wg.Go(func() {
			_, err := e.Embed(context.Background(), []string{fmt.Sprint(i)})
			errs <- err
		})
	}
	<-inner.Entered
	<-inner.Entered
	waitFor(t, "the third call queues for a slot", func() bool { return e.Stats().Queued == 1 })
	if s := e.Stats(); s.InFlight != 2 || len(inner.Entered) != 0 {
		t.Fatalf("%d in flight and %d more calls arrived, want 2 and none", s.InFlight, len(inner.Entered))
	}
	inner.Hold <- struct{}{} // one call returns: the third goes in
	<-inner.Entered
	close(inner.Hold)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if s := e.Stats(); s.Queued != 0 || s.InFlight != 0 {
		t.Errorf("after the calls: %+v", s)
	}
}

func TestQueuedCallHonoursContext(t *testing.T) {
	inner := &fake.Embedder{Entered: make(chan struct{}, 10), Hold: make(chan struct{})}
	e, _ := setup(t, inner, Config{MaxConcurrency: 1})
	first := make(chan error)
	go func() {
		_, err := e.Embed(context.Background(), []string{"a"})
		first <- err
	}()
	<-inner.Entered
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error)
	go func() {
		_, err := e.Embed(ctx, []string{"b"})
		res <- err
	}()
	waitFor(t, "the second call queues", func() bool { return e.Stats().Queued == 1 })
	cancel()
	if err := <-res; !errors.Is(err, context.Canceled) {
		t.Errorf("queued call after cancel = %v, want context.Canceled", err)
	}
	close(inner.Hold)
	if err := <-first; err != nil {
		t.Error(err)
	}
	if n := inner.Calls(); n != 1 {
		t.Errorf("%d calls reached the inner embedder, want 1", n)
	}
}

func TestCancelWhileWaitingGivesBack(t *testing.T) {
	e, b := setup(t, nil, Config{RequestsPerMinute: 60, RequestBurst: 1})
	embed(t, e, "a")
	ctx, cancel := context.WithCancel(context.Background())
	b.clock.OnSleep = func(context.Context) error { cancel(); return context.Canceled }
	if _, err := e.Embed(ctx, []string{"b"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Embed while waiting, cancelled = %v, want context.Canceled", err)
	}
	b.clock.OnSleep = nil
	// The cancelled call's request is given back: the next waits one
	// interval, not two.
	embed(t, e, "c")
	want := []time.Duration{0, time.Second}
	if got := b.inner.Times(b.start); !slices.Equal(got, want) {
		t.Errorf("calls at %v, want %v", got, want)
	}
}

func TestRateLimitedCutsRatesThenRecovers(t *testing.T) {
	e, _ := setup(t, &fake.Embedder{Fail: fake.Script(rateLimited(0))}, Config{RequestsPerMinute: 600, TokensPerMinute: 60000})
	if _, err := e.Embed(context.Background(), []string{"a"}); !errors.Is(err, freshen.ErrRateLimited) {
		t.Fatalf("Embed = %v, want the rate-limited error", err)
	}
	s := e.Stats()
	if !near(s.RequestsPerMinute, 420) || !near(s.TokensPerMinute, 42000) || !near(s.Factor, 0.7) {
		t.Fatalf("after a rate-limited answer: %+v, want 420 rpm, 42000 tpm", s)
	}
	for i, want := range []float64{450, 480, 510, 540, 570, 600, 600} {
		embed(t, e, "a")
		if got := e.Stats().RequestsPerMinute; !near(got, want) {
			t.Fatalf("after %d successes: %v rpm, want %v", i+1, got, want)
		}
	}

	// Steps stop at the configured rate.
	e, _ = setup(t, &fake.Embedder{Fail: fake.Script(rateLimited(0))}, Config{RequestsPerMinute: 600, IncreaseFraction: 0.2})
	e.Embed(context.Background(), []string{"a"})
	for i, want := range []float64{540, 600} {
		embed(t, e, "a")
		if got := e.Stats().RequestsPerMinute; !near(got, want) {
			t.Fatalf("by steps of 20%%, after %d successes: %v rpm, want %v", i+1, got, want)
		}
	}
}

func TestRatesNotBelowFloor(t *testing.T) {
	e, _ := setup(t, &fake.Embedder{Fail: func(int, []string) error { return rateLimited(0) }}, Config{RequestsPerMinute: 600})
	for range 20 {
		e.Embed(context.Background(), []string{"a"})
	}
	if s := e.Stats(); !near(s.RequestsPerMinute, 30) || s.RateLimited != 20 {
		t.Errorf("after 20 rate-limited answers: %+v, want 30 rpm (5%%)", s)
	}
}

func TestCallsSentTogetherCutOnce(t *testing.T) {
	inner := &fake.Embedder{Fail: func(int, []string) error { return rateLimited(0) }, Entered: make(chan struct{}, 10), Hold: make(chan struct{})}
	e, _ := setup(t, inner, Config{RequestsPerMinute: 600})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { e.Embed(context.Background(), []string{"a"}) })
	}
	<-inner.Entered
	<-inner.Entered
	close(inner.Hold)
	wg.Wait()
	if s := e.Stats(); !near(s.Factor, 0.7) {
		t.Errorf("two calls sent at the old rate both rate-limited: factor %v, want one cut to 0.7", s.Factor)
	}
	// A call sent after the cut, still rate-limited, cuts again.
	e.Embed(context.Background(), []string{"a"})
	<-inner.Entered
	if s := e.Stats(); !near(s.Factor, 0.49) {
		t.Errorf("a call sent after the cut: factor %v, want 0.49", s.Factor)
	}
}

func TestRetryAfterPausesNewCalls(t *testing.T) {
	limited := rateLimited(20 * time.Second)
	e, b := setup(t, &fake.Embedder{Fail: fake.Script(limited)}, Config{})
	if _, err := e.Embed(context.Background(), []string{"a"}); err != limited {
		t.Fatalf("Embed = %v, want the inner error as it is", err)
	}
	if s := e.Stats(); !s.PausedUntil.Equal(b.start.Add(20 * time.Second)) {
		t.Errorf("PausedUntil = %v, want start+20s", s.PausedUntil.Sub(b.start))
	}
	if d := e.Delay([]string{"b"}); d != 20*time.Second {
		t.Errorf("Delay during the pause = %v, want 20s", d)
	}
	embed(t, e, "b")
	want := []time.Duration{0, 20 * time.Second}
	if got := b.inner.Times(b.start); !slices.Equal(got, want) {
		t.Errorf("calls at %v, want %v", got, want)
	}
}

func TestOtherErrorsPassThrough(t *testing.T) {
	down := fmt.Errorf("provider: 503: %w", freshen.ErrUnavailable)
	e, _ := setup(t, &fake.Embedder{Fail: fake.Script(down)}, Config{RequestsPerMinute: 600})
	if _, err := e.Embed(context.Background(), []string{"a"}); err != down {
		t.Errorf("Embed = %v, want the inner error as it is", err)
	}
	if s := e.Stats(); s.Factor != 1 || !s.PausedUntil.IsZero() {
		t.Errorf("an error other than rate limited moved the limits: %+v", s)
	}
}

func TestEmbedQuery(t *testing.T) {
	t.Run("InnerQueryEmbedder", func(t *testing.T) {
		inner := &fake.QueryEmbedder{}
		e, b := setup(t, inner, Config{RequestsPerMinute: 60, RequestBurst: 1})
		for range 2 {
			v, err := e.EmbedQuery(context.Background(), "where")
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(v, fake.HashVec("query: where")) {
				t.Fatal("EmbedQuery did not use the inner EmbedQuery")
			}
		}
		if got := b.inner.Times(b.start); !slices.Equal(got, []time.Duration{0, time.Second}) {
			t.Errorf("queries at %v, want limited to one a second", got)
		}
	})
	t.Run("FallsBackToEmbed", func(t *testing.T) {
		e, b := setup(t, nil, Config{})
		v, err := e.EmbedQuery(context.Background(), "where")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(v, fake.HashVec("where")) || len(b.inner.Texts()) != 1 {
			t.Error("EmbedQuery of an embedder without queries is not its Embed")
		}
	})
}

func TestValidate(t *testing.T) {
	fake.WantValidate(t,
		Config{RequestsPerMinute: -1},
		Config{MaxConcurrency: -1},
		Config{DecreaseFactor: 1.5},
		Config{MinFraction: 2},
		Config{IncreaseFraction: -0.1},
	)
	d := Config{RequestsPerMinute: 60, TokensPerMinute: 60000}.WithDefaults()
	if d.RequestBurst != 10 || d.TokenBurst != 10000 || d.DecreaseFactor != 0.7 || d.MinFraction != 0.05 || d.IncreaseFraction != 0.05 {
		t.Errorf("defaults = %+v", d)
	}
}

// TestUrgentGoesAheadOfWaitingBacklog: a fresh edit (an urgent call)
// takes the next request the buckets allow, ahead of backlog that was
// already waiting, which does not hold future reservations.
func TestUrgentGoesAheadOfWaitingBacklog(t *testing.T) {
	e, b := setup(t, nil, Config{RequestsPerMinute: 60, RequestBurst: 1})
	embed(t, e, "first")
	waiting, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	b.clock.OnSleep = func(context.Context) error {
		blocked := false
		once.Do(func() { blocked = true })
		if blocked { // the backlog call's first wait
			close(waiting)
			<-release
		}
		return nil
	}
	backlog := make(chan error, 1)
	go func() { _, err := e.Embed(context.Background(), []string{"backlog"}); backlog <- err }()
	<-waiting
	if _, err := e.Embed(freshen.Urgent(context.Background()), []string{"urgent"}); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-backlog; err != nil {
		t.Fatal(err)
	}
	order := fmt.Sprint(b.inner.Texts())
	if order != "[[first] [urgent] [backlog]]" {
		t.Fatalf("calls in order %s; want the urgent call before the backlog that waited", order)
	}
	if got := b.inner.Times(b.start); got[1] != time.Second {
		t.Fatalf("urgent call at %v, want at 1s: the next request the limit allows", got[1])
	}
}
