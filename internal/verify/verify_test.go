package verify_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/index/embedded"
	"github.com/freshen-io/freshen/internal/verify"
	"github.com/freshen-io/freshen/ledger/sqlite"
)

// world is a ledger and an embedded index that agree on two keys.
func world(t *testing.T) (*sqlite.Ledger, *embedded.Index) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	led, err := sqlite.Open(ctx, filepath.Join(dir, "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { led.Close() })
	x, err := embedded.Open(ctx, filepath.Join(dir, "index.db"), 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	for _, key := range []string{"a.md", "b.md"} {
		if _, err := led.Enqueue(ctx, []freshen.Change{{Bucket: "b", Key: key, Kind: freshen.ChangeUpsert, Origin: "reconcile", EventTime: time.Now()}}); err != nil {
			t.Fatal(err)
		}
	}
	ls, err := led.Lease(ctx, freshen.LeaseParams{Owner: "t", Max: 10, TTL: time.Minute})
	if err != nil || len(ls) != 2 {
		t.Fatalf("lease: %v %v", ls, err)
	}
	for _, l := range ls {
		text := "text of " + l.Key
		h := freshen.HashChunk("c", text)
		id := freshen.MakeChunkID("b", l.Key, h, 0)
		if err := x.Upsert(ctx, []freshen.Record{{ID: id, Bucket: "b", Key: l.Key, Hash: h, Text: text, Vector: []float32{1, 0}}}); err != nil {
			t.Fatal(err)
		}
		obj := freshen.ObjectRecord{Bucket: "b", Key: l.Key, ETag: "e", State: freshen.StateIndexed, Chunks: 1, Chunker: "c", Model: "m"}
		if err := led.Complete(ctx, l, freshen.Commit{Object: obj, Chunks: []freshen.ChunkRef{{ID: id, Hash: h}}}); err != nil {
			t.Fatal(err)
		}
	}
	return led, x
}

// TestKeysInWorkAreNotDrift: a key with a change queued (or a write under
// way) is about to be rewritten: its differences are counted as in
// flight, not reported, and not handed to a repair.
func TestKeysInWorkAreNotDrift(t *testing.T) {
	ctx := context.Background()
	led, x := world(t)
	// Rows of a key the ledger does not have yet, and a lost row of a.md.
	must(t, x.Upsert(ctx, []freshen.Record{{ID: "new-1", Bucket: "b", Key: "c.md", Hash: "h", Text: "t", Vector: []float32{1, 0}}}))
	st, _ := led.State(ctx, "b", "a.md")
	must(t, x.Delete(ctx, []freshen.ChunkID{st.Chunks[0].ID}))
	rep, err := verify.Run(ctx, led, x, "b", nil)
	must(t, err)
	if rep.Missing != 1 || rep.Orphans != 1 || rep.InFlight != 0 || rep.KeysChecked != 3 {
		t.Fatalf("before any work: %+v", rep)
	}
	// Now both keys have changes queued: work in flight.
	_, err = led.Enqueue(ctx, []freshen.Change{{Bucket: "b", Key: "a.md", Kind: freshen.ChangeUpsert, Origin: "webhook", EventTime: time.Now()},
		{Bucket: "b", Key: "c.md", Kind: freshen.ChangeUpsert, Origin: "webhook", EventTime: time.Now()}})
	must(t, err)
	var handed []string
	rep, err = verify.Run(ctx, led, x, "b", func(k verify.Key) error { handed = append(handed, k.Key); return nil })
	must(t, err)
	if rep.Drifts() != 0 || rep.InFlight != 2 || len(handed) != 0 {
		t.Fatalf("with both keys queued: %+v, handed to repair %v", rep, handed)
	}
}

// TestRowsOfOtherBucketsAreNotRead: a bucket's pass leaves the rows of
// other buckets alone.
func TestRowsOfOtherBucketsAreNotRead(t *testing.T) {
	ctx := context.Background()
	led, x := world(t)
	must(t, x.Upsert(ctx, []freshen.Record{{ID: "elsewhere", Bucket: "other", Key: "a.md", Hash: "h", Text: "t", Vector: []float32{1, 0}}}))
	rep, err := verify.Run(ctx, led, x, "b", nil)
	must(t, err)
	if rep.Drifts() != 0 || rep.RowsChecked != 2 || rep.ChunksChecked != 2 {
		t.Fatalf("%+v", rep)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
