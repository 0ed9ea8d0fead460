package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/internal/sqlitedb"
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

// TestShared: two handles on one file, as `freshen sync` and a
// `freshen run` (or two processes) would hold.
func TestShared(t *testing.T) {
	ledgertest.RunShared(t, func(t *testing.T) (freshen.Ledger, freshen.Ledger) {
		path := filepath.Join(t.TempDir(), "ledger.db")
		var ls [2]freshen.Ledger
		for i := range ls {
			l, err := Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			ls[i] = l
		}
		return ls[0], ls[1]
	})
}

func change(key string, at time.Time) freshen.Change {
	return freshen.Change{Bucket: "b", Key: key, Kind: freshen.ChangeUpsert, EventTime: at, Origin: "test"}
}

// TestGoneKeyLeavesNothing: once a key is processed as gone, no row in
// any table mentions it (event sequencers used to stay forever).
func TestGoneKeyLeavesNothing(t *testing.T) {
	ctx := context.Background()
	l, b := setup(t)
	c := change("k", b.now)
	c.Sequencer = "0A1"
	mustEnqueue(t, l, []freshen.Change{c})
	ls, err := l.Lease(ctx, freshen.LeaseParams{Owner: "w", Max: 1, TTL: time.Minute})
	must(t, err)
	must(t, l.BeginIntent(ctx, ls[0], freshen.Intent{Deletes: []freshen.ChunkID{"x"}}))
	must(t, l.Complete(ctx, ls[0], freshen.Commit{Gone: true}))
	rows, err := l.db.QueryContext(ctx, `SELECT m.name FROM sqlite_master m WHERE m.type = 'table'
		AND EXISTS (SELECT 1 FROM pragma_table_info(m.name) p WHERE p.name = 'key')`)
	must(t, err)
	var tables []string
	for rows.Next() {
		var name string
		must(t, rows.Scan(&name))
		tables = append(tables, name)
	}
	rows.Close()
	if len(tables) < 4 {
		t.Fatalf("found only tables %v", tables)
	}
	for _, name := range tables {
		var n int
		must(t, l.db.QueryRowContext(ctx, `SELECT count(*) FROM "`+name+`" WHERE key = 'k'`).Scan(&n))
		if n != 0 {
			t.Errorf("table %s still holds %d row(s) of a gone key", name, n)
		}
	}
}

// TestReleaseAllFreesCrashedLeases: a sole owner restarting after a
// crash frees what its predecessor held, and the predecessor's leases stay
// fenced off.
func TestReleaseAllFreesCrashedLeases(t *testing.T) {
	ctx := context.Background()
	l, b := setup(t)
	mustEnqueue(t, l, []freshen.Change{change("a", b.now), change("b", b.now)})
	old, err := l.Lease(ctx, freshen.LeaseParams{Owner: "crashed", Max: 10, TTL: time.Hour})
	must(t, err)
	must(t, l.ReleaseAll(ctx))
	all, err := l.Lease(ctx, freshen.LeaseParams{Owner: "new", Max: 10, TTL: time.Hour})
	must(t, err)
	if len(all) != 2 {
		t.Fatalf("after ReleaseAll: %d leases", len(all))
	}
	if err := l.Complete(ctx, old[0], freshen.Commit{Gone: true}); !errors.Is(err, freshen.ErrLeaseLost) {
		t.Fatalf("crashed run's lease: %v", err)
	}
}

// TestMigratesOldLedger opens a ledger written before leases had tokens.
func TestMigratesOldLedger(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.db")
	db, err := sqlitedb.Open(ctx, path, `CREATE TABLE queue (
		bucket TEXT NOT NULL, key TEXT NOT NULL,
		first_seen INTEGER NOT NULL, generation INTEGER NOT NULL,
		attempts INTEGER NOT NULL DEFAULT 0, not_before INTEGER NOT NULL DEFAULT 0,
		lease_owner TEXT NOT NULL DEFAULT '', lease_until INTEGER NOT NULL DEFAULT 0,
		origin TEXT NOT NULL DEFAULT '', last_error TEXT NOT NULL DEFAULT '',
		PRIMARY KEY (bucket, key)) WITHOUT ROWID;
		CREATE TABLE sequencers (bucket TEXT NOT NULL, key TEXT NOT NULL, sequencer TEXT NOT NULL, PRIMARY KEY (bucket, key)) WITHOUT ROWID;
		INSERT INTO queue (bucket, key, first_seen, generation, lease_owner, lease_until) VALUES ('b', 'k', 1, 1, 'worker-1', 1);
		INSERT INTO sequencers VALUES ('b', 'k', '01');`)
	must(t, err)
	db.Close()
	l, err := Open(ctx, path)
	must(t, err)
	defer l.Close()
	ls, err := l.Lease(ctx, freshen.LeaseParams{Owner: "w", Max: 1, TTL: time.Minute})
	must(t, err)
	if len(ls) != 1 || ls[0].Token == 0 {
		t.Fatalf("leases after migration: %+v", ls)
	}
	must(t, l.Complete(ctx, ls[0], freshen.Commit{Gone: true}))
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
