// Package ledgertest is the conformance suite every freshen.Ledger passes:
// call Run from the implementation's tests with a constructor that returns
// a fresh, empty ledger reading time from the given clock.
package ledgertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/freshen-io/freshen"
)

// NewLedger returns a fresh ledger that reads the current time from now
// (lease expiry and retry backoff are checked by moving it).
type NewLedger func(t *testing.T, now func() time.Time) freshen.Ledger

// Run checks the freshen.Ledger contract.
func Run(t *testing.T, newLedger NewLedger) {
	t.Run("QueueCoalesces", func(t *testing.T) { tQueueCoalesces(t, newLedger) })
	t.Run("ChangeDuringProcessingStaysQueued", func(t *testing.T) { tChangeDuringProcessingStaysQueued(t, newLedger) })
	t.Run("CompleteReplacesChunksAtomically", func(t *testing.T) { tCompleteReplacesChunksAtomically(t, newLedger) })
	t.Run("FailBacksOffThenParks", func(t *testing.T) { tFailBacksOffThenParks(t, newLedger) })
	t.Run("ObjectsInKeyOrderWithPrefixAndPaging", func(t *testing.T) { tObjectsInKeyOrderWithPrefixAndPaging(t, newLedger) })
	t.Run("EmbeddingCache", func(t *testing.T) { tEmbeddingCache(t, newLedger) })
	t.Run("ReleaseHandsKeysBack", func(t *testing.T) { tReleaseHandsKeysBack(t, newLedger) })
}

type bundle struct{ now time.Time }

func change(key string, at time.Time) freshen.Change {
	return freshen.Change{Bucket: "b", Key: key, Kind: freshen.ChangeUpsert, EventTime: at, Origin: "test"}
}

func tQueueCoalesces(t *testing.T, newLedger NewLedger) {
	ctx := context.Background()
	b := &bundle{now: time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)}
	l := newLedger(t, func() time.Time { return b.now })
	t0 := b.now.Add(-time.Minute)
	if n := mustEnqueue(t, l, []freshen.Change{change("k", t0.Add(10*time.Second)), change("k", t0), change("other", t0.Add(time.Second))}); n != 2 {
		t.Fatalf("added = %d, want 2", n)
	}
	if n := mustEnqueue(t, l, []freshen.Change{change("k", t0.Add(20*time.Second))}); n != 0 {
		t.Fatalf("added = %d for a queued key", n)
	}
	n, oldest, err := l.Backlog(ctx)
	must(t, err)
	if n != 2 || !oldest.Equal(t0) {
		t.Fatalf("backlog = %d, %v; want 2, %v", n, oldest, t0)
	}
	leases, err := l.Lease(ctx, "w1", 10, time.Minute)
	must(t, err)
	if len(leases) != 2 || leases[0].Key != "k" || !leases[0].FirstSeen.Equal(t0) || leases[0].Generation != 3 {
		t.Fatalf("leases = %+v", leases)
	}
	// Leased keys are not handed out again until the lease expires.
	again, err := l.Lease(ctx, "w2", 10, time.Minute)
	must(t, err)
	if len(again) != 0 {
		t.Fatalf("second lease got %+v", again)
	}
	b.now = b.now.Add(2 * time.Minute)
	again, err = l.Lease(ctx, "w2", 10, time.Minute)
	must(t, err)
	if len(again) != 2 {
		t.Fatalf("after expiry got %d leases", len(again))
	}
	// The first owner lost its lease.
	if err := l.Complete(ctx, leases[0], freshen.Commit{Gone: true}); !errors.Is(err, freshen.ErrLeaseLost) {
		t.Fatalf("Complete with a lost lease: %v", err)
	}
}

func tChangeDuringProcessingStaysQueued(t *testing.T, newLedger NewLedger) {
	ctx := context.Background()
	b := &bundle{now: time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)}
	l := newLedger(t, func() time.Time { return b.now })
	mustEnqueue(t, l, []freshen.Change{change("k", b.now)})
	ls, err := l.Lease(ctx, "w", 1, time.Minute)
	must(t, err)
	mustEnqueue(t, l, []freshen.Change{change("k", b.now)}) // arrives mid-flight
	obj := freshen.ObjectRecord{Bucket: "b", Key: "k", ETag: "e1", State: freshen.StateIndexed}
	must(t, l.Complete(ctx, ls[0], freshen.Commit{Object: obj}))
	n, _, err := l.Backlog(ctx)
	must(t, err)
	if n != 1 {
		t.Fatalf("backlog = %d, want the key still queued", n)
	}
	ls, err = l.Lease(ctx, "w", 1, time.Minute)
	must(t, err)
	must(t, l.Complete(ctx, ls[0], freshen.Commit{Object: obj}))
	if n, _, _ := l.Backlog(ctx); n != 0 {
		t.Fatalf("backlog = %d after completing", n)
	}
}

func tCompleteReplacesChunksAtomically(t *testing.T, newLedger NewLedger) {
	ctx := context.Background()
	b := &bundle{now: time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)}
	l := newLedger(t, func() time.Time { return b.now })
	mustEnqueue(t, l, []freshen.Change{change("doc.md", b.now)})
	ls, _ := l.Lease(ctx, "w", 1, time.Minute)
	must(t, l.BeginIntent(ctx, "b", "doc.md", freshen.Intent{Upserts: []freshen.ChunkID{"c1", "c2"}}))
	if keys, _ := l.KeysWithIntents(ctx); len(keys) != 1 || keys[0].Key != "doc.md" {
		t.Fatalf("KeysWithIntents = %+v", keys)
	}
	in, ok, err := l.PendingIntent(ctx, "b", "doc.md")
	must(t, err)
	if !ok || !slices.Equal(in.Upserts, []freshen.ChunkID{"c1", "c2"}) {
		t.Fatalf("PendingIntent = %+v %v", in, ok)
	}
	commit := freshen.Commit{
		Object: freshen.ObjectRecord{Bucket: "b", Key: "doc.md", ETag: "e", Size: 10, State: freshen.StateIndexed, Chunker: "c", Model: "m"},
		Chunks: []freshen.ChunkRef{{ID: "c2", Hash: "h2", Ordinal: 1}, {ID: "c1", Hash: "h1", Ordinal: 0}},
		Work:   freshen.Counters{ChunksEmbedded: 2, TokensEmbedded: 30, CharsEmbedded: 120},
	}
	must(t, l.Complete(ctx, ls[0], commit))
	chunks, err := l.Chunks(ctx, "b", "doc.md")
	must(t, err)
	if len(chunks) != 2 || chunks[0].ID != "c1" {
		t.Fatalf("chunks = %+v", chunks)
	}
	if _, ok, _ := l.PendingIntent(ctx, "b", "doc.md"); ok {
		t.Fatal("intent survived Complete")
	}
	o, err := l.Object(ctx, "b", "doc.md")
	must(t, err)
	if o.Chunks != 2 || o.State != freshen.StateIndexed || o.ETag != "e" {
		t.Fatalf("object = %+v", o)
	}
	c, _ := l.Counters(ctx)
	if c != (freshen.Counters{ChunksEmbedded: 2, TokensEmbedded: 30, CharsEmbedded: 120}) {
		t.Fatalf("counters = %+v", c)
	}
	// Deleting the object removes its row and chunks.
	mustEnqueue(t, l, []freshen.Change{change("doc.md", b.now)})
	ls, _ = l.Lease(ctx, "w", 1, time.Minute)
	must(t, l.Complete(ctx, ls[0], freshen.Commit{Gone: true}))
	if _, err := l.Object(ctx, "b", "doc.md"); !errors.Is(err, freshen.ErrNotFound) {
		t.Fatalf("Object after delete: %v", err)
	}
	if chunks, _ := l.Chunks(ctx, "b", "doc.md"); len(chunks) != 0 {
		t.Fatalf("chunks after delete: %v", chunks)
	}
}

func tFailBacksOffThenParks(t *testing.T, newLedger NewLedger) {
	ctx := context.Background()
	b := &bundle{now: time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)}
	l := newLedger(t, func() time.Time { return b.now })
	mustEnqueue(t, l, []freshen.Change{change("bad", b.now)})
	for attempt := 1; attempt <= 3; attempt++ {
		ls, err := l.Lease(ctx, "w", 1, time.Minute)
		must(t, err)
		if len(ls) != 1 {
			t.Fatalf("attempt %d: no lease", attempt)
		}
		must(t, l.Fail(ctx, ls[0], fmt.Errorf("boom %d", attempt), b.now.Add(time.Minute), 3))
		if attempt < 3 {
			if ls, _ := l.Lease(ctx, "w", 1, time.Minute); len(ls) != 0 {
				t.Fatal("leased during backoff")
			}
			b.now = b.now.Add(2 * time.Minute)
		}
	}
	if n, _, _ := l.Backlog(ctx); n != 0 {
		t.Fatalf("backlog = %d, want parked", n)
	}
	o, err := l.Object(ctx, "b", "bad")
	must(t, err)
	if o.State != freshen.StateFailed || o.Reason != "boom 3" || o.Attempts != 3 {
		t.Fatalf("object = %+v", o)
	}
}

func tObjectsInKeyOrderWithPrefixAndPaging(t *testing.T, newLedger NewLedger) {
	ctx := context.Background()
	b := &bundle{now: time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)}
	l := newLedger(t, func() time.Time { return b.now })
	var keys []string
	for i := 0; i < 2500; i++ {
		keys = append(keys, fmt.Sprintf("docs/%05d.md", i))
	}
	keys = append(keys, "docs", "docs0", "doct/x", "a", "docs/\xff", "docs/ü")
	for _, k := range keys {
		mustEnqueue(t, l, []freshen.Change{change(k, b.now)})
	}
	for {
		ls, err := l.Lease(ctx, "w", 500, time.Minute)
		must(t, err)
		if len(ls) == 0 {
			break
		}
		for _, x := range ls {
			must(t, l.Complete(ctx, x, freshen.Commit{Object: freshen.ObjectRecord{Bucket: "b", Key: x.Key, State: freshen.StateIndexed}}))
		}
	}
	var got []string
	must(t, l.Objects(ctx, "b", "docs/", "", func(o freshen.ObjectRecord) error { got = append(got, o.Key); return nil }))
	if len(got) != 2502 || got[0] != "docs/00000.md" || got[2500] != "docs/ü" || got[2501] != "docs/\xff" {
		t.Fatalf("got %d keys: first %q, last %q", len(got), got[0], got[len(got)-1])
	}
	if !slices.IsSorted(got) {
		t.Fatal("keys not in byte order")
	}
	got = got[:0]
	must(t, l.Objects(ctx, "b", "docs/", "docs/02497.md", func(o freshen.ObjectRecord) error { got = append(got, o.Key); return nil }))
	if len(got) != 4 {
		t.Fatalf("startAfter: got %v", got)
	}
}

func tEmbeddingCache(t *testing.T, newLedger NewLedger) {
	ctx := context.Background()
	l := newLedger(t, time.Now)
	must(t, l.CacheEmbeddings(ctx, "m1", map[freshen.ChunkHash][]float32{"h1": {1, 2}, "h2": {3, 4}}, freshen.Counters{ChunksEmbedded: 2, TokensEmbedded: 9}))
	if c, _ := l.Counters(ctx); c.ChunksEmbedded != 2 || c.TokensEmbedded != 9 {
		t.Fatalf("counters = %+v, want the cached work counted", c)
	}
	got, err := l.CachedEmbeddings(ctx, "m1", []freshen.ChunkHash{"h1", "h3", "h2"})
	must(t, err)
	if len(got) != 2 || got["h2"][1] != 4 {
		t.Fatalf("got %v", got)
	}
	if got, _ := l.CachedEmbeddings(ctx, "m2", []freshen.ChunkHash{"h1"}); len(got) != 0 {
		t.Fatal("cache is not keyed by model")
	}
}

func tReleaseHandsKeysBack(t *testing.T, newLedger NewLedger) {
	ctx := context.Background()
	b := &bundle{now: time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)}
	l := newLedger(t, func() time.Time { return b.now })
	mustEnqueue(t, l, []freshen.Change{change("a", b.now), change("b", b.now)})
	ls, err := l.Lease(ctx, "w1", 2, time.Hour)
	must(t, err)
	if len(ls) != 2 {
		t.Fatalf("leased %d", len(ls))
	}
	must(t, l.Release(ctx, ls[0]))
	again, err := l.Lease(ctx, "w2", 2, time.Hour)
	must(t, err)
	if len(again) != 1 || again[0].Key != ls[0].Key {
		t.Fatalf("after Release: %+v", again)
	}
	// A restarting sole owner frees everything a crashed run held.
	must(t, l.ReleaseAll(ctx))
	all, err := l.Lease(ctx, "w3", 10, time.Hour)
	must(t, err)
	if len(all) != 2 {
		t.Fatalf("after ReleaseAll: %d leases", len(all))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustEnqueue(t *testing.T, l freshen.Ledger, changes []freshen.Change) int {
	t.Helper()
	n, err := l.Enqueue(context.Background(), changes)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
