// Package ledgertest is the conformance suite every freshen.Ledger passes:
// call Run from the implementation's tests with a constructor that returns
// a fresh, empty ledger reading time from the given clock.
package ledgertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/freshen-io/freshen"
)

// NewLedger returns a fresh ledger that reads the current time from now
// (lease expiry and retry backoff are checked by moving it).
type NewLedger func(t *testing.T, now func() time.Time) freshen.Ledger

// Run checks the freshen.Ledger contract, organised like the interface:
// the queue with its fenced leases, the catalog of objects and intents,
// and the embedding cache.
func Run(t *testing.T, newLedger NewLedger) {
	t.Run("Queue", func(t *testing.T) {
		t.Run("Coalesces", func(t *testing.T) { tQueueCoalesces(t, newLedger) })
		t.Run("VanishedOnlyWhileEveryChangeIs", func(t *testing.T) { tVanishedOnlyWhileEveryChangeIs(t, newLedger) })
		t.Run("EventsBeforeBacklog", func(t *testing.T) { tEventsBeforeBacklog(t, newLedger) })
		t.Run("ChangeDuringProcessingStaysQueued", func(t *testing.T) { tChangeDuringProcessingStaysQueued(t, newLedger) })
		t.Run("FailBacksOffThenParks", func(t *testing.T) { tFailBacksOffThenParks(t, newLedger) })
		t.Run("PermanentFailureParksAtOnce", func(t *testing.T) { tPermanentFailureParksAtOnce(t, newLedger) })
		t.Run("ReleaseHandsKeysBack", func(t *testing.T) { tReleaseHandsKeysBack(t, newLedger) })
		t.Run("StaleLeaseLosesEverywhere", func(t *testing.T) { tStaleLeaseLosesEverywhere(t, newLedger) })
		t.Run("ExtendKeepsTheKey", func(t *testing.T) { tExtendKeepsTheKey(t, newLedger) })
		t.Run("TwoPoolsNeverShareAKey", func(t *testing.T) { tTwoPoolsNeverShareAKey(t, newLedger) })
	})
	t.Run("Catalog", func(t *testing.T) {
		t.Run("CompleteReplacesChunksAtomically", func(t *testing.T) { tCompleteReplacesChunksAtomically(t, newLedger) })
		t.Run("ObjectsInKeyOrderWithPrefixAndPaging", func(t *testing.T) { tObjectsInKeyOrderWithPrefixAndPaging(t, newLedger) })
		t.Run("ReclaimQueuesARewrite", func(t *testing.T) { tReclaimQueuesARewrite(t, newLedger) })
	})
	t.Run("EmbeddingCache", func(t *testing.T) { tEmbeddingCache(t, newLedger) })
	t.Run("SettingsSwapAtomically", func(t *testing.T) { tSettings(t, newLedger) })
	t.Run("PurgeForgetsAGeneration", func(t *testing.T) { tPurge(t, newLedger) })
}

// tSettings: a setting changes only from the value the caller read, so
// two processes racing to change the generation registry cannot both win.
func tSettings(t *testing.T, newLedger NewLedger) {
	l := newLedger(t, time.Now)
	s, ok := l.(freshen.Settings)
	if !ok {
		t.Fatalf("%T does not implement freshen.Settings", l)
	}
	ctx := context.Background()
	if _, ok, err := s.Setting(ctx, "gens"); err != nil || ok {
		t.Fatalf("unset setting: ok %v, err %v", ok, err)
	}
	if won, err := s.SwapSetting(ctx, "gens", "", false, "v1"); err != nil || !won {
		t.Fatalf("first set: won %v, err %v", won, err)
	}
	if won, err := s.SwapSetting(ctx, "gens", "", false, "other"); err != nil || won {
		t.Fatalf("a second create must lose: won %v, err %v", won, err)
	}
	if won, err := s.SwapSetting(ctx, "gens", "stale", true, "v2"); err != nil || won {
		t.Fatalf("a swap from a stale value must lose: won %v, err %v", won, err)
	}
	if won, err := s.SwapSetting(ctx, "gens", "v1", true, "v2"); err != nil || !won {
		t.Fatalf("swap from the current value: won %v, err %v", won, err)
	}
	if v, ok, err := s.Setting(ctx, "gens"); err != nil || !ok || v != "v2" {
		t.Fatalf("setting = %q, %v, %v; want v2", v, ok, err)
	}
	// Settings are not the ledger's own identity (Stamped).
	if st, ok := l.(freshen.Stamped); ok {
		self, _, err := st.Stamp(ctx)
		if err != nil || self == "" || self == "v2" {
			t.Fatalf("stamp after settings: %q, %v", self, err)
		}
	}
}

// tPurge: Purge forgets objects, chunks, the queue and the cache, and
// keeps the settings and the lifetime counters.
func tPurge(t *testing.T, newLedger NewLedger) {
	l := newLedger(t, time.Now)
	p, ok := l.(freshen.Purger)
	if !ok {
		t.Fatalf("%T does not implement freshen.Purger", l)
	}
	ctx := context.Background()
	mustEnqueue(t, l, []freshen.Change{change("a.md", time.Now())})
	ls := lease(t, l, "w", 1, time.Minute)
	must(t, l.Complete(ctx, ls[0], freshen.Commit{
		Object: freshen.ObjectRecord{Bucket: "b", Key: "a.md", ETag: "e1", State: freshen.StateIndexed, Chunks: 1},
		Chunks: []freshen.ChunkRef{{ID: "c1", Hash: "h1"}}}))
	mustEnqueue(t, l, []freshen.Change{change("q.md", time.Now())})
	if err := l.CacheEmbeddings(ctx, "m", map[freshen.ChunkHash][]float32{"h1": {1, 0}}, freshen.Counters{TokensEmbedded: 7}); err != nil {
		t.Fatal(err)
	}
	if s, ok := l.(freshen.Settings); ok {
		if _, err := s.SwapSetting(ctx, "keep", "", false, "yes"); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	if sum, err := l.Summary(ctx); err != nil || sum != (freshen.Summary{}) {
		t.Fatalf("summary after purge: %+v, %v", sum, err)
	}
	if n, _, err := l.Backlog(ctx); err != nil || n != 0 {
		t.Fatalf("backlog after purge: %d, %v", n, err)
	}
	if got, err := l.CachedEmbeddings(ctx, "m", []freshen.ChunkHash{"h1"}); err != nil || len(got) != 0 {
		t.Fatalf("cache after purge: %v, %v", got, err)
	}
	if c, err := l.Counters(ctx); err != nil || c.TokensEmbedded != 7 {
		t.Fatalf("counters after purge: %+v, %v (want kept)", c, err)
	}
	if s, ok := l.(freshen.Settings); ok {
		if v, ok, err := s.Setting(ctx, "keep"); err != nil || !ok || v != "yes" {
			t.Fatalf("setting after purge: %q %v %v", v, ok, err)
		}
	}
}

// lease leases up to max keys for owner.
func lease(t *testing.T, l freshen.Ledger, owner string, max int, ttl time.Duration) []freshen.Lease {
	t.Helper()
	ls, err := l.Lease(context.Background(), freshen.LeaseParams{Owner: owner, Max: max, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

func fail(err error, retryAt time.Time, maxAttempts int) freshen.Failure {
	return freshen.Failure{Err: err, RetryAt: retryAt, MaxAttempts: maxAttempts}
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
	if q, err := l.Queued(ctx, "b", "k"); err != nil || !q {
		t.Fatalf("Queued(k) = %v, %v", q, err)
	}
	if q, err := l.Queued(ctx, "b", "nope"); err != nil || q {
		t.Fatalf("Queued(nope) = %v, %v", q, err)
	}
	leases := lease(t, l, "w1", 10, time.Minute)
	if len(leases) != 2 || leases[0].Key != "k" || !leases[0].FirstSeen.Equal(t0) || leases[0].Generation != 3 {
		t.Fatalf("leases = %+v", leases)
	}
	if leases[0].Token == 0 || leases[0].Token == leases[1].Token || !leases[0].Expires.Equal(b.now.Add(time.Minute)) {
		t.Fatalf("leases need distinct tokens and their expiry: %+v", leases)
	}
	// Leased keys are not handed out again until the lease expires.
	if again := lease(t, l, "w2", 10, time.Minute); len(again) != 0 {
		t.Fatalf("second lease got %+v", again)
	}
	b.now = b.now.Add(2 * time.Minute)
	again := lease(t, l, "w2", 10, time.Minute)
	if len(again) != 2 {
		t.Fatalf("after expiry got %d leases", len(again))
	}
	if again[0].Token <= max(leases[0].Token, leases[1].Token) {
		t.Fatalf("tokens must grow: %d after %d", again[0].Token, leases[1].Token)
	}
	// The first owner lost its lease.
	if err := l.Complete(ctx, leases[0], freshen.Commit{Gone: true}); !errors.Is(err, freshen.ErrLeaseLost) {
		t.Fatalf("Complete with a lost lease: %v", err)
	}
}

func tVanishedOnlyWhileEveryChangeIs(t *testing.T, newLedger NewLedger) {
	b := &bundle{now: time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)}
	l := newLedger(t, func() time.Time { return b.now })
	gone := func(key string) freshen.Change {
		c := change(key, b.now.Add(-time.Minute))
		c.Kind = freshen.ChangeVanished
		return c
	}
	mustEnqueue(t, l, []freshen.Change{gone("listing-only"), gone("then-event"), change("event-then", b.now)})
	mustEnqueue(t, l, []freshen.Change{change("then-event", b.now), gone("event-then"), gone("listing-only")})
	got := map[string]bool{}
	for _, x := range lease(t, l, "w", 10, time.Minute) {
		got[x.Key] = x.Vanished
	}
	if !got["listing-only"] || got["then-event"] || got["event-then"] || len(got) != 3 {
		t.Fatalf("Vanished by key = %v; want only listing-only", got)
	}
}

func tEventsBeforeBacklog(t *testing.T, newLedger NewLedger) {
	b := &bundle{now: time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)}
	l := newLedger(t, func() time.Time { return b.now })
	var backlog []freshen.Change
	for i := 0; i < 50; i++ {
		c := change(fmt.Sprintf("backfill/%02d", i), b.now.Add(-time.Hour))
		c.Origin = "reconcile"
		backlog = append(backlog, c)
	}
	mustEnqueue(t, l, backlog)
	mustEnqueue(t, l, []freshen.Change{change("fresh-edit", b.now)})
	// A backlog key that an event also announces is fresh too.
	mustEnqueue(t, l, []freshen.Change{change("backfill/42", b.now)})
	ctx := context.Background()
	only, err := l.Lease(ctx, freshen.LeaseParams{Owner: "w", Max: 10, TTL: time.Millisecond, FreshOnly: true})
	must(t, err)
	if len(only) != 2 || !only[0].Fresh || !only[1].Fresh {
		t.Fatalf("FreshOnly leased %+v; want the two announced keys", only)
	}
	for _, x := range only {
		must(t, l.Release(ctx, x))
	}
	got := lease(t, l, "w", 3, time.Minute)
	if len(got) != 3 || got[0].Key != "backfill/42" || got[1].Key != "fresh-edit" || got[2].Key != "backfill/00" {
		t.Fatalf("leased %v; want the announced keys first, then the oldest backlog", got)
	}
	if !got[0].Fresh || !got[1].Fresh || got[2].Fresh {
		t.Fatalf("Fresh = %v %v %v; want true, true, false", got[0].Fresh, got[1].Fresh, got[2].Fresh)
	}
}

func tChangeDuringProcessingStaysQueued(t *testing.T, newLedger NewLedger) {
	ctx := context.Background()
	b := &bundle{now: time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)}
	l := newLedger(t, func() time.Time { return b.now })
	mustEnqueue(t, l, []freshen.Change{change("k", b.now)})
	ls := lease(t, l, "w", 1, time.Minute)
	mustEnqueue(t, l, []freshen.Change{change("k", b.now)}) // arrives mid-flight
	obj := freshen.ObjectRecord{Bucket: "b", Key: "k", ETag: "e1", State: freshen.StateIndexed}
	must(t, l.Complete(ctx, ls[0], freshen.Commit{Object: obj}))
	n, _, err := l.Backlog(ctx)
	must(t, err)
	if n != 1 {
		t.Fatalf("backlog = %d, want the key still queued", n)
	}
	// The lease that completed is spent, even though the key stays queued.
	if err := l.Complete(ctx, ls[0], freshen.Commit{Object: obj}); !errors.Is(err, freshen.ErrLeaseLost) {
		t.Fatalf("second Complete of one lease: %v", err)
	}
	ls = lease(t, l, "w", 1, time.Minute)
	must(t, l.Complete(ctx, ls[0], freshen.Commit{Object: obj}))
	if n, _, _ := l.Backlog(ctx); n != 0 {
		t.Fatalf("backlog = %d after completing", n)
	}
}

func tFailBacksOffThenParks(t *testing.T, newLedger NewLedger) {
	ctx := context.Background()
	b := &bundle{now: time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)}
	l := newLedger(t, func() time.Time { return b.now })
	mustEnqueue(t, l, []freshen.Change{change("bad", b.now)})
	for attempt := 1; attempt <= 3; attempt++ {
		ls := lease(t, l, "w", 1, time.Minute)
		if len(ls) != 1 {
			t.Fatalf("attempt %d: no lease", attempt)
		}
		if ls[0].Attempts != attempt-1 {
			t.Fatalf("attempt %d: lease says %d attempts", attempt, ls[0].Attempts)
		}
		must(t, l.Fail(ctx, ls[0], fail(fmt.Errorf("boom %d", attempt), b.now.Add(time.Minute), 3)))
		if attempt < 3 {
			if ls := lease(t, l, "w", 1, time.Minute); len(ls) != 0 {
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
	if objs, err := l.ObjectsInState(ctx, freshen.StateFailed, 10); err != nil || len(objs) != 1 || objs[0].Key != "bad" {
		t.Fatalf("ObjectsInState(failed) = %+v, %v", objs, err)
	}
}

func tPermanentFailureParksAtOnce(t *testing.T, newLedger NewLedger) {
	ctx := context.Background()
	b := &bundle{now: time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)}
	l := newLedger(t, func() time.Time { return b.now })
	mustEnqueue(t, l, []freshen.Change{change("poison", b.now)})
	ls := lease(t, l, "w", 1, time.Minute)
	must(t, l.Fail(ctx, ls[0], freshen.Failure{Err: errors.New("input rejected"), RetryAt: b.now, MaxAttempts: 5, Permanent: true}))
	if n, _, _ := l.Backlog(ctx); n != 0 {
		t.Fatalf("backlog = %d, want parked after one permanent failure", n)
	}
	o, err := l.Object(ctx, "b", "poison")
	must(t, err)
	if o.State != freshen.StateFailed || o.Reason != "input rejected" || o.Attempts != 1 {
		t.Fatalf("object = %+v", o)
	}
	// A failure that is not an attempt delays the key but never parks it.
	mustEnqueue(t, l, []freshen.Change{change("busy", b.now)})
	for i := 0; i < 5; i++ {
		ls := lease(t, l, "w", 1, time.Minute)
		if len(ls) != 1 || ls[0].Attempts != 0 {
			t.Fatalf("round %d: leases %+v", i, ls)
		}
		must(t, l.Fail(ctx, ls[0], freshen.Failure{Err: freshen.ErrPreconditionFailed, RetryAt: b.now.Add(time.Second), MaxAttempts: 1, NotAttempt: true}))
		if again := lease(t, l, "w", 1, time.Minute); len(again) != 0 {
			t.Fatal("leased before its retry time")
		}
		b.now = b.now.Add(2 * time.Second)
	}
	if _, err := l.Object(ctx, "b", "busy"); !errors.Is(err, freshen.ErrNotFound) {
		t.Fatalf("a key that only failed without attempts was parked: %v", err)
	}
}

func tReleaseHandsKeysBack(t *testing.T, newLedger NewLedger) {
	ctx := context.Background()
	b := &bundle{now: time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)}
	l := newLedger(t, func() time.Time { return b.now })
	mustEnqueue(t, l, []freshen.Change{change("a", b.now), change("b", b.now)})
	ls := lease(t, l, "w1", 2, time.Hour)
	if len(ls) != 2 {
		t.Fatalf("leased %d", len(ls))
	}
	must(t, l.Release(ctx, ls[0]))
	again := lease(t, l, "w2", 2, time.Hour)
	if len(again) != 1 || again[0].Key != ls[0].Key || again[0].Attempts != 0 {
		t.Fatalf("after Release: %+v", again)
	}
	// A released lease is spent.
	if err := l.Release(ctx, ls[0]); !errors.Is(err, freshen.ErrLeaseLost) {
		t.Fatalf("second Release: %v", err)
	}
}

// tStaleLeaseLosesEverywhere is the fencing contract: after a lease
// expires and the key is leased again, by the same owner name as a
// worker pool of one process uses, only the new lease may act.
func tStaleLeaseLosesEverywhere(t *testing.T, newLedger NewLedger) {
	ctx := context.Background()
	b := &bundle{now: time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)}
	l := newLedger(t, func() time.Time { return b.now })
	mustEnqueue(t, l, []freshen.Change{change("k", b.now)})
	stale := lease(t, l, "pool", 1, time.Minute)[0]
	b.now = b.now.Add(2 * time.Minute) // a GC pause, a slow embedder
	cur := lease(t, l, "pool", 1, time.Minute)
	if len(cur) != 1 {
		t.Fatal("expired lease not handed out again")
	}
	obj := freshen.ObjectRecord{Bucket: "b", Key: "k", ETag: "stale", State: freshen.StateIndexed}
	lost := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, freshen.ErrLeaseLost) {
			t.Fatalf("%s with a stale lease: %v, want ErrLeaseLost", op, err)
		}
	}
	lost("BeginIntent", l.BeginIntent(ctx, stale, freshen.Intent{Upserts: []freshen.ChunkID{"orphan"}}))
	lost("Complete", l.Complete(ctx, stale, freshen.Commit{Object: obj, Chunks: []freshen.ChunkRef{{ID: "orphan", Hash: "h"}}}))
	lost("Fail", l.Fail(ctx, stale, fail(errors.New("x"), b.now, 1)))
	lost("Release", l.Release(ctx, stale))
	s := stale
	lost("Extend", l.Extend(ctx, &s, time.Hour))
	st, err := l.State(ctx, "b", "k")
	must(t, err)
	if st.Known || st.Pending || len(st.Chunks) != 0 {
		t.Fatalf("a stale lease changed the key: %+v", st)
	}
	// The current holder is unaffected.
	must(t, l.BeginIntent(ctx, cur[0], freshen.Intent{Upserts: []freshen.ChunkID{"c1"}}))
	obj.ETag = "current"
	must(t, l.Complete(ctx, cur[0], freshen.Commit{Object: obj, Chunks: []freshen.ChunkRef{{ID: "c1", Hash: "h1"}}}))
	st, err = l.State(ctx, "b", "k")
	must(t, err)
	if !st.Known || st.Object.ETag != "current" || st.Pending || len(st.Chunks) != 1 {
		t.Fatalf("state after the current lease committed: %+v", st)
	}
	// Leases of a key that was dequeued and queued again stay fenced too.
	mustEnqueue(t, l, []freshen.Change{change("k", b.now)})
	next := lease(t, l, "pool", 1, time.Minute)
	lost("Complete of the first lease after requeue", l.Complete(ctx, stale, freshen.Commit{Gone: true}))
	lost("Complete of the second lease after requeue", l.Complete(ctx, cur[0], freshen.Commit{Gone: true}))
	must(t, l.Complete(ctx, next[0], freshen.Commit{Gone: true}))
}

func tExtendKeepsTheKey(t *testing.T, newLedger NewLedger) {
	ctx := context.Background()
	b := &bundle{now: time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)}
	l := newLedger(t, func() time.Time { return b.now })
	mustEnqueue(t, l, []freshen.Change{change("slow", b.now)})
	ls := lease(t, l, "w1", 1, time.Minute)[0]
	for i := 0; i < 3; i++ {
		b.now = b.now.Add(40 * time.Second)
		must(t, l.Extend(ctx, &ls, time.Minute))
		if !ls.Expires.Equal(b.now.Add(time.Minute)) {
			t.Fatalf("Expires = %v, want %v", ls.Expires, b.now.Add(time.Minute))
		}
		if other := lease(t, l, "w2", 1, time.Minute); len(other) != 0 {
			t.Fatalf("an extended lease was handed out: %+v", other)
		}
	}
	b.now = b.now.Add(2 * time.Minute)
	if other := lease(t, l, "w2", 1, time.Minute); len(other) != 1 {
		t.Fatal("an expired lease was not handed out")
	}
}

// tTwoPoolsNeverShareAKey runs two worker pools, as two processes would,
// against one ledger: every key is completed exactly once and no key is
// ever held by both at the same time.
// SharedLedgers returns two handles on one fresh, empty store, as two
// processes sharing it would hold.
type SharedLedgers func(t *testing.T) (a, b freshen.Ledger)

// RunShared checks what a ledger shared by several processes promises:
// pools leasing through different handles never share a key, and fencing
// tokens are unique across them.
func RunShared(t *testing.T, open SharedLedgers) {
	t.Run("TwoProcessesNeverShareAKey", func(t *testing.T) {
		a, b := open(t)
		twoPools(t, [2]freshen.Ledger{a, b})
	})
}

func tTwoPoolsNeverShareAKey(t *testing.T, newLedger NewLedger) {
	l := newLedger(t, time.Now)
	twoPools(t, [2]freshen.Ledger{l, l})
}

// twoPools runs two pools of three workers, one through each handle, over
// 200 keys: each key is completed exactly once, never held by two
// workers at a time, and every lease has a token of its own.
func twoPools(t *testing.T, handles [2]freshen.Ledger) {
	ctx := context.Background()
	l := handles[0]
	const keys = 200
	var cs []freshen.Change
	for i := 0; i < keys; i++ {
		cs = append(cs, change(fmt.Sprintf("k%03d", i), time.Now()))
	}
	mustEnqueue(t, l, cs)
	var mu sync.Mutex
	holder := map[string]string{}
	done := map[string]int{}
	tokens := map[int64]string{}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for p, pool := range []string{"process-a", "process-b"} {
		l := handles[p]
		for w := 0; w < 3; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					ls, err := l.Lease(ctx, freshen.LeaseParams{Owner: pool, Max: 4, TTL: time.Minute})
					if err != nil {
						errs <- err
						return
					}
					if len(ls) == 0 {
						if n, _, err := l.Backlog(ctx); err != nil || n == 0 {
							return
						}
						continue
					}
					for _, x := range ls {
						mu.Lock()
						if h, ok := holder[x.Key]; ok {
							mu.Unlock()
							errs <- fmt.Errorf("%s leased %s while %s held it", pool, x.Key, h)
							return
						}
						if k, ok := tokens[x.Token]; ok {
							mu.Unlock()
							errs <- fmt.Errorf("token %d given to %s and %s", x.Token, k, x.Key)
							return
						}
						tokens[x.Token] = x.Key
						holder[x.Key] = pool
						mu.Unlock()
						err := l.Complete(ctx, x, freshen.Commit{Object: freshen.ObjectRecord{Bucket: "b", Key: x.Key, State: freshen.StateIndexed}})
						mu.Lock()
						delete(holder, x.Key)
						if err == nil {
							done[x.Key]++
						}
						mu.Unlock()
						if err != nil {
							errs <- fmt.Errorf("complete %s: %w", x.Key, err)
							return
						}
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(done) != keys {
		t.Fatalf("%d of %d keys completed", len(done), keys)
	}
	for k, n := range done {
		if n != 1 {
			t.Fatalf("%s completed %d times", k, n)
		}
	}
}

func tCompleteReplacesChunksAtomically(t *testing.T, newLedger NewLedger) {
	ctx := context.Background()
	b := &bundle{now: time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)}
	l := newLedger(t, func() time.Time { return b.now })
	mustEnqueue(t, l, []freshen.Change{change("doc.md", b.now)})
	ls := lease(t, l, "w", 1, time.Minute)
	must(t, l.BeginIntent(ctx, ls[0], freshen.Intent{Upserts: []freshen.ChunkID{"c1", "c2"}}))
	if keys, _ := l.KeysWithIntents(ctx); len(keys) != 1 || keys[0].Key != "doc.md" {
		t.Fatalf("KeysWithIntents = %+v", keys)
	}
	st, err := l.State(ctx, "b", "doc.md")
	must(t, err)
	if !st.Pending || !slices.Equal(st.Intent.Upserts, []freshen.ChunkID{"c1", "c2"}) || st.Known {
		t.Fatalf("State = %+v", st)
	}
	commit := freshen.Commit{
		Object: freshen.ObjectRecord{Bucket: "b", Key: "doc.md", ETag: "e", Size: 10, State: freshen.StateIndexed, Chunker: "c", Model: "m", Meta: "meta-1"},
		Chunks: []freshen.ChunkRef{{ID: "c2", Hash: "h2", Ordinal: 1}, {ID: "c1", Hash: "h1", Ordinal: 0}},
		Work:   freshen.Counters{ChunksEmbedded: 2, TokensEmbedded: 30, CharsEmbedded: 120},
	}
	must(t, l.Complete(ctx, ls[0], commit))
	st, err = l.State(ctx, "b", "doc.md")
	must(t, err)
	if len(st.Chunks) != 2 || st.Chunks[0].ID != "c1" {
		t.Fatalf("chunks = %+v", st.Chunks)
	}
	if st.Object.Meta != "meta-1" {
		t.Fatalf("the object's metadata hash = %q, want meta-1", st.Object.Meta)
	}
	if st.Pending {
		t.Fatal("intent survived Complete")
	}
	if keys, _ := l.KeysWithIntents(ctx); len(keys) != 0 {
		t.Fatalf("KeysWithIntents after Complete = %+v", keys)
	}
	o, err := l.Object(ctx, "b", "doc.md")
	must(t, err)
	if o.Chunks != 2 || o.State != freshen.StateIndexed || o.ETag != "e" || st.Object != o {
		t.Fatalf("object = %+v, state's = %+v", o, st.Object)
	}
	if s, _ := l.Summary(ctx); s != (freshen.Summary{Indexed: 1, Chunks: 2}) {
		t.Fatalf("summary = %+v", s)
	}
	c, _ := l.Counters(ctx)
	if c != (freshen.Counters{ChunksEmbedded: 2, TokensEmbedded: 30, CharsEmbedded: 120, TokensToday: 30}) {
		t.Fatalf("counters = %+v", c)
	}
	// Deleting the object removes its row and chunks.
	mustEnqueue(t, l, []freshen.Change{change("doc.md", b.now)})
	ls = lease(t, l, "w", 1, time.Minute)
	must(t, l.Complete(ctx, ls[0], freshen.Commit{Gone: true}))
	if _, err := l.Object(ctx, "b", "doc.md"); !errors.Is(err, freshen.ErrNotFound) {
		t.Fatalf("Object after delete: %v", err)
	}
	if st, _ := l.State(ctx, "b", "doc.md"); st.Known || len(st.Chunks) != 0 {
		t.Fatalf("state after delete: %+v", st)
	}
}

func tReclaimQueuesARewrite(t *testing.T, newLedger NewLedger) {
	ctx := context.Background()
	b := &bundle{now: time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)}
	l := newLedger(t, func() time.Time { return b.now })
	keys := []freshen.Reclaim{{Bucket: "b", Key: "in-index", IDs: []freshen.ChunkID{"x1", "x2"}}, {Bucket: "b", Key: "in-ledger"}}
	for i := 0; i < 2; i++ { // idempotent
		must(t, l.Reclaim(ctx, keys))
	}
	st, err := l.State(ctx, "b", "in-index")
	must(t, err)
	if !st.Pending || !slices.Equal(st.Intent.Deletes, []freshen.ChunkID{"x1", "x2"}) {
		t.Fatalf("in-index: %+v", st)
	}
	if st, _ := l.State(ctx, "b", "in-ledger"); !st.Pending {
		t.Fatalf("in-ledger: %+v, want a pending intent (a full rewrite)", st)
	}
	if n, _, _ := l.Backlog(ctx); n != 2 {
		t.Fatalf("backlog = %d, want both keys queued", n)
	}
	// A repair is backlog: it must not crowd out fresh edits.
	if fresh, _ := l.Lease(ctx, freshen.LeaseParams{Owner: "w", Max: 10, TTL: time.Minute, FreshOnly: true}); len(fresh) != 0 {
		t.Fatalf("reclaimed keys leased as fresh: %+v", fresh)
	}
	if s, ok := l.(freshen.Stamped); ok {
		self, partner, err := s.Stamp(ctx)
		must(t, err)
		if self == "" || partner != "" {
			t.Fatalf("a new ledger's stamp: %q, %q", self, partner)
		}
		must(t, s.Pair(ctx, "index-1"))
		again, partner, err := s.Stamp(ctx)
		must(t, err)
		if again != self || partner != "index-1" {
			t.Fatalf("stamp after Pair: %q, %q", again, partner)
		}
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
	// Keys are valid UTF-8 (freshen.ValidKey); U+10FFFF has the highest
	// bytes one can hold.
	keys = append(keys, "docs", "docs0", "doct/x", "a", "docs/\U0010FFFF", "docs/ü")
	for _, k := range keys {
		mustEnqueue(t, l, []freshen.Change{change(k, b.now)})
	}
	for {
		ls := lease(t, l, "w", 500, time.Minute)
		if len(ls) == 0 {
			break
		}
		for _, x := range ls {
			must(t, l.Complete(ctx, x, freshen.Commit{Object: freshen.ObjectRecord{Bucket: "b", Key: x.Key, State: freshen.StateIndexed}}))
		}
	}
	var got []string
	must(t, l.Objects(ctx, "b", "docs/", "", func(o freshen.ObjectRecord) error { got = append(got, o.Key); return nil }))
	if len(got) != 2502 || got[0] != "docs/00000.md" || got[2500] != "docs/ü" || got[2501] != "docs/\U0010FFFF" {
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
	b := &bundle{now: time.Date(2026, 11, 26, 23, 0, 0, 0, time.UTC)}
	l := newLedger(t, func() time.Time { return b.now })
	defer func() {
		// Tokens of today roll over at midnight UTC; the lifetime sum stays.
		must(t, l.CacheEmbeddings(ctx, "m1", map[freshen.ChunkHash][]float32{"h9": {9, 9}}, freshen.Counters{ChunksEmbedded: 1, TokensEmbedded: 5}))
		b.now = b.now.Add(2 * time.Hour)
		must(t, l.CacheEmbeddings(ctx, "m1", map[freshen.ChunkHash][]float32{"h8": {8, 8}}, freshen.Counters{ChunksEmbedded: 1, TokensEmbedded: 7}))
		if c, _ := l.Counters(ctx); c.TokensEmbedded != 23 || c.TokensToday != 7 {
			t.Fatalf("after midnight: %+v, want 23 tokens in all and 7 today", c)
		}
	}()
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
	// Tokens billed for a call that failed are counted without vectors.
	must(t, l.CacheEmbeddings(ctx, "m1", nil, freshen.Counters{TokensEmbedded: 2}))
	if c, _ := l.Counters(ctx); c.ChunksEmbedded != 2 || c.TokensEmbedded != 11 || c.TokensToday != 11 {
		t.Fatalf("counters = %+v, want 2 billed tokens added to 9", c)
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
