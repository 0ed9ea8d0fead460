package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/freshen-io/freshen"
)

type echo struct {
	calls, texts atomic.Int64
	fail         atomic.Bool
	delay        time.Duration
}

func (e *echo) Model() freshen.ModelInfo { return freshen.ModelInfo{Name: "echo", Dim: 1} }
func (e *echo) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	e.calls.Add(1)
	e.texts.Add(int64(len(texts)))
	time.Sleep(e.delay)
	if e.fail.Load() {
		return nil, errors.New("down")
	}
	out := make([][]float32, len(texts))
	for i, t := range texts {
		var v float32
		fmt.Sscanf(t, "t%f", &v)
		out[i] = []float32{v}
	}
	return out, nil
}

func TestConcurrentCallsAreMergedAndAnsweredInOrder(t *testing.T) {
	inner := &echo{delay: 5 * time.Millisecond}
	b := New(inner, Config{MaxTexts: 16, MaxWait: 20 * time.Millisecond})
	var wg sync.WaitGroup
	for c := 0; c < 40; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			texts := []string{fmt.Sprintf("t%d", c*10), fmt.Sprintf("t%d", c*10+1)}
			vecs, err := b.Embed(context.Background(), texts)
			if err != nil || len(vecs) != 2 || vecs[0][0] != float32(c*10) || vecs[1][0] != float32(c*10+1) {
				t.Errorf("caller %d got %v, %v", c, vecs, err)
			}
		}(c)
	}
	wg.Wait()
	if inner.texts.Load() != 80 {
		t.Fatalf("inner embedded %d texts, want 80", inner.texts.Load())
	}
	if calls := inner.calls.Load(); calls > 20 {
		t.Fatalf("%d inner calls for 40 concurrent callers: not merged", calls)
	}
}

func TestErrorsReachEveryCaller(t *testing.T) {
	inner := &echo{}
	inner.fail.Store(true)
	b := New(inner, Config{MaxWait: 10 * time.Millisecond})
	var wg sync.WaitGroup
	for c := 0; c < 5; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := b.Embed(context.Background(), []string{"t1"}); err == nil {
				t.Error("want the inner error")
			}
		}()
	}
	wg.Wait()
}

func TestCancelledCallerDoesNotBreakOthers(t *testing.T) {
	inner := &echo{delay: 20 * time.Millisecond}
	b := New(inner, Config{MaxWait: 5 * time.Millisecond, Parallel: 1})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Embed(ctx, []string{"t1"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	v, err := b.Embed(context.Background(), []string{"t7"})
	if err != nil || v[0][0] != 7 {
		t.Fatalf("%v %v", v, err)
	}
}
