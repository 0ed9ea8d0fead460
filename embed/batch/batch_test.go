package batch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/freshen-io/freshen"
)

// No test may leave a batcher's goroutine behind: every test closes what
// it built, and VerifyTestMain checks after the last one.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

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

// fake is an inner embedder whose calls tests can see, hold and fail.
type fake struct {
	mu    sync.Mutex
	calls [][]string
	// err, when set, fails every call.
	err error
	// entered, when set, receives each call's texts before it proceeds;
	// release, when set, holds each call until it is closed.
	entered chan []string
	release chan struct{}
}

func (f *fake) Model() freshen.ModelInfo { return freshen.ModelInfo{Name: "fake", Dim: 1} }

// Embed answers "t<n>" with [n]; an empty text fails the whole call, as
// a provider rejecting one input of a request does.
func (f *fake) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	f.mu.Lock()
	f.calls = append(f.calls, slices.Clone(texts))
	f.mu.Unlock()
	if f.entered != nil {
		f.entered <- texts
	}
	if f.release != nil {
		<-f.release
	}
	if f.err != nil {
		return nil, f.err
	}
	out := make([][]float32, len(texts))
	for i, t := range texts {
		if t == "" {
			return nil, fmt.Errorf("fake: text %d: %w", i, freshen.ErrEmptyInput)
		}
		var v float32
		fmt.Sscanf(t, "t%f", &v)
		out[i] = []float32{v}
	}
	return out, nil
}

func (f *fake) callSizes() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n []int
	for _, c := range f.calls {
		n = append(n, len(c))
	}
	return n
}

func setup(t *testing.T, inner freshen.Embedder, cfg Config) *Embedder {
	t.Helper()
	b := New(inner, cfg)
	t.Cleanup(func() { b.Close() })
	return b
}

type result struct {
	vecs [][]float32
	err  error
}

// embedAll embeds each caller's texts from its own goroutine, all at once.
func embedAll(b *Embedder, callers [][]string) []result {
	out := make([]result, len(callers))
	var wg sync.WaitGroup
	for i, texts := range callers {
		wg.Go(func() {
			v, err := b.Embed(context.Background(), texts)
			out[i] = result{v, err}
		})
	}
	wg.Wait()
	return out
}

func TestConcurrentCallsAreMergedAndAnsweredInOrder(t *testing.T) {
	inner := &echo{delay: 5 * time.Millisecond}
	b := setup(t, inner, Config{MaxTexts: 16, MaxWait: 20 * time.Millisecond})
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

// One caller's empty text fails the merged call permanently; only that
// caller may see the error.
func TestPermanentErrorStaysWithItsCaller(t *testing.T) {
	inner := &fake{}
	// The batch is dispatched the moment the fourth text arrives, so the
	// four callers are merged however slowly they come.
	b := setup(t, inner, Config{MaxTexts: 4, MaxWait: time.Minute})
	callers := [][]string{{"t1"}, {""}, {"t3"}, {"t4"}}
	res := embedAll(b, callers)
	if sizes := inner.callSizes(); len(sizes) == 0 || sizes[0] != 4 {
		t.Fatalf("inner calls of sizes %v, want the four callers merged first", sizes)
	}
	for i, r := range res {
		if callers[i][0] == "" {
			if !errors.Is(r.err, freshen.ErrEmptyInput) || !freshen.IsPermanent(r.err) || r.vecs != nil {
				t.Errorf("caller of the empty text got %v, %v; want only a permanent ErrEmptyInput", r.vecs, r.err)
			}
			continue
		}
		var want float32
		fmt.Sscanf(callers[i][0], "t%f", &want)
		if r.err != nil || len(r.vecs) != 1 || r.vecs[0][0] != want {
			t.Errorf("caller %d (%q) got %v, %v; want [[%v]] (the bad input is another caller's)", i, callers[i], r.vecs, r.err, want)
		}
	}
	// One merged call, then each caller alone.
	if sizes := inner.callSizes(); !slices.Equal(sizes, []int{4, 1, 1, 1, 1}) {
		t.Errorf("inner call sizes %v, want [4 1 1 1 1]", sizes)
	}
}

func TestPermanentErrorOfASingleCallerIsNotRetried(t *testing.T) {
	inner := &fake{}
	b := setup(t, inner, Config{MaxTexts: 4, MaxWait: time.Millisecond})
	if _, err := b.Embed(context.Background(), []string{"t1", ""}); !errors.Is(err, freshen.ErrEmptyInput) {
		t.Fatalf("err = %v, want ErrEmptyInput", err)
	}
	if sizes := inner.callSizes(); !slices.Equal(sizes, []int{2}) {
		t.Fatalf("inner call sizes %v, want one call", sizes)
	}
}

// A retryable error says the provider is down for everyone: every merged
// caller gets it, and nothing is re-run.
func TestRetryableErrorReachesEveryCaller(t *testing.T) {
	down := errors.New("provider unavailable")
	inner := &fake{err: freshen.Retryable(down, time.Second)}
	b := setup(t, inner, Config{MaxTexts: 4, MaxWait: time.Minute})
	for i, r := range embedAll(b, [][]string{{"t1"}, {"t2"}, {"t3"}, {"t4"}}) {
		if !errors.Is(r.err, down) || freshen.IsPermanent(r.err) {
			t.Errorf("caller %d got %v, want the retryable provider error", i, r.err)
		}
		if after, ok := freshen.RetryAfter(r.err); !ok || after != time.Second {
			t.Errorf("caller %d: retry-after %v %v, want the provider's 1s", i, after, ok)
		}
	}
	if sizes := inner.callSizes(); !slices.Equal(sizes, []int{4}) {
		t.Errorf("inner call sizes %v, want one merged call and no re-runs", sizes)
	}
}

func TestErrorsReachEveryCaller(t *testing.T) {
	inner := &echo{}
	inner.fail.Store(true)
	b := setup(t, inner, Config{MaxWait: 10 * time.Millisecond})
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
	b := setup(t, inner, Config{MaxWait: 5 * time.Millisecond, Parallel: 1})
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

// Merged callers share one result slice from the inner call; appending to
// one's own must not overwrite the next caller's vectors.
func TestResultsDoNotAlias(t *testing.T) {
	inner := &fake{}
	b := setup(t, inner, Config{MaxTexts: 4, MaxWait: time.Minute})
	res := embedAll(b, [][]string{{"t1", "t2"}, {"t3", "t4"}})
	if sizes := inner.callSizes(); !slices.Equal(sizes, []int{4}) {
		t.Fatalf("inner call sizes %v, want the two callers merged", sizes)
	}
	for _, r := range res {
		if r.err != nil {
			t.Fatal(r.err)
		}
		_ = append(r.vecs, []float32{-1})
	}
	if res[0].vecs[0][0] != 1 || res[0].vecs[1][0] != 2 || res[1].vecs[0][0] != 3 || res[1].vecs[1][0] != 4 {
		t.Fatalf("results after each caller appended to its own: %v, %v", res[0].vecs, res[1].vecs)
	}
}

// Close waits for a merged call in flight, which still answers its
// caller; afterwards Embed fails and no goroutine is left.
func TestCloseWaitsForInFlightCall(t *testing.T) {
	defer goleak.VerifyNone(t)
	inner := &fake{entered: make(chan []string, 1), release: make(chan struct{})}
	b := New(inner, Config{MaxTexts: 4, MaxWait: time.Millisecond})
	got := make(chan result, 1)
	go func() {
		v, err := b.Embed(context.Background(), []string{"t5"})
		got <- result{v, err}
	}()
	<-inner.entered // the merged call is running
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned %v while a call was in flight", err)
	case r := <-got:
		t.Fatalf("Embed returned %v, %v before the inner call did", r.vecs, r.err)
	case <-time.After(50 * time.Millisecond):
	}
	close(inner.release)
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Close has returned, so the caller's answer is already there.
	select {
	case r := <-got:
		if r.err != nil || len(r.vecs) != 1 || r.vecs[0][0] != 5 {
			t.Fatalf("in-flight caller got %v, %v", r.vecs, r.err)
		}
	default:
		t.Fatal("Close returned before the in-flight caller was answered")
	}
	for _, texts := range [][]string{{"t1"}, {"t1", "t2", "t3", "t4"}, nil} {
		if _, err := b.Embed(context.Background(), texts); !errors.Is(err, ErrClosed) {
			t.Errorf("Embed(%q) after Close = %v, want ErrClosed", texts, err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// A batcher that never merged anything has no goroutine to stop, and one
// closed while callers wait to be gathered turns them away cleanly.
func TestCloseWithoutUseAndWithWaitingCallers(t *testing.T) {
	defer goleak.VerifyNone(t)
	if err := New(&fake{}, Config{}).Close(); err != nil {
		t.Fatal(err)
	}
	inner := &fake{entered: make(chan []string, 8), release: make(chan struct{})}
	b := New(inner, Config{MaxTexts: 1000, MaxWait: time.Millisecond, Parallel: 1})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			_, err := b.Embed(context.Background(), []string{fmt.Sprintf("t%d", i)})
			errs <- err
		})
	}
	<-inner.entered // one merged call holds the only slot; others queue behind it
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	close(inner.release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("caller got %v, want a result or ErrClosed", err)
		}
	}
}

type counting struct{ fake }

func (c *counting) CountTokens(text string) int { return 1000 + len(text) }

func TestCountTokensForwards(t *testing.T) {
	if n := setup(t, &counting{}, Config{}).CountTokens("abc"); n != 1003 {
		t.Errorf("CountTokens with a counting inner = %d, want its 1003", n)
	}
	if n := setup(t, &fake{}, Config{}).CountTokens("abcdefgh"); n != freshen.CountTokens(&fake{}, "abcdefgh") {
		t.Errorf("CountTokens without one = %d, want freshen's estimate", n)
	}
}

// ctxWaiter blocks each call until its context is done or release closes,
// and reports which ended it.
type ctxWaiter struct {
	entered chan int
	release chan struct{}
	ended   chan error
}

func (w *ctxWaiter) Model() freshen.ModelInfo { return freshen.ModelInfo{Name: "waiter", Dim: 1} }

func (w *ctxWaiter) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	w.entered <- len(texts)
	select {
	case <-ctx.Done():
		w.ended <- ctx.Err()
		return nil, ctx.Err()
	case <-w.release:
		w.ended <- nil
		out := make([][]float32, len(texts))
		for i := range out {
			out[i] = []float32{1}
		}
		return out, nil
	}
}

// TestMergedCallStopsWhenEveryCallerLeft: a merged call keeps running
// while any caller waits for it (so one caller leaving breaks nobody),
// and is cancelled once all have left, so an interrupted sync or a
// shutdown does not wait for work nobody wants.
func TestMergedCallStopsWhenEveryCallerLeft(t *testing.T) {
	w := &ctxWaiter{entered: make(chan int, 4), release: make(chan struct{}), ended: make(chan error, 4)}
	b := setup(t, w, Config{MaxTexts: 2, MaxWait: time.Minute, Parallel: 1})
	release := sync.OnceFunc(func() { close(w.release) })
	t.Cleanup(release) // runs before Close: a failing test must not hang in it
	start := func() (context.CancelFunc, chan error) {
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { _, err := b.Embed(ctx, []string{"t1"}); errc <- err }()
		return cancel, errc
	}
	// Both callers leave: the inner call is cancelled.
	c1, e1 := start()
	c2, e2 := start()
	if n := <-w.entered; n != 2 {
		t.Fatalf("merged %d texts, want 2", n)
	}
	c1()
	<-e1
	c2()
	<-e2
	select {
	case err := <-w.ended:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("inner call ended with %v, want cancelled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the merged call kept running after every caller left")
	}
	// One caller leaves, the other waits: the call goes on and answers it.
	c3, e3 := start()
	_, e4 := start()
	<-w.entered
	c3()
	<-e3
	release()
	if err := <-w.ended; err != nil {
		t.Fatalf("the merged call was cancelled while a caller still waited: %v", err)
	}
	if err := <-e4; err != nil {
		t.Fatalf("the remaining caller: %v", err)
	}
}

// queryFake has a query side that differs from its document side.
type queryFake struct{ fake }

func (q *queryFake) EmbedQuery(ctx context.Context, query string) ([]float32, error) {
	return []float32{-1}, nil
}

// TestQueriesUseTheQuerySide: a query reaches the inner embedder's query
// side, not a merged document batch.
func TestQueriesUseTheQuerySide(t *testing.T) {
	q := &queryFake{}
	b := setup(t, q, Config{})
	v, err := b.EmbedQuery(context.Background(), "t5")
	if err != nil || len(v) != 1 || v[0] != -1 {
		t.Fatalf("EmbedQuery = %v, %v; want the query side's vector", v, err)
	}
	plain := setup(t, &fake{}, Config{})
	if v, err := plain.EmbedQuery(context.Background(), "t5"); err != nil || v[0] != 5 {
		t.Fatalf("without a query side: %v, %v", v, err)
	}
}

// TestUrgentIsNotHeldBack: a fresh edit's call goes straight through,
// however long merged calls wait for company.
func TestUrgentIsNotHeldBack(t *testing.T) {
	inner := &fake{}
	b := setup(t, inner, Config{MaxTexts: 64, MaxWait: time.Hour})
	done := make(chan error, 1)
	go func() { _, err := b.Embed(freshen.Urgent(context.Background()), []string{"t1"}); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an urgent call waited to be merged")
	}
}

// billing reports, for each call, three tokens per byte of its texts:
// not what CountTokens (one per byte) says, as a provider's own count
// differs from freshen's.
type billing struct {
	echo
	billed atomic.Int64
}

func (b *billing) CountTokens(text string) int { return len(text) }
func (b *billing) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	vecs, err := b.echo.Embed(ctx, texts)
	var n int64
	for _, t := range texts {
		n += 3 * int64(len(t))
	}
	b.billed.Add(n)
	freshen.ReportUsage(ctx, n)
	return vecs, err
}

// TestUsageIsSharedAmongMergedCallers: each caller's meter gets its part
// of the merged call's reported tokens, and the parts add up to exactly
// what the provider reported.
func TestUsageIsSharedAmongMergedCallers(t *testing.T) {
	inner := &billing{echo: echo{delay: 5 * time.Millisecond}}
	b := setup(t, inner, Config{MaxTexts: 64, MaxWait: 20 * time.Millisecond})
	meters := make([]freshen.Meter, 20)
	var wg sync.WaitGroup
	for c := range meters {
		wg.Go(func() {
			texts := []string{fmt.Sprintf("t%d", c), strings.Repeat("t1", c+1)}
			if _, err := b.Embed(freshen.WithMeter(context.Background(), &meters[c]), texts); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if inner.calls.Load() >= int64(len(meters)) {
		t.Fatalf("%d inner calls for %d callers: nothing was merged", inner.calls.Load(), len(meters))
	}
	var sum int64
	for c := range meters {
		got, ok := meters[c].Tokens()
		want := 3 * int64(len(fmt.Sprintf("t%d", c))+2*(c+1))
		if !ok || got != want {
			t.Errorf("caller %d: meter %d (reported %v), want %d", c, got, ok, want)
		}
		sum += got
	}
	if sum != inner.billed.Load() {
		t.Errorf("callers were told %d tokens, the provider reported %d", sum, inner.billed.Load())
	}
}
