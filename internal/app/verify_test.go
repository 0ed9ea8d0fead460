package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/internal/config"
	"github.com/freshen-io/freshen/internal/reconcile"
	"github.com/freshen-io/freshen/internal/sqlitedb"
	"github.com/freshen-io/freshen/internal/testenv"
	"github.com/jackc/pgx/v5"
)

// tamperer changes an index's store behind freshen's back, as another
// program or a person with SQL access could.
type tamperer interface {
	deleteRow(t *testing.T, id freshen.ChunkID)
	insertForeign(t *testing.T, id freshen.ChunkID, key string, like freshen.ChunkID)
	corruptText(t *testing.T, id freshen.ChunkID)
}

type sqliteTamper struct{ db *sql.DB }

func (s sqliteTamper) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	if _, err := s.db.Exec(q, args...); err != nil {
		t.Fatal(err)
	}
	// The embedded index reloads when the stored generation moves.
	if _, err := s.db.Exec(`UPDATE meta SET v = v + 1 WHERE k = 'generation'`); err != nil {
		t.Fatal(err)
	}
}
func (s sqliteTamper) deleteRow(t *testing.T, id freshen.ChunkID) {
	s.exec(t, `DELETE FROM records WHERE id = ?`, string(id))
}
func (s sqliteTamper) insertForeign(t *testing.T, id freshen.ChunkID, key string, like freshen.ChunkID) {
	s.exec(t, `INSERT INTO records (id, bucket, key, hash, ordinal, text, headings, vector)
		SELECT ?, bucket, ?, hash, ordinal, text, headings, vector FROM records WHERE id = ?`, string(id), key, string(like))
}
func (s sqliteTamper) corruptText(t *testing.T, id freshen.ChunkID) {
	s.exec(t, `UPDATE records SET text = text || ' (edited by hand)' WHERE id = ?`, string(id))
}

type pgTamper struct {
	conn  *pgx.Conn
	table string
}

func (p pgTamper) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	if _, err := p.conn.Exec(context.Background(), q, args...); err != nil {
		t.Fatal(err)
	}
}
func (p pgTamper) deleteRow(t *testing.T, id freshen.ChunkID) {
	p.exec(t, `DELETE FROM `+p.table+` WHERE chunk_id = $1`, string(id))
}
func (p pgTamper) insertForeign(t *testing.T, id freshen.ChunkID, key string, like freshen.ChunkID) {
	p.exec(t, `INSERT INTO `+p.table+` (chunk_id, bucket, key, chunk_hash, ordinal, headings, text, metadata, embedding, version, updated_at)
		SELECT $1, bucket, $2, chunk_hash, ordinal, headings, text, metadata, embedding, version, updated_at FROM `+p.table+` WHERE chunk_id = $3`,
		string(id), key, string(like))
}
func (p pgTamper) corruptText(t *testing.T, id freshen.ChunkID) {
	p.exec(t, `UPDATE `+p.table+` SET text = text || ' (edited by hand)' WHERE chunk_id = $1`, string(id))
}

func TestVerifyEmbedded(t *testing.T) {
	b := newStateBundle(t)
	testVerify(t, b, func(t *testing.T, a *App) tamperer {
		db, err := sqlitedb.Open(context.Background(), filepath.Join(b.cfg.DataDir, "index.db"), "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return sqliteTamper{db}
	})
}

func TestVerifyPgvector(t *testing.T) {
	b := newStateBundle(t)
	b.cfg.Index.Type, b.cfg.Index.DSN = "pgvector", testenvDSN(t)
	b.cfg.Index.Table = testenv.UniqueTable("verify")
	testVerify(t, b, func(t *testing.T, a *App) tamperer {
		conn, err := pgx.Connect(context.Background(), string(b.cfg.Index.DSN))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		return pgTamper{conn, b.cfg.Index.Table}
	})
}

func testenvDSN(t *testing.T) config.DSN { return config.DSN(testenv.SharedPGlite(t).DSN) }

// testVerify: on an exact index verify reports nothing; after rows are
// deleted, foreign rows inserted and a row's text changed in the store, it
// reports exactly those; the repair fixes them with no embedding, and a
// second verify reports nothing.
func testVerify(t *testing.T, b *stateBundle, tamper func(*testing.T, *App) tamperer) {
	ctx := context.Background()
	a := b.open(t)
	defer a.Close()
	b.sync(t, a)
	rep, err := a.Verify(ctx, false, false)
	if err != nil {
		t.Fatal(err)
	}
	sum, _ := a.Ledger.Summary(ctx)
	if rep.Drifts() != 0 || rep.ChunksChecked != int64(sum.Chunks) || rep.RowsChecked != int64(sum.Chunks) || rep.KeysChecked != 6 {
		t.Fatalf("verify of an exact index: %+v (ledger: %d chunks)", rep, sum.Chunks)
	}
	var ids []freshen.ChunkID
	for i := 0; i < 6; i++ {
		st, err := a.Ledger.State(ctx, "docs", fmt.Sprintf("doc-%d.md", i))
		if err != nil || len(st.Chunks) == 0 {
			t.Fatalf("doc-%d.md: %+v %v", i, st, err)
		}
		ids = append(ids, st.Chunks[0].ID)
	}
	tp := tamper(t, a)
	tp.deleteRow(t, ids[0])
	tp.deleteRow(t, ids[1])
	tp.insertForeign(t, "stray-1", "not-in-the-bucket.md", ids[2])
	tp.insertForeign(t, "stray-2", "doc-3.md", ids[3]) // a chunk doc-3.md does not have
	tp.insertForeign(t, "stray-3", "zzz/last.md", ids[2])
	tp.corruptText(t, ids[4])
	rep, err = a.Verify(ctx, false, false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Missing != 2 || rep.Orphans != 3 || rep.Mismatched != 1 {
		t.Fatalf("after tampering: %d missing, %d orphans, %d mismatched; want 2, 3, 1 (%+v)", rep.Missing, rep.Orphans, rep.Mismatched, rep.Examples)
	}
	before, _ := a.Ledger.Counters(ctx)
	texts := b.emb.Texts.Load()
	rep, err = a.Verify(ctx, true, false)
	if err != nil || rep.Repaired != 6 {
		t.Fatalf("repair: %+v, %v; want 6 rows repaired", rep, err)
	}
	if _, err := a.Pipeline(nil).Drain(ctx); err != nil {
		t.Fatal(err)
	}
	after, _ := a.Ledger.Counters(ctx)
	if after.TokensEmbedded != before.TokensEmbedded || b.emb.Texts.Load() != texts {
		t.Fatalf("the repair embedded %d tokens (%d texts); want none", after.TokensEmbedded-before.TokensEmbedded, b.emb.Texts.Load()-texts)
	}
	rep, err = a.Verify(ctx, false, false)
	if err != nil || rep.Drifts() != 0 {
		t.Fatalf("verify after the repair: %+v, %v", rep, err)
	}
	b.exact(t, a, 6)
}

// TestVerifyRepairKeepsTheMassDeleteRule: a repair that would delete most
// of the index deletes nothing without permission.
func TestVerifyRepairKeepsTheMassDeleteRule(t *testing.T) {
	b := newStateBundle(t)
	b.cfg.MassDelete.MinObjects = 1
	a := b.open(t)
	defer a.Close()
	b.sync(t, a)
	db, err := sqlitedb.Open(context.Background(), filepath.Join(b.cfg.DataDir, "index.db"), "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tp := sqliteTamper{db}
	rows := 0
	a.Index.(freshen.Scanner).Scan(context.Background(), func(r freshen.Record) error {
		rows++
		return nil
	})
	// Another program's rows, as many as freshen's.
	for i := 0; i < rows; i++ {
		tp.exec(t, `INSERT INTO records (id, bucket, key, hash, ordinal, text, headings, vector)
			SELECT ?, bucket, 'elsewhere/'||key, hash, ordinal, text, headings, vector FROM records LIMIT 1`, fmt.Sprintf("foreign-%d", i))
	}
	_, err = a.Verify(context.Background(), true, false)
	if !errors.Is(err, reconcile.ErrMassDelete) {
		t.Fatalf("a repair deleting half the index: %v, want the mass-delete refusal", err)
	}
	if rep, _ := a.Verify(context.Background(), false, false); rep.Orphans != int64(rows) {
		t.Fatalf("after the refusal: %d orphans, want all %d still there", rep.Orphans, rows)
	}
	if rep, err := a.Verify(context.Background(), true, true); err != nil || rep.Repaired != int64(rows) {
		t.Fatalf("with permission: %+v %v", rep, err)
	}
}
