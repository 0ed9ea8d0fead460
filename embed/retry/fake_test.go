package retry

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
// text with hashVec(text).
type fake struct {
	fail func(call int, texts []string) error

	mu      sync.Mutex
	calls   [][]string
	queries []string
}

func (f *fake) Model() freshen.ModelInfo {
	return freshen.ModelInfo{Name: "test/fake", Dim: sha256.Size, MaxTokens: 512}
}

// CountTokens is the fake's own measure, so that forwarding shows.
func (f *fake) CountTokens(text string) int { return 1000 + len(text) }

func (f *fake) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	f.mu.Lock()
	n := len(f.calls) + len(f.queries)
	f.calls = append(f.calls, slices.Clone(texts))
	f.mu.Unlock()
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

func (f *fake) Calls() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// queryFake also embeds queries its own way: the vector of "query: "+q.
type queryFake struct{ fake }

func (f *queryFake) EmbedQuery(ctx context.Context, q string) ([]float32, error) {
	f.mu.Lock()
	n := len(f.calls) + len(f.queries)
	f.queries = append(f.queries, q)
	f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if f.fail != nil {
		if err := f.fail(n, []string{q}); err != nil {
			return nil, err
		}
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
