package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/ledger/ledgertest"
)

type testBundle struct {
	path string
	now  time.Time
}

func setup(t *testing.T) (*Ledger, *testBundle) {
	t.Helper()
	b := &testBundle{path: filepath.Join(t.TempDir(), "ledger.db"), now: time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)}
	l, err := Open(context.Background(), b.path)
	if err != nil {
		t.Fatal(err)
	}
	l.now = func() time.Time { return b.now }
	t.Cleanup(func() { l.Close() })
	return l, b
}

func TestConformance(t *testing.T) {
	ledgertest.Run(t, func(t *testing.T, now func() time.Time) freshen.Ledger {
		l, err := Open(context.Background(), filepath.Join(t.TempDir(), "ledger.db"))
		if err != nil {
			t.Fatal(err)
		}
		l.now = now
		t.Cleanup(func() { l.Close() })
		return l
	})
}

func change(key string, at time.Time) freshen.Change {
	return freshen.Change{Bucket: "b", Key: key, Kind: freshen.ChangeUpsert, EventTime: at, Origin: "test"}
}

func TestSequencerOnlyRises(t *testing.T) {
	ctx := context.Background()
	l, b := setup(t)
	for _, s := range []string{"0A1", "0B", "09FF"} {
		c := change("k", b.now)
		c.Sequencer = s
		mustEnqueue(t, l, []freshen.Change{c})
	}
	if s, _ := l.Sequencer(ctx, "b", "k"); s != "0B" {
		t.Fatalf("sequencer = %q, want 0B", s)
	}
}

func TestReopenKeepsState(t *testing.T) {
	ctx := context.Background()
	l, b := setup(t)
	mustEnqueue(t, l, []freshen.Change{change("k", b.now)})
	l.Close()
	l2, err := Open(ctx, b.path)
	must(t, err)
	defer l2.Close()
	if n, _, _ := l2.Backlog(ctx); n != 1 {
		t.Fatalf("backlog after reopen = %d", n)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustEnqueue(t *testing.T, l *Ledger, changes []freshen.Change) int {
	t.Helper()
	n, err := l.Enqueue(context.Background(), changes)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
