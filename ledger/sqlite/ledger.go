package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/internal/sqlitedb"
	"github.com/freshen-io/freshen/ledger/internal/codec"
)

// Ledger implements freshen.Ledger on a SQLite file.
type Ledger struct {
	db   *sql.DB
	path string
	now  func() time.Time
}

var (
	_ freshen.Ledger  = (*Ledger)(nil)
	_ freshen.Stamped = (*Ledger)(nil)
)

const schema = `
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS objects (
	bucket TEXT NOT NULL, key TEXT NOT NULL,
	etag TEXT NOT NULL, version_id TEXT NOT NULL, size INTEGER NOT NULL,
	last_modified INTEGER NOT NULL,
	state TEXT NOT NULL, reason TEXT NOT NULL, chunks INTEGER NOT NULL,
	chunker TEXT NOT NULL, model TEXT NOT NULL, attempts INTEGER NOT NULL,
	updated_at INTEGER NOT NULL, meta TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (bucket, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS chunks (
	bucket TEXT NOT NULL, key TEXT NOT NULL, id TEXT NOT NULL,
	hash TEXT NOT NULL, ordinal INTEGER NOT NULL,
	PRIMARY KEY (bucket, key, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS queue (
	bucket TEXT NOT NULL, key TEXT NOT NULL,
	first_seen INTEGER NOT NULL, generation INTEGER NOT NULL,
	attempts INTEGER NOT NULL DEFAULT 0, not_before INTEGER NOT NULL DEFAULT 0,
	lease_owner TEXT NOT NULL DEFAULT '', lease_until INTEGER NOT NULL DEFAULT 0,
	origin TEXT NOT NULL DEFAULT '', last_error TEXT NOT NULL DEFAULT '',
	lease_token INTEGER NOT NULL DEFAULT 0,
	vanished INTEGER NOT NULL DEFAULT 0,
	lane INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (bucket, key)
) WITHOUT ROWID;
-- Lease walks the queue in first_seen order and stops after max ready
-- rows; an index led by not_before made it read and sort the whole queue
-- on every lease (quadratic under a flood of events).
DROP INDEX IF EXISTS queue_ready;
DROP INDEX IF EXISTS queue_order;
CREATE TABLE IF NOT EXISTS intents (
	bucket TEXT NOT NULL, key TEXT NOT NULL, id TEXT NOT NULL, op TEXT NOT NULL,
	PRIMARY KEY (bucket, key, id, op)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS embeddings (
	model TEXT NOT NULL, hash TEXT NOT NULL, vector BLOB NOT NULL,
	PRIMARY KEY (model, hash)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
-- This ledger's identity, made once; see Stamp.
INSERT OR IGNORE INTO meta (k, v) VALUES ('identity', lower(hex(randomblob(16))));
-- The last fencing token handed out; tokens only grow.
INSERT OR IGNORE INTO counters (name, value) VALUES ('lease_token', 0);
-- Written by versions before 0.2 and read by nothing.
DROP TABLE IF EXISTS sequencers;
`

// migrate brings a ledger written by an earlier version up to schema.
func migrate(ctx context.Context, db *sql.DB) error {
	for _, col := range []string{"lease_token", "vanished", "lane"} {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('queue') WHERE name = ?`, col).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			if _, err := db.ExecContext(ctx, `ALTER TABLE queue ADD COLUMN `+col+` INTEGER NOT NULL DEFAULT 0`); err != nil {
				return err
			}
		}
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('objects') WHERE name = 'meta'`).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		if _, err := db.ExecContext(ctx, `ALTER TABLE objects ADD COLUMN meta TEXT NOT NULL DEFAULT ''`); err != nil {
			return err
		}
	}
	// Fresh changes (lane 0) are leased before backlog (lane 1), each
	// lane in first_seen order; the index matches the lease query, which
	// stops after max ready rows.
	_, err := db.ExecContext(ctx, `CREATE INDEX IF NOT EXISTS queue_lanes ON queue (lane, first_seen, bucket, key)`)
	return err
}

// Open opens (creating if needed) the ledger at path.
func Open(ctx context.Context, path string) (*Ledger, error) {
	db, err := sqlitedb.Open(ctx, path, schema)
	if err == nil {
		if err = migrate(ctx, db); err != nil {
			db.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return &Ledger{db: db, path: path, now: time.Now}, nil
}

// Close closes the database.
func (l *Ledger) Close() error { return l.db.Close() }

func (l *Ledger) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return sqlitedb.NoSpace(err, l.path)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return sqlitedb.NoSpace(err, l.path)
	}
	return sqlitedb.NoSpace(tx.Commit(), l.path)
}

// Enqueue implements freshen.Queue. Event sequencers are not kept:
// events are hints, the worker reads the key's current state, and some
// stores (versitygw) restart their sequencers at 1, so an "older"
// sequencer can announce a newer write.
func (l *Ledger) Enqueue(ctx context.Context, changes []freshen.Change) (int, error) {
	if len(changes) == 0 {
		return 0, nil
	}
	now := l.now()
	added := 0
	err := l.tx(ctx, func(tx *sql.Tx) error {
		added = 0
		up, err := tx.PrepareContext(ctx, `INSERT INTO queue (bucket, key, first_seen, generation, origin, vanished, lane)
			VALUES (?, ?, ?, 1, ?, ?, ?)
			ON CONFLICT (bucket, key) DO UPDATE SET
				first_seen = min(first_seen, excluded.first_seen),
				generation = generation + 1,
				not_before = min(not_before, ?),
				vanished = vanished AND excluded.vanished,
				lane = min(lane, excluded.lane)
			RETURNING generation`)
		if err != nil {
			return err
		}
		defer up.Close()
		for _, c := range changes {
			t := c.EventTime
			if t.IsZero() || t.After(now) {
				t = now
			}
			var gen int64
			if err := up.QueryRowContext(ctx, c.Bucket, c.Key, codec.Nanos(t), c.Origin, c.Kind == freshen.ChangeVanished, codec.Lane(c), codec.Nanos(now)).Scan(&gen); err != nil {
				return fmt.Errorf("sqlite: enqueue %s: %w", c.Key, err)
			}
			if gen == 1 {
				added++
			}
		}
		return nil
	})
	return added, err
}

// Lease implements freshen.Queue: the oldest ready keys whose lease is
// free or expired, each with a new fencing token.
func (l *Ledger) Lease(ctx context.Context, p freshen.LeaseParams) ([]freshen.Lease, error) {
	now := l.now()
	until := now.Add(p.TTL)
	maxLane := 1
	if p.FreshOnly {
		maxLane = 0
	}
	var out []freshen.Lease
	err := l.tx(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, `SELECT bucket, key, generation, first_seen, attempts, origin, vanished, lane = 0 FROM queue
			WHERE not_before <= ? AND lease_until <= ? AND lane <= ? ORDER BY lane, first_seen, bucket, key LIMIT ?`, codec.Nanos(now), codec.Nanos(now), maxLane, p.Max)
		if err != nil {
			return err
		}
		for rows.Next() {
			var ls freshen.Lease
			var first int64
			if err := rows.Scan(&ls.Bucket, &ls.Key, &ls.Generation, &first, &ls.Attempts, &ls.Origin, &ls.Vanished, &ls.Fresh); err != nil {
				rows.Close()
				return err
			}
			ls.FirstSeen = codec.FromNanos(first)
			out = append(out, ls)
		}
		rows.Close()
		if err := rows.Err(); err != nil || len(out) == 0 {
			return err
		}
		var last int64
		if err := tx.QueryRowContext(ctx, `UPDATE counters SET value = value + ? WHERE name = 'lease_token' RETURNING value`,
			len(out)).Scan(&last); err != nil {
			return err
		}
		for i := range out {
			out[i].Token = last - int64(len(out)-1-i)
			if _, err := tx.ExecContext(ctx, `UPDATE queue SET lease_owner = ?, lease_until = ?, lease_token = ? WHERE bucket = ? AND key = ?`,
				p.Owner, codec.Nanos(until), out[i].Token, out[i].Bucket, out[i].Key); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: lease: %w", err)
	}
	for i := range out {
		out[i].Owner, out[i].Expires = p.Owner, until
	}
	return out, nil
}

// checkLease fails with ErrLeaseLost unless ls is the key's current lease.
func checkLease(ctx context.Context, tx *sql.Tx, ls freshen.Lease) (generation int64, err error) {
	var token int64
	err = tx.QueryRowContext(ctx, `SELECT generation, lease_token FROM queue WHERE bucket = ? AND key = ?`, ls.Bucket, ls.Key).Scan(&generation, &token)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && (token != ls.Token || token == 0)) {
		return 0, freshen.ErrLeaseLost
	}
	return generation, err
}

// Extend implements freshen.Queue.
func (l *Ledger) Extend(ctx context.Context, ls *freshen.Lease, ttl time.Duration) error {
	until := l.now().Add(ttl)
	res, err := l.db.ExecContext(ctx, `UPDATE queue SET lease_until = ? WHERE bucket = ? AND key = ? AND lease_token = ? AND lease_token != 0`,
		codec.Nanos(until), ls.Bucket, ls.Key, ls.Token)
	if err := l.fenced("extend", ls.Key, res, err); err != nil {
		return err
	}
	ls.Expires = until
	return nil
}

// fenced turns the result of an UPDATE guarded by a lease token into
// ErrLeaseLost when it matched no row.
func (l *Ledger) fenced(op, key string, res sql.Result, err error) error {
	var n int64
	if err == nil {
		n, err = res.RowsAffected()
	}
	if err != nil {
		return fmt.Errorf("sqlite: %s %s: %w", op, key, sqlitedb.NoSpace(err, l.path))
	}
	if n == 0 {
		return freshen.ErrLeaseLost
	}
	return nil
}

// Complete implements freshen.Catalog.
func (l *Ledger) Complete(ctx context.Context, ls freshen.Lease, c freshen.Commit) error {
	now := l.now()
	err := l.tx(ctx, func(tx *sql.Tx) error {
		gen, err := checkLease(ctx, tx, ls)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM chunks WHERE bucket = ? AND key = ?`, ls.Bucket, ls.Key); err != nil {
			return err
		}
		if c.Gone {
			if _, err := tx.ExecContext(ctx, `DELETE FROM objects WHERE bucket = ? AND key = ?`, ls.Bucket, ls.Key); err != nil {
				return err
			}
		} else {
			if err := putObject(ctx, tx, c.Object, len(c.Chunks), now); err != nil {
				return err
			}
			ins, err := tx.PrepareContext(ctx, `INSERT INTO chunks (bucket, key, id, hash, ordinal) VALUES (?, ?, ?, ?, ?)`)
			if err != nil {
				return err
			}
			defer ins.Close()
			for _, ch := range c.Chunks {
				if _, err := ins.ExecContext(ctx, ls.Bucket, ls.Key, string(ch.ID), string(ch.Hash), ch.Ordinal); err != nil {
					return fmt.Errorf("chunk %s: %w", ch.ID, err)
				}
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM intents WHERE bucket = ? AND key = ?`, ls.Bucket, ls.Key); err != nil {
			return err
		}
		if err := addCounters(ctx, tx, c.Work, now); err != nil {
			return err
		}
		if gen == ls.Generation {
			_, err = tx.ExecContext(ctx, `DELETE FROM queue WHERE bucket = ? AND key = ?`, ls.Bucket, ls.Key)
		} else {
			// A change arrived while we worked: keep the key queued, as of now.
			_, err = tx.ExecContext(ctx, `UPDATE queue SET lease_owner = '', lease_until = 0, lease_token = 0, attempts = 0, not_before = 0,
				first_seen = max(first_seen, ?) WHERE bucket = ? AND key = ?`, codec.Nanos(now), ls.Bucket, ls.Key)
		}
		return err
	})
	if err != nil && !errors.Is(err, freshen.ErrLeaseLost) {
		return fmt.Errorf("sqlite: complete %s: %w", ls.Key, err)
	}
	return err
}

func putObject(ctx context.Context, tx *sql.Tx, o freshen.ObjectRecord, chunks int, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO objects (bucket, key, etag, version_id, size, last_modified, state, reason, chunks, chunker, model, attempts, updated_at, meta)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (bucket, key) DO UPDATE SET etag = excluded.etag, version_id = excluded.version_id, size = excluded.size,
			last_modified = excluded.last_modified, state = excluded.state, reason = excluded.reason, chunks = excluded.chunks,
			chunker = excluded.chunker, model = excluded.model, attempts = excluded.attempts, updated_at = excluded.updated_at, meta = excluded.meta`,
		o.Bucket, o.Key, o.ETag, o.VersionID, o.Size, codec.Nanos(o.LastModified), string(o.State), o.Reason, chunks,
		o.Chunker, o.Model, o.Attempts, codec.Nanos(now), o.Meta)
	return err
}

// Fail implements freshen.Queue.
func (l *Ledger) Fail(ctx context.Context, ls freshen.Lease, f freshen.Failure) error {
	now := l.now()
	msg := "unknown error"
	if f.Err != nil {
		msg = f.Err.Error()
	}
	err := l.tx(ctx, func(tx *sql.Tx) error {
		if _, err := checkLease(ctx, tx, ls); err != nil {
			return err
		}
		inc := 1
		if f.NotAttempt {
			inc = 0
		}
		var attempts int
		if err := tx.QueryRowContext(ctx, `UPDATE queue SET attempts = attempts + ?, not_before = ?, lease_owner = '', lease_until = 0,
			lease_token = 0, last_error = ? WHERE bucket = ? AND key = ? RETURNING attempts`, inc, codec.Nanos(f.RetryAt), msg, ls.Bucket, ls.Key).Scan(&attempts); err != nil {
			return err
		}
		if f.NotAttempt || (attempts < f.MaxAttempts && !f.Permanent) {
			return nil
		}
		// Park it: keep the last good version's identity (if any) so the
		// reconciler does not requeue an unchanged object forever.
		o, err := getObject(ctx, tx, ls.Bucket, ls.Key)
		if errors.Is(err, freshen.ErrNotFound) {
			o = freshen.ObjectRecord{Bucket: ls.Bucket, Key: ls.Key}
		} else if err != nil {
			return err
		}
		var chunks int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM chunks WHERE bucket = ? AND key = ?`, ls.Bucket, ls.Key).Scan(&chunks); err != nil {
			return err
		}
		o.State, o.Reason, o.Attempts = freshen.StateFailed, msg, attempts
		if err := putObject(ctx, tx, o, chunks, now); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM queue WHERE bucket = ? AND key = ?`, ls.Bucket, ls.Key)
		return err
	})
	if err != nil && !errors.Is(err, freshen.ErrLeaseLost) {
		return fmt.Errorf("sqlite: fail %s: %w", ls.Key, err)
	}
	return err
}

// Backlog implements freshen.Queue.
func (l *Ledger) Backlog(ctx context.Context) (int, time.Time, error) {
	var n int
	var oldest sql.NullInt64
	if err := l.db.QueryRowContext(ctx, `SELECT count(*), min(first_seen) FROM queue`).Scan(&n, &oldest); err != nil {
		return 0, time.Time{}, fmt.Errorf("sqlite: backlog: %w", err)
	}
	return n, codec.FromNanos(oldest.Int64), nil
}

const objectCols = `bucket, key, etag, version_id, size, last_modified, state, reason, chunks, chunker, model, attempts, updated_at, meta`

type scanner interface{ Scan(...any) error }

func scanObject(s scanner) (freshen.ObjectRecord, error) {
	var o freshen.ObjectRecord
	var lm, up int64
	var state string
	err := s.Scan(&o.Bucket, &o.Key, &o.ETag, &o.VersionID, &o.Size, &lm, &state, &o.Reason, &o.Chunks, &o.Chunker, &o.Model, &o.Attempts, &up, &o.Meta)
	o.LastModified, o.UpdatedAt, o.State = codec.FromNanos(lm), codec.FromNanos(up), freshen.ObjectState(state)
	return o, err
}

func getObject(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, bucket, key string) (freshen.ObjectRecord, error) {
	o, err := scanObject(q.QueryRowContext(ctx, `SELECT `+objectCols+` FROM objects WHERE bucket = ? AND key = ?`, bucket, key))
	if errors.Is(err, sql.ErrNoRows) {
		return o, fmt.Errorf("sqlite: object %s: %w", key, freshen.ErrNotFound)
	}
	return o, err
}

// Object implements freshen.Catalog.
func (l *Ledger) Object(ctx context.Context, bucket, key string) (freshen.ObjectRecord, error) {
	return getObject(ctx, l.db, bucket, key)
}

type querier interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	QueryRowContext(context.Context, string, ...any) *sql.Row
}

// chunks reads a key's chunk set in ordinal order.
func chunks(ctx context.Context, q querier, bucket, key string) ([]freshen.ChunkRef, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, hash, ordinal FROM chunks WHERE bucket = ? AND key = ? ORDER BY ordinal, id`, bucket, key)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []freshen.ChunkRef
	for rows.Next() {
		var c freshen.ChunkRef
		var id, hash string
		if err := rows.Scan(&id, &hash, &c.Ordinal); err != nil {
			return nil, err
		}
		c.ID, c.Hash = freshen.ChunkID(id), freshen.ChunkHash(hash)
		out = append(out, c)
	}
	return out, rows.Err()
}

// intent reads a key's unfinished intents, merged.
func intent(ctx context.Context, q querier, bucket, key string) (freshen.Intent, bool, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, op FROM intents WHERE bucket = ? AND key = ? ORDER BY op, id`, bucket, key)
	if err != nil {
		return freshen.Intent{}, false, err
	}
	defer rows.Close()
	var in freshen.Intent
	found := false
	for rows.Next() {
		var id, op string
		if err := rows.Scan(&id, &op); err != nil {
			return in, false, err
		}
		found = true
		switch op {
		case "upsert":
			in.Upserts = append(in.Upserts, freshen.ChunkID(id))
		case "delete":
			in.Deletes = append(in.Deletes, freshen.ChunkID(id))
		}
	}
	return in, found, rows.Err()
}

// State implements freshen.Catalog: the object row, chunk set and
// pending intent of a key from one read transaction.
func (l *Ledger) State(ctx context.Context, bucket, key string) (freshen.KeyState, error) {
	var st freshen.KeyState
	tx, err := l.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return st, fmt.Errorf("sqlite: state %s: %w", key, err)
	}
	defer tx.Rollback()
	st.Object, err = getObject(ctx, tx, bucket, key)
	st.Known = err == nil
	if err != nil && !errors.Is(err, freshen.ErrNotFound) {
		return st, fmt.Errorf("sqlite: state %s: %w", key, err)
	}
	if st.Chunks, err = chunks(ctx, tx, bucket, key); err != nil {
		return st, fmt.Errorf("sqlite: state %s: %w", key, err)
	}
	if st.Intent, st.Pending, err = intent(ctx, tx, bucket, key); err != nil {
		return st, fmt.Errorf("sqlite: state %s: %w", key, err)
	}
	return st, nil
}

// objectsPage bounds how many rows one query of Objects reads, so a
// listing of millions of objects holds neither memory nor a read
// transaction for long.
const objectsPage = 1000

// Objects implements freshen.Catalog. It pages with keyset pagination; fn
// runs outside any transaction and may call the ledger.
func (l *Ledger) Objects(ctx context.Context, bucket, prefix, startAfter string, fn func(freshen.ObjectRecord) error) error {
	after := startAfter
	if after < prefix {
		// Everything under prefix sorts at or after prefix itself.
		after = ""
	}
	for {
		page, err := l.objectsPage(ctx, bucket, prefix, after)
		if err != nil {
			return err
		}
		for _, o := range page {
			if err := fn(o); err != nil {
				return err
			}
		}
		if len(page) < objectsPage {
			return nil
		}
		after = page[len(page)-1].Key
	}
}

func (l *Ledger) objectsPage(ctx context.Context, bucket, prefix, after string) ([]freshen.ObjectRecord, error) {
	// Range on the primary key: keys under prefix lie in [prefix, prefixEnd).
	query := `SELECT ` + objectCols + ` FROM objects WHERE bucket = ? AND key > ? AND key >= ?`
	args := []any{bucket, after, prefix}
	if end, ok := codec.PrefixEnd(prefix); ok {
		query += ` AND key < ?`
		args = append(args, end)
	}
	query += ` ORDER BY key LIMIT ?`
	args = append(args, objectsPage)
	rows, err := l.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: objects: %w", err)
	}
	return scanObjects(rows)
}

func scanObjects(rows *sql.Rows) ([]freshen.ObjectRecord, error) {
	defer rows.Close()
	var out []freshen.ObjectRecord
	for rows.Next() {
		o, err := scanObject(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// BeginIntent implements freshen.Catalog. Intents accumulate until Complete.
func (l *Ledger) BeginIntent(ctx context.Context, ls freshen.Lease, in freshen.Intent) error {
	err := l.tx(ctx, func(tx *sql.Tx) error {
		if _, err := checkLease(ctx, tx, ls); err != nil {
			return err
		}
		ins, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO intents (bucket, key, id, op) VALUES (?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		for _, id := range in.Upserts {
			if _, err := ins.ExecContext(ctx, ls.Bucket, ls.Key, string(id), "upsert"); err != nil {
				return err
			}
		}
		for _, id := range in.Deletes {
			if _, err := ins.ExecContext(ctx, ls.Bucket, ls.Key, string(id), "delete"); err != nil {
				return err
			}
		}
		// An empty intent still marks the key: write a sentinel.
		if len(in.Upserts)+len(in.Deletes) == 0 {
			_, err = ins.ExecContext(ctx, ls.Bucket, ls.Key, "", "mark")
		}
		return err
	})
	if err != nil && !errors.Is(err, freshen.ErrLeaseLost) {
		return fmt.Errorf("sqlite: intent %s: %w", ls.Key, err)
	}
	return err
}

// Stamp implements freshen.Stamped.
func (l *Ledger) Stamp(ctx context.Context) (self, partner string, err error) {
	err = l.db.QueryRowContext(ctx, `SELECT (SELECT v FROM meta WHERE k = 'identity'), coalesce((SELECT v FROM meta WHERE k = 'partner'), '')`).Scan(&self, &partner)
	if err != nil {
		return "", "", fmt.Errorf("sqlite: stamp: %w", err)
	}
	return self, partner, nil
}

// Pair implements freshen.Stamped.
func (l *Ledger) Pair(ctx context.Context, partner string) error {
	if _, err := l.db.ExecContext(ctx, `INSERT INTO meta (k, v) VALUES ('partner', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v`, partner); err != nil {
		return fmt.Errorf("sqlite: pair: %w", err)
	}
	return nil
}

// Reclaim implements freshen.Catalog.
func (l *Ledger) Reclaim(ctx context.Context, keys []freshen.Reclaim) error {
	now := l.now()
	err := l.tx(ctx, func(tx *sql.Tx) error {
		in, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO intents (bucket, key, id, op) VALUES (?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer in.Close()
		q, err := tx.PrepareContext(ctx, `INSERT INTO queue (bucket, key, first_seen, generation, origin, lane) VALUES (?, ?, ?, 1, 'recovery', 1)
			ON CONFLICT (bucket, key) DO UPDATE SET generation = generation + 1, vanished = 0`)
		if err != nil {
			return err
		}
		defer q.Close()
		for _, k := range keys {
			if _, err := in.ExecContext(ctx, k.Bucket, k.Key, "", "mark"); err != nil {
				return err
			}
			for _, id := range k.IDs {
				if _, err := in.ExecContext(ctx, k.Bucket, k.Key, string(id), "delete"); err != nil {
					return err
				}
			}
			if _, err := q.ExecContext(ctx, k.Bucket, k.Key, codec.Nanos(now)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: reclaim: %w", err)
	}
	return nil
}

// KeysWithIntents implements freshen.Catalog.
func (l *Ledger) KeysWithIntents(ctx context.Context) ([]freshen.Change, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT DISTINCT bucket, key FROM intents ORDER BY bucket, key`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: intents: %w", err)
	}
	defer rows.Close()
	var out []freshen.Change
	for rows.Next() {
		c := freshen.Change{Origin: "recovery"}
		if err := rows.Scan(&c.Bucket, &c.Key); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// CachedEmbeddings implements freshen.EmbeddingCache.
func (l *Ledger) CachedEmbeddings(ctx context.Context, model string, hashes []freshen.ChunkHash) (map[freshen.ChunkHash][]float32, error) {
	out := make(map[freshen.ChunkHash][]float32, len(hashes))
	const batch = 400 // stays under SQLite's bound-parameter limit
	for start := 0; start < len(hashes); start += batch {
		part := hashes[start:min(start+batch, len(hashes))]
		args := []any{model}
		for _, h := range part {
			args = append(args, string(h))
		}
		rows, err := l.db.QueryContext(ctx, `SELECT hash, vector FROM embeddings WHERE model = ? AND hash IN (?`+strings.Repeat(",?", len(part)-1)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("sqlite: cached embeddings: %w", err)
		}
		for rows.Next() {
			var h string
			var blob []byte
			if err := rows.Scan(&h, &blob); err != nil {
				rows.Close()
				return nil, err
			}
			out[freshen.ChunkHash(h)] = sqlitedb.DecodeVector(blob)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// CacheEmbeddings implements freshen.EmbeddingCache.
func (l *Ledger) CacheEmbeddings(ctx context.Context, model string, vecs map[freshen.ChunkHash][]float32, work freshen.Counters) error {
	if len(vecs) == 0 && work == (freshen.Counters{}) {
		return nil
	}
	err := l.tx(ctx, func(tx *sql.Tx) error {
		ins, err := tx.PrepareContext(ctx, `INSERT OR REPLACE INTO embeddings (model, hash, vector) VALUES (?, ?, ?)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		for h, v := range vecs {
			if _, err := ins.ExecContext(ctx, model, string(h), sqlitedb.EncodeVector(v)); err != nil {
				return err
			}
		}
		return addCounters(ctx, tx, work, l.now())
	})
	if err != nil {
		return fmt.Errorf("sqlite: cache embeddings: %w", err)
	}
	return nil
}

func addCounters(ctx context.Context, tx *sql.Tx, c freshen.Counters, now time.Time) error {
	names, values := codec.CounterDeltas(c, now)
	for i, name := range names {
		if _, err := tx.ExecContext(ctx, `INSERT INTO counters (name, value) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET value = value + excluded.value`, name, values[i]); err != nil {
			return err
		}
	}
	return nil
}

// Counters implements freshen.EmbeddingCache.
func (l *Ledger) Counters(ctx context.Context) (freshen.Counters, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT name, value FROM counters`)
	if err != nil {
		return freshen.Counters{}, fmt.Errorf("sqlite: counters: %w", err)
	}
	defer rows.Close()
	var c freshen.Counters
	now := l.now()
	for rows.Next() {
		var name string
		var v int64
		if err := rows.Scan(&name, &v); err != nil {
			return c, err
		}
		codec.SetCounter(&c, name, v, now)
	}
	return c, rows.Err()
}

// Summary implements freshen.Catalog.
func (l *Ledger) Summary(ctx context.Context) (freshen.Summary, error) {
	var s freshen.Summary
	rows, err := l.db.QueryContext(ctx, `SELECT state, count(*), coalesce(sum(chunks), 0) FROM objects GROUP BY state`)
	if err != nil {
		return s, fmt.Errorf("sqlite: summary: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var state string
		var n, chunks int
		if err := rows.Scan(&state, &n, &chunks); err != nil {
			return s, err
		}
		codec.AddSummary(&s, state, n, chunks)
	}
	return s, rows.Err()
}

// ObjectsInState implements freshen.Catalog.
func (l *Ledger) ObjectsInState(ctx context.Context, state freshen.ObjectState, limit int) ([]freshen.ObjectRecord, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT `+objectCols+` FROM objects WHERE state = ? ORDER BY updated_at, bucket, key LIMIT ?`, string(state), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: objects in state %s: %w", state, err)
	}
	return scanObjects(rows)
}

// Queued implements freshen.Queue.
func (l *Ledger) Queued(ctx context.Context, bucket, key string) (bool, error) {
	var n int
	err := l.db.QueryRowContext(ctx, `SELECT count(*) FROM queue WHERE bucket = ? AND key = ?`, bucket, key).Scan(&n)
	return n > 0, err
}

// Release implements freshen.Queue.
func (l *Ledger) Release(ctx context.Context, ls freshen.Lease) error {
	res, err := l.db.ExecContext(ctx, `UPDATE queue SET lease_owner = '', lease_until = 0, lease_token = 0
		WHERE bucket = ? AND key = ? AND lease_token = ? AND lease_token != 0`, ls.Bucket, ls.Key, ls.Token)
	return l.fenced("release", ls.Key, res, err)
}

// ReleaseAll frees every lease at once. It is not part of freshen.Queue:
// only a process that knows no other process uses this ledger (it holds
// the data directory's lock) may call it, at start-up, when every lease
// left is a crashed predecessor's. Shared ledgers wait for expiry.
func (l *Ledger) ReleaseAll(ctx context.Context) error {
	if _, err := l.db.ExecContext(ctx, `UPDATE queue SET lease_owner = '', lease_until = 0, lease_token = 0 WHERE lease_token != 0 OR lease_owner != ''`); err != nil {
		return fmt.Errorf("sqlite: release all: %w", err)
	}
	return nil
}

// PutObjects writes object rows directly, without chunks or queue entries.
// It is for importing state (benchmarks, migrations), not for the
// pipeline, which commits through Complete.
func (l *Ledger) PutObjects(ctx context.Context, objs []freshen.ObjectRecord) error {
	now := l.now()
	return l.tx(ctx, func(tx *sql.Tx) error {
		for _, o := range objs {
			if err := putObject(ctx, tx, o, o.Chunks, now); err != nil {
				return fmt.Errorf("sqlite: put object %s: %w", o.Key, err)
			}
		}
		return nil
	})
}
