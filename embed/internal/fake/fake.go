// Package fake holds the scripted inner embedder and the fake clock
// that the tests of the embedder decorators (retry, limit, breaker)
// share. It is used only by tests.
package fake

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

// Embedder is a scripted inner embedder: Fail decides, per call
// (numbered from 0, Embed and EmbedQuery calls alike), whether it fails
// and how; calls that do not fail answer each text with HashVec(text).
// When Clock is set, it records when (on that clock) each call came.
type Embedder struct {
	Clock *Clock
	Fail  func(call int, texts []string) error
	// Count is the embedder's own token count; nil counts one token a
	// byte, which is not the default estimate, so that tests see whose
	// count a decorator used.
	Count func(text string) int
	// Entered, when set, receives a value as each call arrives; Hold,
	// when set, keeps each call until it can receive from it (or it is
	// closed).
	Entered chan struct{}
	Hold    chan struct{}

	mu      sync.Mutex
	texts   [][]string
	at      []time.Time
	queries []string
}

func (f *Embedder) Model() freshen.ModelInfo {
	return freshen.ModelInfo{Name: "test/fake", Dim: sha256.Size, MaxTokens: 512}
}

func (f *Embedder) CountTokens(text string) int {
	if f.Count != nil {
		return f.Count(text)
	}
	return len(text)
}

// arrive records a call and returns its number, once Hold lets it on.
func (f *Embedder) arrive(texts []string, query bool) int {
	f.mu.Lock()
	n := len(f.texts) + len(f.queries)
	if query {
		f.queries = append(f.queries, texts[0])
	} else {
		f.texts = append(f.texts, slices.Clone(texts))
	}
	if f.Clock != nil {
		f.at = append(f.at, f.Clock.Now())
	}
	f.mu.Unlock()
	if f.Entered != nil {
		f.Entered <- struct{}{}
	}
	if f.Hold != nil {
		<-f.Hold
	}
	return n
}

// fail is the scripted error of call n, if any.
func (f *Embedder) fail(n int, texts []string) error {
	if f.Fail == nil {
		return nil
	}
	return f.Fail(n, texts)
}

func (f *Embedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	n := f.arrive(texts, false)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := f.fail(n, texts); err != nil {
		return nil, err
	}
	out := make([][]float32, len(texts))
	for i, t := range texts {
		if t == "" {
			return nil, fmt.Errorf("fake: text %d: %w", i, freshen.ErrEmptyInput)
		}
		out[i] = HashVec(t)
	}
	return out, nil
}

// Times returns when each call arrived, as offsets from start (none
// without a Clock).
func (f *Embedder) Times(start time.Time) []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []time.Duration
	for _, t := range f.at {
		out = append(out, t.Sub(start))
	}
	return out
}

// Calls returns how many calls came, Embed and EmbedQuery alike.
func (f *Embedder) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.texts) + len(f.queries)
}

// Texts returns the texts of each Embed call, in the order they came.
func (f *Embedder) Texts() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.texts)
}

// Queries returns the query of each EmbedQuery call, in the order they
// came.
func (f *Embedder) Queries() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.queries)
}

// QueryEmbedder also embeds queries its own way: the vector of
// "query: "+q. Its calls are scripted and recorded as Embed's are.
type QueryEmbedder struct{ Embedder }

func (f *QueryEmbedder) EmbedQuery(ctx context.Context, q string) ([]float32, error) {
	n := f.arrive([]string{q}, true)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := f.fail(n, []string{q}); err != nil {
		return nil, err
	}
	return HashVec("query: " + q), nil
}

// Inner returns the fake in e: e itself or the one a QueryEmbedder
// holds; nil for any other embedder.
func Inner(e freshen.Embedder) *Embedder {
	switch f := e.(type) {
	case *Embedder:
		return f
	case *QueryEmbedder:
		return &f.Embedder
	}
	return nil
}

// Script fails call i with errs[i] (nil: succeed); calls past the end
// succeed.
func Script(errs ...error) func(int, []string) error {
	return func(n int, _ []string) error {
		if n < len(errs) {
			return errs[n]
		}
		return nil
	}
}

// HashVec is text's SHA-256, centred and normalized.
func HashVec(text string) []float32 {
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
