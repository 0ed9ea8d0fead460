// Package embedtest is the conformance suite every freshen.Embedder
// passes, decorators included: call Run from the implementation's tests
// with a constructor that returns a ready embedder.
//
// It embeds a few short texts only, so that it stays fast for a local
// model on a small machine; it never measures speed.
package embedtest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/freshen-io/freshen"
)

// Tolerance is how far a text's vector may move between being embedded
// alone and inside a batch (kernels may sum in another order), per value.
const Tolerance = 1e-5

// texts are short and distinct, with one repeated and one not ASCII.
var texts = []string{
	"A dog runs in the park.",
	"Quarterly tax filing deadline",
	"Überprüfung der Daten: 42 € bezahlt",
	"A dog runs in the park.",
	"How do I rotate an S3 access key?",
}

// Run checks the freshen.Embedder contract. newEmbedder is called once
// per subtest and registers its own cleanup on t.
func Run(t *testing.T, newEmbedder func(t *testing.T) freshen.Embedder) {
	t.Run("Model", func(t *testing.T) { tModel(t, newEmbedder(t)) })
	t.Run("OneVectorPerTextInOrder", func(t *testing.T) { tOrder(t, newEmbedder(t)) })
	t.Run("EmptyText", func(t *testing.T) { tEmptyText(t, newEmbedder(t)) })
	t.Run("NoTexts", func(t *testing.T) { tNoTexts(t, newEmbedder(t)) })
	t.Run("CancelledContext", func(t *testing.T) { tCancelled(t, newEmbedder(t)) })
	t.Run("CallerOwnsResults", func(t *testing.T) { tOwnership(t, newEmbedder(t)) })
	t.Run("ConcurrentCalls", func(t *testing.T) { tConcurrent(t, newEmbedder(t)) })
}

func tModel(t *testing.T, e freshen.Embedder) {
	m := e.Model()
	if m.Name == "" || m.Dim <= 0 {
		t.Fatalf("Model() = %+v, want a name and a positive dimension", m)
	}
	if m.MaxTokens < 0 {
		t.Fatalf("Model().MaxTokens = %d", m.MaxTokens)
	}
	if again := e.Model(); again != m {
		t.Fatalf("Model() changed: %+v then %+v", m, again)
	}
}

// tOrder checks shape, normalization, determinism and that a batch is
// answered in input order with each text's own vector.
func tOrder(t *testing.T, e freshen.Embedder) {
	ctx := context.Background()
	dim := e.Model().Dim
	batch := embed(t, e, texts)
	for i, v := range batch {
		if len(v) != dim {
			t.Fatalf("vector %d has %d values, want Model().Dim = %d", i, len(v), dim)
		}
		if n := Norm(v); math.Abs(n-1) > 1e-3 {
			t.Errorf("vector %d (%q) has L2 norm %v, want 1", i, texts[i], n)
		}
	}
	if !slices.Equal(batch[0], batch[3]) {
		t.Errorf("the same text twice in one batch got different vectors (max diff %g)", MaxDiff(batch[0], batch[3]))
	}
	if d := MaxDiff(batch[0], batch[1]); d < 1e-3 {
		t.Errorf("different texts got (almost) the same vector (max diff %g)", d)
	}
	// Each text alone: same vector as in the batch, so the batch is in
	// input order and batching does not change results.
	for i, text := range texts {
		alone := embed(t, e, []string{text})
		if d := MaxDiff(alone[0], batch[i]); d > Tolerance {
			t.Errorf("text %d (%q): alone and in a batch differ by %g, want <= %g", i, text, d, Tolerance)
		}
	}
	// Deterministic: the same call again gives the same vectors.
	again, err := e.Embed(ctx, texts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range texts {
		if !slices.Equal(again[i], batch[i]) {
			t.Errorf("text %d embedded twice: results differ by %g", i, MaxDiff(again[i], batch[i]))
		}
	}
}

func tEmptyText(t *testing.T, e freshen.Embedder) {
	ctx := context.Background()
	for _, in := range [][]string{{""}, {texts[0], ""}} {
		_, err := e.Embed(ctx, in)
		if !errors.Is(err, freshen.ErrEmptyInput) {
			t.Errorf("Embed(%q) = %v, want an error wrapping freshen.ErrEmptyInput", in, err)
			continue
		}
		if !freshen.IsPermanent(err) {
			t.Errorf("Embed(%q) = %v: not permanent", in, err)
		}
	}
	// The failure leaves the embedder usable.
	embed(t, e, texts[:1])
}

func tNoTexts(t *testing.T, e freshen.Embedder) {
	for _, in := range [][]string{nil, {}} {
		vecs, err := e.Embed(context.Background(), in)
		if err != nil || len(vecs) != 0 {
			t.Errorf("Embed(%#v) = %d vectors, %v; want none and no error", in, len(vecs), err)
		}
	}
}

func tCancelled(t *testing.T, e freshen.Embedder) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Embed(ctx, texts); !errors.Is(err, context.Canceled) {
		t.Errorf("Embed(cancelled ctx) = %v, want an error wrapping context.Canceled", err)
	}
	ctx, cancel = context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if _, err := e.Embed(ctx, texts[:1]); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Embed(expired ctx) = %v, want an error wrapping context.DeadlineExceeded", err)
	}
	// A cancelled call leaves the embedder usable.
	embed(t, e, texts[:1])
}

// tOwnership scribbles over everything a call returned and checks that
// later calls do not see it: no cache or pool may hand out shared memory.
func tOwnership(t *testing.T, e freshen.Embedder) {
	first := embed(t, e, texts[:2])
	want := [][]float32{slices.Clone(first[0]), slices.Clone(first[1])}
	for _, v := range first {
		for i := range v {
			v[i] = 42
		}
	}
	first[1] = nil
	_ = append(first, []float32{7}) // writes into any spare capacity
	second := embed(t, e, texts[:2])
	for i := range want {
		if !slices.Equal(second[i], want[i]) {
			t.Fatalf("vector %d changed after the caller modified an earlier result (max diff %g)", i, MaxDiff(second[i], want[i]))
		}
	}
}

// tConcurrent calls Embed from several goroutines at once, each with its
// own texts, and checks every result against the serial one. Callers
// append to and overwrite what they got, as owners may.
func tConcurrent(t *testing.T, e freshen.Embedder) {
	const workers, rounds = 4, 2
	inputs := make([][]string, workers)
	want := make([][][]float32, workers)
	for w := range workers {
		inputs[w] = []string{texts[w%len(texts)], texts[(w+1)%len(texts)]}
		if w == 0 {
			inputs[w] = inputs[w][:1]
		}
		want[w] = embed(t, e, inputs[w])
	}
	start := make(chan struct{})
	errs := make(chan error, workers*rounds)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			<-start
			for range rounds {
				got, err := e.Embed(context.Background(), inputs[w])
				if err != nil {
					errs <- fmt.Errorf("worker %d: %w", w, err)
					return
				}
				if len(got) != len(inputs[w]) {
					errs <- fmt.Errorf("worker %d: %d vectors for %d texts", w, len(got), len(inputs[w]))
					return
				}
				for i := range got {
					if d := MaxDiff(got[i], want[w][i]); d > Tolerance {
						errs <- fmt.Errorf("worker %d text %d: differs from the serial result by %g", w, i, d)
					}
					clear(got[i])
				}
				_ = append(got, nil)
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func embed(t *testing.T, e freshen.Embedder, in []string) [][]float32 {
	t.Helper()
	vecs, err := e.Embed(context.Background(), in)
	if err != nil {
		t.Fatalf("Embed(%q): %v", in, err)
	}
	if len(vecs) != len(in) {
		t.Fatalf("Embed(%q) returned %d vectors, want %d", in, len(vecs), len(in))
	}
	dim := e.Model().Dim
	for i, v := range vecs {
		if len(v) != dim {
			t.Fatalf("Embed(%q): vector %d has %d values, want %d", in, i, len(v), dim)
		}
	}
	return vecs
}

// Norm is v's Euclidean length.
func Norm(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

// MaxDiff is the largest absolute difference between a and b; +Inf when
// their lengths differ.
func MaxDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var d float64
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}
