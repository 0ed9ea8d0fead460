package retry_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/embed/breaker"
	"github.com/freshen-io/freshen/embed/limit"
	"github.com/freshen-io/freshen/embed/retry"
)

// provider fails its first calls with the errors given, then answers.
type provider struct {
	mu    sync.Mutex
	errs  []error
	calls []time.Time
	now   func() time.Time
}

func (p *provider) Model() freshen.ModelInfo { return freshen.ModelInfo{Name: "test/provider", Dim: 1} }

func (p *provider) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, p.now())
	if n := len(p.calls) - 1; n < len(p.errs) && p.errs[n] != nil {
		return nil, p.errs[n]
	}
	out := make([][]float32, len(texts))
	for i := range out {
		out[i] = []float32{1}
	}
	return out, nil
}

// fakeTime is one clock for the whole stack; Sleep moves it on.
type fakeTime struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeTime) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeTime) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return nil
}

// stack builds the recommended order: retry outside, then the breaker,
// then the limiter next to the provider.
func stack(p *provider) (*retry.Embedder, *breaker.Embedder, *limit.Embedder, *fakeTime) {
	clk := &fakeTime{now: time.Now()}
	p.now = clk.Now
	lim := limit.New(p, limit.Config{RequestsPerMinute: 600, MaxConcurrency: 4, Now: clk.Now, Sleep: clk.Sleep})
	brk := breaker.New(lim, breaker.Config{FailureThreshold: 3, OpenFor: 30 * time.Second, Now: clk.Now})
	ret := retry.New(brk, retry.Config{Now: clk.Now, Sleep: clk.Sleep, Rand: func(int64) int64 { return 0 }})
	return ret, brk, lim, clk
}

func TestStackWaitsOutOpenBreaker(t *testing.T) {
	down := fmt.Errorf("provider: 503: %w", freshen.ErrUnavailable)
	p := &provider{errs: []error{down, down, down}}
	e, brk, _, clk := stack(p)
	start := clk.Now()
	if _, err := e.Embed(context.Background(), []string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	// Three failures open the breaker; the retry waits for its probe,
	// which the provider answers.
	if n := len(p.calls); n != 4 {
		t.Errorf("%d provider calls, want 4", n)
	}
	if got := p.calls[3].Sub(start); got != 30*time.Second {
		t.Errorf("probe at %v, want when the breaker half-opened (30s)", got)
	}
	if s, _ := brk.State(); s != breaker.Closed {
		t.Errorf("breaker %v, want closed", s)
	}
}

func TestStackGivesUpOnLongOpenBreakerAsNotAnAttempt(t *testing.T) {
	down := fmt.Errorf("provider: 503: %w", freshen.ErrUnavailable)
	p := &provider{errs: []error{down, down, down}}
	e, _, _, _ := stack(p)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // shorter than the breaker's 30s
	defer cancel()
	_, err := e.Embed(ctx, []string{"a"})
	if !freshen.IsNotAttempt(err) || freshen.IsPermanent(err) {
		t.Errorf("Embed = %v, want the open breaker's error: not an attempt", err)
	}
	var oe *breaker.OpenError
	if !errors.As(err, &oe) {
		t.Errorf("Embed = %v, want a *breaker.OpenError", err)
	}
}

func TestStackHonoursRateLimitPause(t *testing.T) {
	limited := freshen.Retryable(fmt.Errorf("provider: 429: %w", freshen.ErrRateLimited), 10*time.Second)
	p := &provider{errs: []error{limited}}
	e, brk, lim, clk := stack(p)
	start := clk.Now()
	if _, err := e.Embed(context.Background(), []string{"a"}); err != nil {
		t.Fatal(err)
	}
	if n := len(p.calls); n != 2 || p.calls[1].Sub(start) != 10*time.Second {
		t.Errorf("provider calls at %v, want a retry after the 10s asked for", p.calls)
	}
	// One cut, then one success's step back up.
	if s := lim.Stats(); s.RateLimited != 1 || s.RequestsPerMinute != 450 {
		t.Errorf("limit %+v, want one rate-limited answer and 450 rpm", s)
	}
	if s, _ := brk.State(); s != breaker.Closed {
		t.Errorf("breaker %v, want closed", s)
	}
}
