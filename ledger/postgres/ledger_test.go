package postgres_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/internal/testenv"
	"github.com/freshen-io/freshen/ledger/ledgertest"
	"github.com/freshen-io/freshen/ledger/postgres"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopShared()
	os.Exit(code)
}

// open opens a ledger in a fresh schema of the package's server.
func open(t *testing.T, schema string, now func() time.Time) *postgres.Ledger {
	t.Helper()
	l, err := postgres.Open(context.Background(), postgres.Config{DSN: testenv.SharedPostgres(t).DSN, Schema: schema, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestConformance(t *testing.T) {
	ledgertest.Run(t, func(t *testing.T, now func() time.Time) freshen.Ledger {
		return open(t, testenv.UniqueSchema("ledger"), now)
	})
}

func TestShared(t *testing.T) {
	ledgertest.RunShared(t, func(t *testing.T) (freshen.Ledger, freshen.Ledger) {
		schema := testenv.UniqueSchema("shared")
		return open(t, schema, time.Now), open(t, schema, time.Now)
	})
}

// TestChangesWakeOtherProcesses: an enqueue through one handle reaches
// another's Changes channel at once (LISTEN/NOTIFY), and a dropped
// listening connection is reopened.
func TestChangesWakeOtherProcesses(t *testing.T) {
	schema := testenv.UniqueSchema("notify")
	a, b := open(t, schema, time.Now), open(t, schema, time.Now)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := a.Changes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wake := func(what string) time.Duration {
		t.Helper()
		start := time.Now()
		if _, err := b.Enqueue(ctx, []freshen.Change{{Bucket: "b", Key: what, Kind: freshen.ChangeUpsert, Origin: "webhook", EventTime: time.Now()}}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no notification within 5s", what)
		}
		return time.Since(start)
	}
	t.Logf("woken %s after the enqueue", wake("first"))
	// Kill the listening session: the next notification still arrives.
	if _, err := b.Pool().Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	for len(ch) > 0 {
		<-ch // the reconnect's own signal
	}
	wake("after a reconnect")
	cancel()
	for range ch { // closed once ctx is done
	}
}

// TestCommitsReachOtherProcesses: a commit through one handle delivers
// its key to another's Commits channel (read-your-writes waiters in
// every process wake at the commit), and only once it is visible.
func TestCommitsReachOtherProcesses(t *testing.T) {
	schema := testenv.UniqueSchema("commits")
	a, b := open(t, schema, time.Now), open(t, schema, time.Now)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := a.Commits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	key := "guide/100% sure+ü.md"
	if _, err := b.Enqueue(ctx, []freshen.Change{{Bucket: "b", Key: key, Kind: freshen.ChangeUpsert, Origin: "webhook", EventTime: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	ls, err := b.Lease(ctx, freshen.LeaseParams{Owner: "w", Max: 1, TTL: time.Minute})
	if err != nil || len(ls) != 1 {
		t.Fatalf("lease: %v %v", ls, err)
	}
	select {
	case k := <-ch:
		t.Fatalf("%q announced before any commit", k)
	case <-time.After(200 * time.Millisecond):
	}
	if err := b.Complete(ctx, ls[0], freshen.Commit{Object: freshen.ObjectRecord{Bucket: "b", Key: key, ETag: "e1", State: freshen.StateIndexed}}); err != nil {
		t.Fatal(err)
	}
	select {
	case k := <-ch:
		if k != key {
			t.Fatalf("announced %q, want %q", k, key)
		}
		if o, err := a.Object(ctx, "b", key); err != nil || o.ETag != "e1" {
			t.Fatalf("announced before visible: %+v %v", o, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no commit announced within 5s")
	}
	cancel()
	for range ch { // closed once ctx is done
	}
}

// TestOneLeaderAtATime: one process leads a job; another takes it over
// once the leader releases it or its connection dies.
func TestOneLeaderAtATime(t *testing.T) {
	ctx := context.Background()
	schema := testenv.UniqueSchema("lead")
	a, b := open(t, schema, time.Now), open(t, schema, time.Now)
	la, ok, err := a.TryLead(ctx, "reconcile docs")
	if err != nil || !ok {
		t.Fatalf("first TryLead: %v %v", ok, err)
	}
	if _, ok, _ := b.TryLead(ctx, "reconcile docs"); ok {
		t.Fatal("two leaders at once")
	}
	if lo, ok, _ := b.TryLead(ctx, "reconcile other"); !ok {
		t.Fatal("another job is free")
	} else {
		lo.Release()
	}
	la.Release()
	lb, ok, err := b.TryLead(ctx, "reconcile docs")
	if err != nil || !ok {
		t.Fatalf("after a release: %v %v", ok, err)
	}
	// The leader's session dies (a killed process): the lock is free.
	if _, err := a.Pool().Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	if err := lb.Check(ctx); err == nil {
		t.Fatal("Check after the session died: nil")
	}
	// The server frees the lock as the killed backend exits: a moment.
	var la2 freshen.Lead
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		la2, ok, err = a.TryLead(ctx, "reconcile docs")
		if err != nil || ok || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || !ok {
		t.Fatalf("after the leader died: %v %v", ok, err)
	}
	if err := la2.Check(ctx); err != nil {
		t.Fatal(err)
	}
	la2.Release()
}

func TestProcesses(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	l := open(t, testenv.UniqueSchema("procs"), func() time.Time { return now })
	for _, p := range []freshen.Process{{Owner: "a", Host: "h1", PID: 1, Started: now, Leads: []string{"reconcile docs"}}, {Owner: "b", Host: "h2", PID: 2, Started: now}} {
		if err := l.Heartbeat(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(time.Minute)
	if err := l.Heartbeat(ctx, freshen.Process{Owner: "b", Host: "h2", PID: 2, Started: now.Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	ps, err := l.Processes(ctx, now.Add(-30*time.Second))
	if err != nil || len(ps) != 1 || ps[0].Owner != "b" || len(ps[0].Leads) != 0 {
		t.Fatalf("recent processes: %+v %v", ps, err)
	}
	ps, _ = l.Processes(ctx, now.Add(-time.Hour))
	if len(ps) != 2 || ps[0].Leads[0] != "reconcile docs" {
		t.Fatalf("all processes: %+v", ps)
	}
}
