package app

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/internal/config"
	"github.com/freshen-io/freshen/internal/pipeline"
	"github.com/freshen-io/freshen/internal/testenv"
)

// TestIndexStoreDownMidSync: the pgvector server dies in the middle of a
// sync. The sync stops and says the index is unavailable (no key is
// parked as failed for it); once the server is back, the next sync
// converges and verify finds no drift: the intents covered the writes
// that were cut off.
func TestIndexStoreDownMidSync(t *testing.T) {
	ctx := context.Background()
	pg := testenv.StartPGlite(t, "")
	b := newStateBundle(t)
	for i := 6; i < 40; i++ {
		b.src.Put(fmt.Sprintf("doc-%d.md", i), "text/markdown", []byte(fmt.Sprintf("# Doc %d\n\nParagraph %d about ferries.\n\nMore %d about tides.\n", i, i, i)))
	}
	b.cfg.Index.Type, b.cfg.Index.DSN, b.cfg.Index.Table = "pgvector", config.DSN(pg.DSN), "chunks"
	b.cfg.Workers = 2
	a := b.open(t)
	defer a.Close()
	if _, err := a.CheckState(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Reconciler(a.Sink(nil, nil)).Pass(ctx, false); err != nil {
		t.Fatal(err)
	}
	var done atomic.Int64
	p := a.Pipeline(func(r pipeline.Result) {
		if done.Add(1) == 8 {
			pg.Stop()
		}
	})
	_, err := p.Drain(ctx)
	if !errors.Is(err, freshen.ErrIndexUnavailable) {
		t.Fatalf("sync with the index down: %v, want ErrIndexUnavailable", err)
	}
	t.Logf("the sync stopped with: %v", err)
	sum, _ := a.Ledger.Summary(ctx)
	if sum.Failed != 0 {
		t.Fatalf("%d objects parked because the index was down", sum.Failed)
	}
	if n, _, _ := a.Ledger.Backlog(ctx); n == 0 {
		t.Fatal("nothing left queued: the server stopped too late to test anything")
	}
	pg.Restart(t)
	b.sync(t, a)
	b.exact(t, a, 40)
	if rep, err := a.Verify(ctx, false, false); err != nil || rep.Drifts() != 0 {
		t.Fatalf("verify after the restart: %+v %v", rep, err)
	}
}
