// Package embedded is freshen's zero-configuration vector index: records
// in a SQLite file in the data directory, searched by exact cosine
// similarity over vectors held in memory.
//
// Exact search is a deliberate choice for the embedded default: it is
// always right, needs no tuning, and a brute-force scan of 100k 512-d
// vectors takes tens of milliseconds. Larger corpora belong in pgvector or
// another production index. This package must never be the only copy of
// anything: everything in it can be rebuilt from the bucket and the
// ledger's embedding cache.
package embedded

import (
	"container/heap"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/internal/sqlitedb"
)

// Index implements freshen.Index.
type Index struct {
	db   *sql.DB
	path string
	dim  int

	mu sync.RWMutex
	// loadedGen is the write generation the in-memory copy reflects; a
	// write by another process bumps the stored one and triggers a reload.
	loadedGen int64
	loaded    bool
	entries   map[freshen.ChunkID]*entry
}

type entry struct {
	id     freshen.ChunkID
	key    string
	vector []float32 // unit length
	// meta is the chunk's metadata, for filtered search (nil when none).
	meta map[string]any
}

var (
	_ freshen.Index      = (*Index)(nil)
	_ freshen.Stamped    = (*Index)(nil)
	_ freshen.Scanner    = (*Index)(nil)
	_ freshen.RowScanner = (*Index)(nil)
)

const schema = `
CREATE TABLE IF NOT EXISTS records (
	id TEXT PRIMARY KEY, bucket TEXT NOT NULL, key TEXT NOT NULL, hash TEXT NOT NULL,
	ordinal INTEGER NOT NULL, text TEXT NOT NULL, headings TEXT NOT NULL, vector BLOB NOT NULL,
	metadata TEXT NOT NULL DEFAULT '{}'
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_key ON records (bucket, key);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (k, v) VALUES ('generation', 0);
CREATE TABLE IF NOT EXISTS stamp (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO stamp (k, v) VALUES ('identity', lower(hex(randomblob(16))));
`

// Open opens (creating if needed) the index stored at path, for vectors
// of dim values. An index that holds vectors of another length (made by
// another model) is refused with a clear error rather than mixed.
func Open(ctx context.Context, path string, dim int) (*Index, error) {
	if dim < 1 {
		return nil, fmt.Errorf("embedded: open %s: dimension %d: want at least 1", path, dim)
	}
	db, err := sqlitedb.Open(ctx, path, schema)
	if err != nil {
		return nil, fmt.Errorf("embedded: open %s: %w", path, err)
	}
	// Indexes made before chunks had metadata get the column.
	var hasMeta int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('records') WHERE name = 'metadata'`).Scan(&hasMeta); err != nil {
		db.Close()
		return nil, fmt.Errorf("embedded: open %s: %w", path, err)
	}
	if hasMeta == 0 {
		if _, err := db.ExecContext(ctx, `ALTER TABLE records ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}'`); err != nil {
			db.Close()
			return nil, fmt.Errorf("embedded: open %s: %w", path, err)
		}
	}
	var stored sql.NullInt64
	err = db.QueryRowContext(ctx, `SELECT length(vector) / 4 FROM records LIMIT 1`).Scan(&stored)
	if err != nil && err != sql.ErrNoRows {
		db.Close()
		return nil, fmt.Errorf("embedded: open %s: %w", path, err)
	}
	if stored.Valid && int(stored.Int64) != dim {
		db.Close()
		return nil, fmt.Errorf("embedded: open %s: %w: the index holds %d-dimensional vectors and the model makes %d; "+
			"use a new data-dir for the new model (or delete index.db to rebuild it)", path, freshen.ErrDimension, stored.Int64, dim)
	}
	return &Index{db: db, path: path, dim: dim}, nil
}

// Dim implements freshen.Index.
func (x *Index) Dim() int { return x.dim }

// Close implements freshen.Index.
func (x *Index) Close() error { return x.db.Close() }

// Upsert implements freshen.Index.
func (x *Index) Upsert(ctx context.Context, records []freshen.Record) error {
	if len(records) == 0 {
		return nil
	}
	for _, r := range records {
		if err := freshen.CheckDim(r.Vector, x.dim); err != nil {
			return fmt.Errorf("embedded: upsert %s: %w", r.ID, err)
		}
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	err := x.write(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT OR REPLACE INTO records (id, bucket, key, hash, ordinal, text, headings, vector, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, r := range records {
			h, _ := json.Marshal(r.Headings)
			m := []byte("{}")
			if len(r.Metadata) > 0 {
				m, _ = json.Marshal(r.Metadata)
			}
			if _, err := st.ExecContext(ctx, string(r.ID), r.Bucket, r.Key, string(r.Hash), r.Ordinal, r.Text, string(h), sqlitedb.EncodeVector(r.Vector), string(m)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("embedded: upsert: %w", err)
	}
	if x.loaded {
		for _, r := range records {
			x.entries[r.ID] = &entry{id: r.ID, key: r.Key, vector: unit(r.Vector), meta: roundTrip(r.Metadata)}
		}
	}
	return nil
}

// Delete implements freshen.Index.
func (x *Index) Delete(ctx context.Context, ids []freshen.ChunkID) error {
	if len(ids) == 0 {
		return nil
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	err := x.write(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `DELETE FROM records WHERE id = ?`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, id := range ids {
			if _, err := st.ExecContext(ctx, string(id)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("embedded: delete: %w", err)
	}
	if x.loaded {
		for _, id := range ids {
			delete(x.entries, id)
		}
	}
	return nil
}

// write runs fn in a transaction that also bumps the generation; if our
// in-memory copy was current before, it stays current after (the caller
// applies the same change to it), otherwise it is dropped.
func (x *Index) write(ctx context.Context, fn func(*sql.Tx) error) error {
	return sqlitedb.NoSpace(x.writeTx(ctx, fn), x.path)
}

func (x *Index) writeTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := x.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var gen int64
	if err := tx.QueryRowContext(ctx, `SELECT v FROM meta WHERE k = 'generation'`).Scan(&gen); err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE meta SET v = ? WHERE k = 'generation'`, gen+1); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if x.loaded && x.loadedGen == gen {
		x.loadedGen = gen + 1
	} else {
		x.loaded, x.entries = false, nil
	}
	return nil
}

// ensureLoaded (re)loads the vectors if another writer changed the file.
func (x *Index) ensureLoaded(ctx context.Context) error {
	var gen int64
	if err := x.db.QueryRowContext(ctx, `SELECT v FROM meta WHERE k = 'generation'`).Scan(&gen); err != nil {
		return err
	}
	x.mu.RLock()
	fresh := x.loaded && x.loadedGen == gen
	x.mu.RUnlock()
	if fresh {
		return nil
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	tx, err := x.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, `SELECT v FROM meta WHERE k = 'generation'`).Scan(&gen); err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, key, vector, metadata FROM records`)
	if err != nil {
		return err
	}
	defer rows.Close()
	entries := map[freshen.ChunkID]*entry{}
	for rows.Next() {
		var id, key, meta string
		var blob []byte
		if err := rows.Scan(&id, &key, &blob, &meta); err != nil {
			return err
		}
		entries[freshen.ChunkID(id)] = &entry{id: freshen.ChunkID(id), key: key, vector: unit(sqlitedb.DecodeVector(blob)), meta: decodeMeta(meta)}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	x.entries, x.loadedGen, x.loaded = entries, gen, true
	return nil
}

// Search implements freshen.Index: exact cosine top-k.
func (x *Index) Search(ctx context.Context, q freshen.Query) ([]freshen.Hit, error) {
	if err := freshen.CheckDim(q.Vector, x.dim); err != nil {
		return nil, fmt.Errorf("embedded: search: %w", err)
	}
	if q.K <= 0 {
		return nil, nil
	}
	if err := x.ensureLoaded(ctx); err != nil {
		return nil, fmt.Errorf("embedded: search: %w", err)
	}
	qv := unit(q.Vector)
	x.mu.RLock()
	h := &topK{}
	for _, e := range x.entries {
		if q.Prefix != "" && !strings.HasPrefix(e.key, q.Prefix) {
			continue
		}
		if len(q.Filters) > 0 && !freshen.MatchAll(q.Filters, e.meta) {
			continue
		}
		s := dot(qv, e.vector)
		if h.Len() < q.K {
			heap.Push(h, scored{e.id, s})
		} else if s > (*h)[0].score || (s == (*h)[0].score && e.id < (*h)[0].id) {
			(*h)[0] = scored{e.id, s}
			heap.Fix(h, 0)
		}
	}
	x.mu.RUnlock()
	best := make([]scored, h.Len())
	for i := len(best) - 1; i >= 0; i-- {
		best[i] = heap.Pop(h).(scored)
	}
	hits := make([]freshen.Hit, 0, len(best))
	for _, b := range best {
		r, err := x.record(ctx, b.id)
		if err != nil {
			return nil, fmt.Errorf("embedded: search: %w", err)
		}
		if r == nil {
			continue // deleted by another writer since we loaded
		}
		hits = append(hits, freshen.Hit{Record: *r, Score: b.score})
	}
	return hits, nil
}

func (x *Index) record(ctx context.Context, id freshen.ChunkID) (*freshen.Record, error) {
	var r freshen.Record
	var rid, hash, headings, meta string
	err := x.db.QueryRowContext(ctx, `SELECT id, bucket, key, hash, ordinal, text, headings, metadata FROM records WHERE id = ?`, string(id)).
		Scan(&rid, &r.Bucket, &r.Key, &hash, &r.Ordinal, &r.Text, &headings, &meta)
	if err == sql.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	r.ID, r.Hash = freshen.ChunkID(rid), freshen.ChunkHash(hash)
	_ = json.Unmarshal([]byte(headings), &r.Headings)
	r.Metadata = decodeMeta(meta)
	return &r, nil
}

// decodeMeta reads a stored metadata object (nil for none).
func decodeMeta(s string) map[string]any {
	if s == "" || s == "{}" {
		return nil
	}
	var m map[string]any
	if json.Unmarshal([]byte(s), &m) != nil {
		return nil
	}
	return m
}

// roundTrip is m as it reads back from storage (lists as []any), so that
// filters see the same values before and after a reload.
func roundTrip(m map[string]any) map[string]any {
	if len(m) == 0 {
		return nil
	}
	b, _ := json.Marshal(m)
	return decodeMeta(string(b))
}

// Stamp implements freshen.Stamped. An index.db that was deleted or
// truncated comes back with a new identity.
func (x *Index) Stamp(ctx context.Context) (self, partner string, err error) {
	err = x.db.QueryRowContext(ctx, `SELECT (SELECT v FROM stamp WHERE k = 'identity'), coalesce((SELECT v FROM stamp WHERE k = 'partner'), '')`).Scan(&self, &partner)
	if err != nil {
		return "", "", fmt.Errorf("embedded: stamp: %w", err)
	}
	return self, partner, nil
}

// Pair implements freshen.Stamped.
func (x *Index) Pair(ctx context.Context, partner string) error {
	if _, err := x.db.ExecContext(ctx, `INSERT INTO stamp (k, v) VALUES ('partner', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v`, partner); err != nil {
		return fmt.Errorf("embedded: pair: %w", err)
	}
	return nil
}

// Scan implements freshen.Scanner: every record in ID order, vectors
// included. It is for recovery, verification and export, not the hot path.
func (x *Index) Scan(ctx context.Context, fn func(freshen.Record) error) error {
	rows, err := x.db.QueryContext(ctx, `SELECT id, bucket, key, hash, ordinal, text, headings, vector FROM records ORDER BY id`)
	if err != nil {
		return fmt.Errorf("embedded: scan: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r freshen.Record
		var id, hash, headings string
		var blob []byte
		if err := rows.Scan(&id, &r.Bucket, &r.Key, &hash, &r.Ordinal, &r.Text, &headings, &blob); err != nil {
			return err
		}
		r.ID, r.Hash, r.Vector = freshen.ChunkID(id), freshen.ChunkHash(hash), sqlitedb.DecodeVector(blob)
		_ = json.Unmarshal([]byte(headings), &r.Headings)
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Rows implements freshen.RowScanner: a bucket's rows in (key, id) byte
// order, through the (bucket, key) index, without vectors. The embedded
// index keeps no object versions.
func (x *Index) Rows(ctx context.Context, bucket string, fn func(freshen.Row) error) error {
	rows, err := x.db.QueryContext(ctx, `SELECT id, key, hash, text FROM records WHERE bucket = ? ORDER BY key, id`, bucket)
	if err != nil {
		return fmt.Errorf("embedded: rows: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r := freshen.Row{Bucket: bucket}
		var id, hash string
		if err := rows.Scan(&id, &r.Key, &hash, &r.Text); err != nil {
			return err
		}
		r.ID, r.Hash = freshen.ChunkID(id), freshen.ChunkHash(hash)
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Count implements freshen.Scanner.
func (x *Index) Count(ctx context.Context) (int, error) {
	var n int
	err := x.db.QueryRowContext(ctx, `SELECT count(*) FROM records`).Scan(&n)
	return n, err
}

type scored struct {
	id    freshen.ChunkID
	score float32
}

// topK is a min-heap on score (ties: larger ID first out), so the root is
// the weakest of the best k.
type topK []scored

func (h topK) Len() int { return len(h) }
func (h topK) Less(i, j int) bool {
	if h[i].score != h[j].score {
		return h[i].score < h[j].score
	}
	return h[i].id > h[j].id
}
func (h topK) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *topK) Push(v any)   { *h = append(*h, v.(scored)) }
func (h *topK) Pop() any {
	old := *h
	v := old[len(old)-1]
	*h = old[:len(old)-1]
	return v
}

func dot(a, b []float32) float32 {
	var s float32
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func unit(v []float32) []float32 {
	var ss float64
	for _, f := range v {
		ss += float64(f) * float64(f)
	}
	out := make([]float32, len(v))
	if ss == 0 {
		return out
	}
	inv := 1 / math.Sqrt(ss)
	for i, f := range v {
		out[i] = float32(float64(f) * inv)
	}
	return out
}

var _ freshen.Dropper = (*Index)(nil)

// Drop implements freshen.Dropper: it deletes every record (the file
// itself goes with its generation's directory).
func (x *Index) Drop(ctx context.Context) error {
	return x.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM records`)
		return err
	})
}
