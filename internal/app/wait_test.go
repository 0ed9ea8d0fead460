package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/internal/pipeline"
)

// TestWait: a writer's wait returns once its version is searchable (woken
// by the commit, not by polling), reports a superseded version as newer,
// a delete once the chunks are gone, a version of a gone key as gone, and
// times out with the current state.
func TestWait(t *testing.T) {
	ctx := context.Background()
	b := newStateBundle(t)
	a := b.open(t)
	defer a.Close()
	b.sync(t, a)
	p := a.Pipeline(func(r pipeline.Result) { a.Committed(r.Key) })
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	enqueue := func(key string) {
		t.Helper()
		if _, err := a.Ledger.Enqueue(ctx, []freshen.Change{{Bucket: "docs", Key: key, Kind: freshen.ChangeUpsert, Origin: "webhook", EventTime: time.Now()}}); err != nil {
			t.Fatal(err)
		}
		p.Wake()
	}
	// A new version: waiting starts before its event arrives.
	b.src.Put("doc-1.md", "text/markdown", []byte("# Doc 1\n\nA rewritten paragraph about lighthouses.\n"))
	cur, err := b.src.Stat(ctx, "doc-1.md")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan WaitResult, 1)
	errs := make(chan error, 1)
	go func() {
		r, err := a.Wait(ctx, "doc-1.md", cur.ETag, "")
		got <- r
		errs <- err
	}()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	enqueue("doc-1.md")
	r := <-got
	if err := <-errs; err != nil || !r.Searchable || r.ETag != cur.ETag || r.State != "indexed" || r.Newer {
		t.Fatalf("wait for the new version: %+v, %v", r, err)
	}
	if took := time.Since(start); took > waitPoll/2 {
		t.Errorf("the wait returned %s after the change: woken by polling, not by the commit", took)
	}
	hits, err := a.Search(ctx, "lighthouses", 1, "doc-1")
	if err != nil || len(hits) != 1 || hits[0].Key != "doc-1.md" {
		t.Fatalf("search after the wait: %+v %v", hits, err)
	}
	// The old version: superseded, so search answers from a newer one.
	if r, err := a.Wait(ctx, "doc-1.md", "an-older-etag", ""); err != nil || !r.Newer || !r.Searchable {
		t.Fatalf("wait for a superseded version: %+v, %v", r, err)
	}
	// A delete.
	b.src.Delete("doc-2.md")
	enqueue("doc-2.md")
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if r, err := a.Wait(wctx, "doc-2.md", "", ""); err != nil || r.State != "deleted" || !r.Searchable {
		t.Fatalf("wait for a delete: %+v, %v", r, err)
	}
	// A version of a key that is gone.
	if _, err := a.Wait(ctx, "doc-2.md", cur.ETag, ""); !errors.Is(err, ErrGone) {
		t.Fatalf("wait for a gone key's version: %v", err)
	}
	// A version whose change never arrives: the wait times out with the
	// current state.
	b.src.Put("doc-3.md", "text/markdown", []byte("# Doc 3\n\nNo event will announce this.\n"))
	next, _ := b.src.Stat(ctx, "doc-3.md")
	tctx, cancel2 := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel2()
	r, err = a.Wait(tctx, "doc-3.md", next.ETag, "")
	if !errors.Is(err, context.DeadlineExceeded) || r.Searchable || r.State != "indexed" || r.ETag == next.ETag {
		t.Fatalf("wait for a version never announced: %+v, %v", r, err)
	}
}

// countingLedger counts the reads a waiter makes.
type countingLedger struct {
	freshen.Ledger
	reads atomic.Int64
}

func (c *countingLedger) State(ctx context.Context, bucket, key string) (freshen.KeyState, error) {
	c.reads.Add(1)
	return c.Ledger.State(ctx, bucket, key)
}

func (c *countingLedger) Queued(ctx context.Context, bucket, key string) (bool, error) {
	c.reads.Add(1)
	return c.Ledger.Queued(ctx, bucket, key)
}

// TestThousandWaitersCostNothingWhileWaiting: 1,000 waiters for
// versions on their way read the ledger once each when they start, and
// then not at all until a commit wakes the ones of that key (the service
// sets Notified: every commit reaches Committed).
func TestThousandWaitersCostNothingWhileWaiting(t *testing.T) {
	ctx := context.Background()
	b := newStateBundle(t)
	a := b.open(t)
	defer a.Close()
	b.sync(t, a)
	counted := &countingLedger{Ledger: a.Ledger}
	a.Ledger, a.Notified = counted, true
	defer func() { a.Ledger = counted.Ledger }()
	// New versions of every document, whose changes are not queued yet.
	etags := map[string]string{}
	for i := range 6 {
		key := fmt.Sprintf("doc-%d.md", i)
		b.src.Put(key, "text/markdown", []byte(fmt.Sprintf("# Doc %d\n\nVersion two of paragraph %d.\n", i, i)))
		cur, _ := b.src.Stat(ctx, key)
		etags[key] = cur.ETag
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var done atomic.Int64
	for i := range 1000 {
		key := fmt.Sprintf("doc-%d.md", i%6)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r, err := a.Wait(wctx, key, etags[key], ""); err == nil && r.Searchable {
				done.Add(1)
			}
		}()
	}
	// Every waiter looks once (two reads: the queue and the state).
	for deadline := time.Now().Add(30 * time.Second); counted.reads.Load() < 2000 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	start := counted.reads.Load()
	time.Sleep(3 * time.Second)
	idle := counted.reads.Load() - start
	t.Logf("1,000 waiters: %d ledger reads to start, %d in the next 3 s", start, idle)
	if idle > 6 {
		t.Fatalf("1,000 idle waiters made %d ledger reads in 3 s: they poll", idle)
	}
	// One key's commit wakes its waiters only, and they return.
	p := a.Pipeline(func(r pipeline.Result) { a.Committed(r.Key) })
	if _, err := counted.Enqueue(ctx, []freshen.Change{{Bucket: "docs", Key: "doc-0.md", Kind: freshen.ChangeUpsert, Origin: "webhook", EventTime: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for done.Load() < 167 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := done.Load(); n != 167 {
		t.Fatalf("%d waiters returned after doc-0.md was committed, want its 167", n)
	}
	cancel()
	wg.Wait()
}

// commitDuringState is a ledger whose State, once armed, reads the key's
// state and then lets a commit of the key happen before it returns: the
// race of a waiter's two reads with a worker.
type commitDuringState struct {
	freshen.Ledger
	armed  atomic.Bool
	commit func()
}

func (c *commitDuringState) State(ctx context.Context, bucket, key string) (freshen.KeyState, error) {
	st, err := c.Ledger.State(ctx, bucket, key)
	if c.armed.CompareAndSwap(true, false) {
		c.commit()
	}
	return st, err
}

// TestWaitSeesACommitBetweenItsReads: a delete committed between a
// waiter's reads of the key's state and of the queue must not end the
// wait with the deleted object's old state.
func TestWaitSeesACommitBetweenItsReads(t *testing.T) {
	ctx := context.Background()
	b := newStateBundle(t)
	a := b.open(t)
	defer a.Close()
	b.sync(t, a)
	racy := &commitDuringState{Ledger: a.Ledger}
	a.Ledger = racy
	defer func() { a.Ledger = racy.Ledger }()
	p := a.Pipeline(func(r pipeline.Result) { a.Committed(r.Key) })
	racy.commit = func() {
		if _, err := p.Drain(ctx); err != nil {
			t.Error(err)
		}
	}
	b.src.Delete("doc-2.md")
	if _, err := racy.Enqueue(ctx, []freshen.Change{{Bucket: "docs", Key: "doc-2.md", Kind: freshen.ChangeDelete, Origin: "webhook", EventTime: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	racy.armed.Store(true)
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	r, err := a.Wait(wctx, "doc-2.md", "", "")
	if err != nil || r.State != "deleted" {
		t.Fatalf("wait for a delete committed between the waiter's reads: %+v, %v", r, err)
	}
}
