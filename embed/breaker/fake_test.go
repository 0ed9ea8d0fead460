package breaker

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/freshen-io/freshen"
)

// fake is a scripted inner embedder: fail decides, per call (numbered
// from 0), whether it fails and how; calls that do not fail answer each
// text with hashVec(text). It records when (on its clock) each call came.
type fake struct {
	clock *clock
	fail  func(call int, texts []string) error
	// entered, when set, receives a value as each call arrives; hold,
	// when set, keeps each call until it can receive from it (or it is
	// closed).
	entered chan struct{}
	hold    chan struct{}

	mu      sync.Mutex
	calls   [][]string
	at      []time.Time
	queries []string
}

func (f *fake) Model() freshen.ModelInfo {
	return freshen.ModelInfo{Name: "test/fake", Dim: sha256.Size, MaxTokens: 512}
}

// CountTokens is one token a byte: not the default estimate, so that
// tests see which one the limiter used.
func (f *fake) CountTokens(text string) int { return len(text) }

func (f *fake) arrive(texts []string, query bool) int {
	f.mu.Lock()
	n := len(f.calls) + len(f.queries)
	if query {
		f.queries = append(f.queries, texts[0])
	} else {
		f.calls = append(f.calls, slices.Clone(texts))
	}
	f.at = append(f.at, f.clock.Now())
	f.mu.Unlock()
	if f.entered != nil {
		f.entered <- struct{}{}
	}
	if f.hold != nil {
		<-f.hold
	}
	return n
}

func (f *fake) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	n := f.arrive(texts, false)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if f.fail != nil {
		if err := f.fail(n, texts); err != nil {
			return nil, err
		}
	}
	out := make([][]float32, len(texts))
	for i, t := range texts {
		if t == "" {
			return nil, fmt.Errorf("fake: text %d: %w", i, freshen.ErrEmptyInput)
		}
		out[i] = hashVec(t)
	}
	return out, nil
}

// Times returns when each call arrived, as offsets from start.
func (f *fake) Times(start time.Time) []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []time.Duration
	for _, t := range f.at {
		out = append(out, t.Sub(start))
	}
	return out
}

func (f *fake) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls) + len(f.queries)
}

// queryFake also embeds queries its own way: the vector of "query: "+q.
type queryFake struct{ fake }

func (f *queryFake) EmbedQuery(ctx context.Context, q string) ([]float32, error) {
	f.arrive([]string{q}, true)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return hashVec("query: " + q), nil
}

// script fails call i with errs[i] (nil: succeed); calls past the end
// succeed.
func script(errs ...error) func(int, []string) error {
	return func(n int, _ []string) error {
		if n < len(errs) {
			return errs[n]
		}
		return nil
	}
}

// hashVec is text's SHA-256, centred and normalized.
func hashVec(text string) []float32 {
	sum := sha256.Sum256([]byte(text))
	v := make([]float32, len(sum))
	var ss float64
	for j, b := range sum {
		x := float64(b) - 127.5
		v[j] = float32(x)
		ss += x * x
	}
	for j := range v {
		v[j] = float32(float64(v[j]) / math.Sqrt(ss))
	}
	return v
}

// clock is a fake clock whose Sleep returns at once, having moved the
// time on by d; it records every wait.
type clock struct {
	mu    sync.Mutex
	now   time.Time
	slept []time.Duration
	// onSleep, when set, runs before each wait; its error is returned
	// instead of waiting.
	onSleep func(ctx context.Context) error
}

func newClock() *clock { return &clock{now: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Sleep(ctx context.Context, d time.Duration) error {
	if c.onSleep != nil {
		if err := c.onSleep(ctx); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.slept = append(c.slept, d)
	return nil
}

func (c *clock) Slept() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.slept)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
