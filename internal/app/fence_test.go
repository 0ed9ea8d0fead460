package app

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/internal/testenv"
)

// stalledIndex holds the first Apply (a worker whose write is on its way
// to the store when the process stalls) until released, then sends it
// regardless of the worker's context: the write arrives late.
type stalledIndex struct {
	freshen.Index
	once    sync.Once
	entered chan struct{}
	release chan struct{}
	result  chan error
}

func (s *stalledIndex) Apply(ctx context.Context, w freshen.ObjectWrite) error {
	stalled := false
	s.once.Do(func() { stalled = true })
	if !stalled {
		return s.Index.(freshen.ObjectWriter).Apply(ctx, w)
	}
	close(s.entered)
	<-s.release
	err := s.Index.(freshen.ObjectWriter).Apply(context.WithoutCancel(ctx), w)
	s.result <- err
	return err
}

// frozenLedger's Extend succeeds without extending: the stalled process
// believes it still holds its lease, which expires for everyone else.
type frozenLedger struct{ freshen.Ledger }

func (f frozenLedger) Extend(ctx context.Context, l *freshen.Lease, ttl time.Duration) error {
	return nil
}

// TestStalledWorkerCannotUndoANewerCommit: worker A records its intent
// for version 1, then stalls before its index write; its lease expires,
// worker B indexes version 2 and commits; A's write then arrives, and the
// store refuses it: the rows stay version 2's.
func TestStalledWorkerCannotUndoANewerCommit(t *testing.T) {
	t.Run("pgvector", func(t *testing.T) {
		b := newStateBundle(t)
		b.cfg.Index.Type, b.cfg.Index.DSN, b.cfg.Index.Table = "pgvector", testenvDSN(t), testenv.UniqueTable("fence")
		testStalledWorker(t, b)
	})
	t.Run("weaviate", func(t *testing.T) {
		b := newStateBundle(t)
		b.cfg.Index.Type, b.cfg.Index.URL, b.cfg.Index.Collection = "weaviate", testenv.SharedWeaviate(t).URL, testenv.UniqueCollection("Fence")
		testStalledWorker(t, b)
	})
}

func testStalledWorker(t *testing.T, b *stateBundle) {
	ctx := context.Background()
	b.cfg.Retry.LeaseTTL = 1e9 // 1s
	a := b.open(t)
	defer a.Close()
	b.sync(t, a)
	key := "doc-1.md"
	b.src.Put(key, "text/markdown", []byte("# Doc 1\n\nVersion one of the first document, about harbors.\n"))
	led, idx := a.Ledger, a.Index
	stall := &stalledIndex{Index: idx, entered: make(chan struct{}), release: make(chan struct{}), result: make(chan error, 1)}
	a.Ledger, a.Index = frozenLedger{led}, stall
	workerA := a.Pipeline(nil)
	a.Ledger, a.Index = led, idx
	if _, err := led.Enqueue(ctx, []freshen.Change{{Bucket: "docs", Key: key, Kind: freshen.ChangeUpsert, Origin: "webhook", EventTime: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	aDone := make(chan error, 1)
	go func() { _, err := workerA.Drain(ctx); aDone <- err }()
	<-stall.entered

	// Version 2 arrives; once A's lease has expired, B takes the key.
	b.src.Put(key, "text/markdown", []byte("# Doc 1\n\nVersion two, rewritten entirely, about lighthouses.\n"))
	if _, err := led.Enqueue(ctx, []freshen.Change{{Bucket: "docs", Key: key, Kind: freshen.ChangeUpsert, Origin: "webhook", EventTime: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if _, err := a.Pipeline(nil).Drain(ctx); err != nil {
		t.Fatal(err)
	}
	obj, err := led.Object(ctx, "docs", key)
	if err != nil || obj.State != freshen.StateIndexed {
		t.Fatalf("B's commit: %+v %v", obj, err)
	}
	close(stall.release)
	if err := <-stall.result; err == nil || !strings.Contains(err.Error(), freshen.ErrStaleWrite.Error()) {
		t.Fatalf("A's late write: %v, want ErrStaleWrite", err)
	}
	if err := <-aDone; err != nil {
		t.Fatalf("worker A's drain: %v", err)
	}
	var texts []string
	err = a.Index.(freshen.RowScanner).Rows(ctx, "docs", func(r freshen.Row) error {
		if r.Key == key {
			texts = append(texts, r.Text+" @"+r.Version)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(texts, " | ")
	if strings.Contains(joined, "Version one") || !strings.Contains(joined, "Version two") || !strings.Contains(joined, "@"+obj.ETag) {
		t.Fatalf("rows after the stalled write: %s (want version two's, etag %s)", joined, obj.ETag)
	}
	if rep, err := a.Verify(ctx, false, false); err != nil || rep.Drifts() != 0 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}
