// Package postgres is freshen's ledger on PostgreSQL: the dirty-key queue,
// the catalog of what the index holds, the embedding cache and the
// counters, shared by any number of `freshen run` processes.
//
// Leases are taken with FOR UPDATE SKIP LOCKED, so processes never wait
// on each other's keys; fencing tokens come from one sequence, so they
// grow across the cluster. Enqueue notifies a channel (LISTEN/NOTIFY):
// an idle worker anywhere picks a change up within milliseconds instead
// of at its next poll. The schema lives in its own PostgreSQL schema
// (default "freshen") and is created and migrated by Open: versioned,
// forward-only, idempotent, and safe when several processes start at
// once (an advisory lock serializes the migrations).
//
// Times are the processes' clocks (lease expiry, retry backoff): keep
// them in sync (NTP) to well under the lease TTL.
package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/ledger/internal/codec"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Config configures a Ledger.
type Config struct {
	// DSN is a PostgreSQL connection string; empty uses the PG*
	// environment variables.
	DSN string
	// Schema holds the ledger's tables (default "freshen"); several
	// independent deployments can share a database with one schema each.
	Schema string
	// MaxConns caps the pool (default 8).
	MaxConns int
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time
}

// DefaultSchema is the PostgreSQL schema unless configured.
const DefaultSchema = "freshen"

// Channel is the LISTEN/NOTIFY channel Enqueue notifies (per schema).
func channel(schema string) string { return schema + "_queue" }

// commitChannel carries the key of every commit (per schema).
func commitChannel(schema string) string { return schema + "_commits" }

// Ledger implements freshen.Ledger on PostgreSQL. It is safe for
// concurrent use by many goroutines and processes.
type Ledger struct {
	pool   *pgxpool.Pool
	schema string
	now    func() time.Time
}

var (
	_ freshen.Ledger  = (*Ledger)(nil)
	_ freshen.Stamped = (*Ledger)(nil)
)

var schemaRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,40}$`)

// migrations are applied in order, each once; never edit one that
// shipped, add another.
var migrations = []string{
	// 1: the ledger.
	`CREATE TABLE meta (k text PRIMARY KEY, v text NOT NULL);
	INSERT INTO meta (k, v) VALUES ('identity', md5(random()::text || clock_timestamp()::text));
	CREATE TABLE objects (
		bucket text NOT NULL, key text COLLATE "C" NOT NULL,
		etag text NOT NULL, version_id text NOT NULL, size bigint NOT NULL,
		last_modified bigint NOT NULL,
		state text NOT NULL, reason text NOT NULL, chunks integer NOT NULL,
		chunker text NOT NULL, model text NOT NULL, attempts integer NOT NULL,
		updated_at bigint NOT NULL,
		PRIMARY KEY (bucket, key));
	CREATE INDEX objects_state ON objects (state, updated_at);
	CREATE TABLE chunks (
		bucket text NOT NULL, key text COLLATE "C" NOT NULL, id text NOT NULL,
		hash text NOT NULL, ordinal integer NOT NULL,
		PRIMARY KEY (bucket, key, id));
	CREATE TABLE queue (
		bucket text NOT NULL, key text COLLATE "C" NOT NULL,
		first_seen bigint NOT NULL, generation bigint NOT NULL,
		attempts integer NOT NULL DEFAULT 0, not_before bigint NOT NULL DEFAULT 0,
		lease_owner text NOT NULL DEFAULT '', lease_until bigint NOT NULL DEFAULT 0,
		origin text NOT NULL DEFAULT '', last_error text NOT NULL DEFAULT '',
		lease_token bigint NOT NULL DEFAULT 0,
		vanished boolean NOT NULL DEFAULT false,
		lane smallint NOT NULL DEFAULT 0,
		PRIMARY KEY (bucket, key));
	CREATE INDEX queue_lanes ON queue (lane, first_seen, bucket, key);
	CREATE SEQUENCE lease_tokens;
	CREATE TABLE intents (
		bucket text NOT NULL, key text COLLATE "C" NOT NULL, id text NOT NULL, op text NOT NULL,
		PRIMARY KEY (bucket, key, id, op));
	CREATE TABLE embeddings (
		model text NOT NULL, hash text NOT NULL, vector bytea NOT NULL,
		PRIMARY KEY (model, hash));
	CREATE TABLE counters (name text PRIMARY KEY, value bigint NOT NULL);`,
	// 2: the processes sharing the ledger (freshen.Coordinator).
	`CREATE TABLE processes (owner text PRIMARY KEY, host text NOT NULL, pid integer NOT NULL,
		started bigint NOT NULL, last_seen bigint NOT NULL, leads text[] NOT NULL DEFAULT '{}');`,
	// 3: the metadata hash of each object's chunks.
	`ALTER TABLE objects ADD COLUMN meta text NOT NULL DEFAULT '';`,
}

// Open connects and creates or migrates the schema.
func Open(ctx context.Context, cfg Config) (*Ledger, error) {
	if cfg.Schema == "" {
		cfg.Schema = DefaultSchema
	}
	if !schemaRE.MatchString(cfg.Schema) {
		return nil, freshen.Permanent(fmt.Errorf("postgres: schema %q: want lower-case letters, digits and _ (at most 41)", cfg.Schema))
	}
	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, freshen.Permanent(errors.New("postgres: ledger.dsn is not a valid PostgreSQL connection string"))
	}
	pc.MaxConns = int32(cfg.MaxConns)
	if pc.MaxConns <= 0 {
		pc.MaxConns = 8
	}
	if pc.ConnConfig.RuntimeParams == nil {
		pc.ConnConfig.RuntimeParams = map[string]string{}
	}
	pc.ConnConfig.RuntimeParams["search_path"] = cfg.Schema
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", classify(err))
	}
	l := &Ledger{pool: pool, schema: cfg.Schema, now: cfg.Now}
	if l.now == nil {
		l.now = time.Now
	}
	if err := l.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return l, nil
}

// migrate applies the migrations not applied yet, under an advisory
// lock, each in its own transaction with its version.
func (l *Ledger) migrate(ctx context.Context) error {
	return l.tx(ctx, "migrate", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, "freshen-migrate:"+l.schema); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{l.schema}.Sanitize()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)`); err != nil {
			return err
		}
		var version int
		err := tx.QueryRow(ctx, `SELECT version FROM schema_version`).Scan(&version)
		if errors.Is(err, pgx.ErrNoRows) {
			_, err = tx.Exec(ctx, `INSERT INTO schema_version (version) VALUES (0)`)
		}
		if err != nil {
			return err
		}
		if version > len(migrations) {
			return freshen.Permanent(fmt.Errorf("postgres: schema %s is at version %d, newer than this freshen knows (%d): upgrade freshen",
				l.schema, version, len(migrations)))
		}
		for v := version; v < len(migrations); v++ {
			if _, err := tx.Exec(ctx, migrations[v]); err != nil {
				return fmt.Errorf("migration %d: %w", v+1, err)
			}
			if _, err := tx.Exec(ctx, `UPDATE schema_version SET version = $1`, v+1); err != nil {
				return err
			}
		}
		return nil
	})
}

// Close closes the pool.
func (l *Ledger) Close() error {
	l.pool.Close()
	return nil
}

// Schema is the PostgreSQL schema holding the ledger.
func (l *Ledger) Schema() string { return l.schema }

// Pool is the connection pool (for cluster coordination in the same
// database: the reconcile lock, the process registry).
func (l *Ledger) Pool() *pgxpool.Pool { return l.pool }

func (l *Ledger) tx(ctx context.Context, op string, fn func(pgx.Tx) error) error {
	err := pgx.BeginFunc(ctx, l.pool, fn)
	if err != nil && !errors.Is(err, freshen.ErrLeaseLost) && !freshen.IsPermanent(err) {
		return fmt.Errorf("postgres: %s: %w", op, classify(err))
	}
	return err
}

// Enqueue implements freshen.Queue, and notifies idle workers.
func (l *Ledger) Enqueue(ctx context.Context, changes []freshen.Change) (int, error) {
	if len(changes) == 0 {
		return 0, nil
	}
	now := l.now()
	added := 0
	err := l.tx(ctx, "enqueue", func(tx pgx.Tx) error {
		added = 0
		b := &pgx.Batch{}
		for _, c := range changes {
			t := c.EventTime
			if t.IsZero() || t.After(now) {
				t = now
			}
			b.Queue(`INSERT INTO queue (bucket, key, first_seen, generation, origin, vanished, lane)
				VALUES ($1, $2, $3, 1, $4, $5, $6)
				ON CONFLICT (bucket, key) DO UPDATE SET
					first_seen = least(queue.first_seen, excluded.first_seen),
					generation = queue.generation + 1,
					not_before = least(queue.not_before, $7),
					vanished = queue.vanished AND excluded.vanished,
					lane = least(queue.lane, excluded.lane)
				RETURNING generation`, c.Bucket, c.Key, codec.Nanos(t), c.Origin, c.Kind == freshen.ChangeVanished, codec.Lane(c), codec.Nanos(now))
		}
		b.Queue(`SELECT pg_notify($1, '')`, channel(l.schema))
		br := tx.SendBatch(ctx, b)
		for _, c := range changes {
			var gen int64
			if err := br.QueryRow().Scan(&gen); err != nil {
				br.Close()
				return fmt.Errorf("enqueue %s: %w", freshen.KeyForLog(c.Key), err)
			}
			if gen == 1 {
				added++
			}
		}
		if _, err := br.Exec(); err != nil {
			br.Close()
			return err
		}
		return br.Close()
	})
	return added, err
}

// Lease implements freshen.Queue: the oldest ready keys whose lease is
// free or expired, skipping rows other processes are leasing right now,
// each with a new fencing token from the cluster-wide sequence.
func (l *Ledger) Lease(ctx context.Context, p freshen.LeaseParams) ([]freshen.Lease, error) {
	now := l.now()
	until := now.Add(p.TTL)
	maxLane := 1
	if p.FreshOnly {
		maxLane = 0
	}
	var out []freshen.Lease
	err := l.tx(ctx, "lease", func(tx pgx.Tx) error {
		out = out[:0]
		rows, err := tx.Query(ctx, `WITH picked AS (
				SELECT bucket, key FROM queue
				WHERE not_before <= $1 AND lease_until <= $1 AND lane <= $2
				ORDER BY lane, first_seen, bucket, key LIMIT $3
				FOR UPDATE SKIP LOCKED)
			UPDATE queue q SET lease_owner = $4, lease_until = $5, lease_token = nextval('lease_tokens')
			FROM picked WHERE q.bucket = picked.bucket AND q.key = picked.key
			RETURNING q.bucket, q.key, q.generation, q.first_seen, q.attempts, q.origin, q.vanished, q.lane, q.lease_token`,
			codec.Nanos(now), maxLane, p.Max, p.Owner, codec.Nanos(until))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var ls freshen.Lease
			var first int64
			var lane int16
			if err := rows.Scan(&ls.Bucket, &ls.Key, &ls.Generation, &first, &ls.Attempts, &ls.Origin, &ls.Vanished, &lane, &ls.Token); err != nil {
				return err
			}
			ls.FirstSeen, ls.Fresh = codec.FromNanos(first), lane == 0
			out = append(out, ls)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	// UPDATE ... RETURNING has no order: restore the lease order.
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Fresh != b.Fresh {
			return a.Fresh
		}
		if !a.FirstSeen.Equal(b.FirstSeen) {
			return a.FirstSeen.Before(b.FirstSeen)
		}
		return a.Bucket+"\x00"+a.Key < b.Bucket+"\x00"+b.Key
	})
	for i := range out {
		out[i].Owner, out[i].Expires = p.Owner, until
	}
	return out, nil
}

// checkLease locks the key's queue row and fails with ErrLeaseLost unless
// ls is its current lease.
func checkLease(ctx context.Context, tx pgx.Tx, ls freshen.Lease) (generation int64, err error) {
	var token int64
	err = tx.QueryRow(ctx, `SELECT generation, lease_token FROM queue WHERE bucket = $1 AND key = $2 FOR UPDATE`, ls.Bucket, ls.Key).Scan(&generation, &token)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && (token != ls.Token || token == 0)) {
		return 0, freshen.ErrLeaseLost
	}
	return generation, err
}

// fenced runs an UPDATE guarded by the lease token; no row is ErrLeaseLost.
func (l *Ledger) fenced(ctx context.Context, op string, ls freshen.Lease, sql string, args ...any) error {
	tag, err := l.pool.Exec(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("postgres: %s %s: %w", op, freshen.KeyForLog(ls.Key), classify(err))
	}
	if tag.RowsAffected() == 0 {
		return freshen.ErrLeaseLost
	}
	return nil
}

// Extend implements freshen.Queue.
func (l *Ledger) Extend(ctx context.Context, ls *freshen.Lease, ttl time.Duration) error {
	until := l.now().Add(ttl)
	if err := l.fenced(ctx, "extend", *ls, `UPDATE queue SET lease_until = $1 WHERE bucket = $2 AND key = $3 AND lease_token = $4 AND lease_token != 0`,
		codec.Nanos(until), ls.Bucket, ls.Key, ls.Token); err != nil {
		return err
	}
	ls.Expires = until
	return nil
}

// Release implements freshen.Queue.
func (l *Ledger) Release(ctx context.Context, ls freshen.Lease) error {
	return l.fenced(ctx, "release", ls, `UPDATE queue SET lease_owner = '', lease_until = 0, lease_token = 0
		WHERE bucket = $1 AND key = $2 AND lease_token = $3 AND lease_token != 0`, ls.Bucket, ls.Key, ls.Token)
}

// Complete implements freshen.Catalog.
func (l *Ledger) Complete(ctx context.Context, ls freshen.Lease, c freshen.Commit) error {
	now := l.now()
	return l.tx(ctx, "complete "+freshen.KeyForLog(ls.Key), func(tx pgx.Tx) error {
		gen, err := checkLease(ctx, tx, ls)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM chunks WHERE bucket = $1 AND key = $2`, ls.Bucket, ls.Key); err != nil {
			return err
		}
		if c.Gone {
			if _, err := tx.Exec(ctx, `DELETE FROM objects WHERE bucket = $1 AND key = $2`, ls.Bucket, ls.Key); err != nil {
				return err
			}
		} else {
			if err := putObject(ctx, tx, c.Object, len(c.Chunks), now); err != nil {
				return err
			}
			if len(c.Chunks) > 0 {
				rows := make([][]any, len(c.Chunks))
				for i, ch := range c.Chunks {
					rows[i] = []any{ls.Bucket, ls.Key, string(ch.ID), string(ch.Hash), ch.Ordinal}
				}
				if _, err := tx.CopyFrom(ctx, pgx.Identifier{"chunks"}, []string{"bucket", "key", "id", "hash", "ordinal"}, pgx.CopyFromRows(rows)); err != nil {
					return err
				}
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM intents WHERE bucket = $1 AND key = $2`, ls.Bucket, ls.Key); err != nil {
			return err
		}
		if err := addCounters(ctx, tx, c.Work, now); err != nil {
			return err
		}
		if gen == ls.Generation {
			_, err = tx.Exec(ctx, `DELETE FROM queue WHERE bucket = $1 AND key = $2`, ls.Bucket, ls.Key)
		} else {
			// A change arrived while we worked: keep the key queued, as of now.
			_, err = tx.Exec(ctx, `UPDATE queue SET lease_owner = '', lease_until = 0, lease_token = 0, attempts = 0, not_before = 0,
				first_seen = greatest(first_seen, $1) WHERE bucket = $2 AND key = $3`, codec.Nanos(now), ls.Bucket, ls.Key)
		}
		if err != nil {
			return err
		}
		// Read-your-writes waiters in every process wake at the commit.
		_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, commitChannel(l.schema), ls.Key)
		return err
	})
}

func putObject(ctx context.Context, tx pgx.Tx, o freshen.ObjectRecord, chunks int, now time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO objects (bucket, key, etag, version_id, size, last_modified, state, reason, chunks, chunker, model, attempts, updated_at, meta)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
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
	msg = strings.ToValidUTF8(strings.ReplaceAll(msg, "\x00", ""), "\uFFFD")
	return l.tx(ctx, "fail "+freshen.KeyForLog(ls.Key), func(tx pgx.Tx) error {
		if _, err := checkLease(ctx, tx, ls); err != nil {
			return err
		}
		inc := 1
		if f.NotAttempt {
			inc = 0
		}
		var attempts int
		if err := tx.QueryRow(ctx, `UPDATE queue SET attempts = attempts + $1, not_before = $2, lease_owner = '', lease_until = 0,
			lease_token = 0, last_error = $3 WHERE bucket = $4 AND key = $5 RETURNING attempts`, inc, codec.Nanos(f.RetryAt), msg, ls.Bucket, ls.Key).Scan(&attempts); err != nil {
			return err
		}
		if f.NotAttempt || (attempts < f.MaxAttempts && !f.Permanent) {
			return nil
		}
		// Park it, keeping the last good version's identity (if any) so
		// the reconciler does not requeue an unchanged object forever.
		o, err := getObject(ctx, tx, ls.Bucket, ls.Key)
		if errors.Is(err, freshen.ErrNotFound) {
			o = freshen.ObjectRecord{Bucket: ls.Bucket, Key: ls.Key}
		} else if err != nil {
			return err
		}
		var chunks int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM chunks WHERE bucket = $1 AND key = $2`, ls.Bucket, ls.Key).Scan(&chunks); err != nil {
			return err
		}
		o.State, o.Reason, o.Attempts = freshen.StateFailed, msg, attempts
		if err := putObject(ctx, tx, o, chunks, now); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM queue WHERE bucket = $1 AND key = $2`, ls.Bucket, ls.Key)
		return err
	})
}

// Backlog implements freshen.Queue.
func (l *Ledger) Backlog(ctx context.Context) (int, time.Time, error) {
	var n int
	var oldest *int64
	if err := l.pool.QueryRow(ctx, `SELECT count(*), min(first_seen) FROM queue`).Scan(&n, &oldest); err != nil {
		return 0, time.Time{}, fmt.Errorf("postgres: backlog: %w", classify(err))
	}
	if oldest == nil {
		return n, time.Time{}, nil
	}
	return n, codec.FromNanos(*oldest), nil
}

// Queued implements freshen.Queue.
func (l *Ledger) Queued(ctx context.Context, bucket, key string) (bool, error) {
	var queued bool
	err := l.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM queue WHERE bucket = $1 AND key = $2)`, bucket, key).Scan(&queued)
	if err != nil {
		return false, fmt.Errorf("postgres: queued: %w", classify(err))
	}
	return queued, nil
}

const objectCols = `bucket, key, etag, version_id, size, last_modified, state, reason, chunks, chunker, model, attempts, updated_at, meta`

func scanObject(row pgx.Row) (freshen.ObjectRecord, error) {
	var o freshen.ObjectRecord
	var lm, up int64
	var state string
	err := row.Scan(&o.Bucket, &o.Key, &o.ETag, &o.VersionID, &o.Size, &lm, &state, &o.Reason, &o.Chunks, &o.Chunker, &o.Model, &o.Attempts, &up, &o.Meta)
	o.LastModified, o.UpdatedAt, o.State = codec.FromNanos(lm), codec.FromNanos(up), freshen.ObjectState(state)
	return o, err
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func getObject(ctx context.Context, q querier, bucket, key string) (freshen.ObjectRecord, error) {
	o, err := scanObject(q.QueryRow(ctx, `SELECT `+objectCols+` FROM objects WHERE bucket = $1 AND key = $2`, bucket, key))
	if errors.Is(err, pgx.ErrNoRows) {
		return o, fmt.Errorf("postgres: object %s: %w", freshen.KeyForLog(key), freshen.ErrNotFound)
	}
	return o, err
}

// Object implements freshen.Catalog.
func (l *Ledger) Object(ctx context.Context, bucket, key string) (freshen.ObjectRecord, error) {
	o, err := getObject(ctx, l.pool, bucket, key)
	if err != nil && !errors.Is(err, freshen.ErrNotFound) {
		err = fmt.Errorf("postgres: object: %w", classify(err))
	}
	return o, err
}

// State implements freshen.Catalog: the object row, chunk set and pending
// intent of a key from one snapshot.
func (l *Ledger) State(ctx context.Context, bucket, key string) (freshen.KeyState, error) {
	var st freshen.KeyState
	err := pgx.BeginTxFunc(ctx, l.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		st.Object, err = getObject(ctx, tx, bucket, key)
		st.Known = err == nil
		if err != nil && !errors.Is(err, freshen.ErrNotFound) {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT id, hash, ordinal FROM chunks WHERE bucket = $1 AND key = $2 ORDER BY ordinal, id`, bucket, key)
		if err != nil {
			return err
		}
		for rows.Next() {
			var c freshen.ChunkRef
			var id, hash string
			if err := rows.Scan(&id, &hash, &c.Ordinal); err != nil {
				rows.Close()
				return err
			}
			c.ID, c.Hash = freshen.ChunkID(id), freshen.ChunkHash(hash)
			st.Chunks = append(st.Chunks, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT id, op FROM intents WHERE bucket = $1 AND key = $2 ORDER BY op, id`, bucket, key)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id, op string
			if err := rows.Scan(&id, &op); err != nil {
				return err
			}
			st.Pending = true
			switch op {
			case "upsert":
				st.Intent.Upserts = append(st.Intent.Upserts, freshen.ChunkID(id))
			case "delete":
				st.Intent.Deletes = append(st.Intent.Deletes, freshen.ChunkID(id))
			}
		}
		return rows.Err()
	})
	if err != nil {
		return st, fmt.Errorf("postgres: state %s: %w", freshen.KeyForLog(key), classify(err))
	}
	return st, nil
}

// objectsPage bounds one query of Objects.
const objectsPage = 1000

// Objects implements freshen.Catalog with keyset pagination; fn runs
// outside any transaction and may call the ledger.
func (l *Ledger) Objects(ctx context.Context, bucket, prefix, startAfter string, fn func(freshen.ObjectRecord) error) error {
	after := startAfter
	if after < prefix {
		after = ""
	}
	for {
		query := `SELECT ` + objectCols + ` FROM objects WHERE bucket = $1 AND key > $2 AND key >= $3`
		args := []any{bucket, after, prefix}
		if end, ok := codec.PrefixEnd(prefix); ok {
			query += ` AND key < $5`
			args = append(args, objectsPage, end)
		} else {
			args = append(args, objectsPage)
		}
		query += ` ORDER BY key LIMIT $4`
		rows, err := l.pool.Query(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("postgres: objects: %w", classify(err))
		}
		page, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (freshen.ObjectRecord, error) { return scanObject(r) })
		if err != nil {
			return fmt.Errorf("postgres: objects: %w", classify(err))
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

// BeginIntent implements freshen.Catalog. Intents accumulate until Complete.
func (l *Ledger) BeginIntent(ctx context.Context, ls freshen.Lease, in freshen.Intent) error {
	return l.tx(ctx, "intent "+freshen.KeyForLog(ls.Key), func(tx pgx.Tx) error {
		if _, err := checkLease(ctx, tx, ls); err != nil {
			return err
		}
		ids, ops := []string{""}, []string{"mark"} // an empty intent still marks the key
		for _, id := range in.Upserts {
			ids, ops = append(ids, string(id)), append(ops, "upsert")
		}
		for _, id := range in.Deletes {
			ids, ops = append(ids, string(id)), append(ops, "delete")
		}
		_, err := tx.Exec(ctx, `INSERT INTO intents (bucket, key, id, op) SELECT $1, $2, id, op FROM unnest($3::text[], $4::text[]) AS t(id, op)
			ON CONFLICT DO NOTHING`, ls.Bucket, ls.Key, ids, ops)
		return err
	})
}

// Reclaim implements freshen.Catalog.
func (l *Ledger) Reclaim(ctx context.Context, keys []freshen.Reclaim) error {
	if len(keys) == 0 {
		return nil
	}
	now := l.now()
	return l.tx(ctx, "reclaim", func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, k := range keys {
			ids, ops := []string{""}, []string{"mark"}
			for _, id := range k.IDs {
				ids, ops = append(ids, string(id)), append(ops, "delete")
			}
			b.Queue(`INSERT INTO intents (bucket, key, id, op) SELECT $1, $2, id, op FROM unnest($3::text[], $4::text[]) AS t(id, op)
				ON CONFLICT DO NOTHING`, k.Bucket, k.Key, ids, ops)
			b.Queue(`INSERT INTO queue (bucket, key, first_seen, generation, origin, lane) VALUES ($1, $2, $3, 1, 'recovery', 1)
				ON CONFLICT (bucket, key) DO UPDATE SET generation = queue.generation + 1, vanished = false`, k.Bucket, k.Key, codec.Nanos(now))
		}
		b.Queue(`SELECT pg_notify($1, '')`, channel(l.schema))
		return tx.SendBatch(ctx, b).Close()
	})
}

// KeysWithIntents implements freshen.Catalog.
func (l *Ledger) KeysWithIntents(ctx context.Context) ([]freshen.Change, error) {
	rows, err := l.pool.Query(ctx, `SELECT DISTINCT bucket, key FROM intents ORDER BY bucket, key`)
	if err != nil {
		return nil, fmt.Errorf("postgres: intents: %w", classify(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (freshen.Change, error) {
		c := freshen.Change{Origin: "recovery"}
		err := r.Scan(&c.Bucket, &c.Key)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: intents: %w", classify(err))
	}
	return out, nil
}

// CachedEmbeddings implements freshen.EmbeddingCache.
func (l *Ledger) CachedEmbeddings(ctx context.Context, model string, hashes []freshen.ChunkHash) (map[freshen.ChunkHash][]float32, error) {
	out := make(map[freshen.ChunkHash][]float32, len(hashes))
	if len(hashes) == 0 {
		return out, nil
	}
	hs := make([]string, len(hashes))
	for i, h := range hashes {
		hs[i] = string(h)
	}
	rows, err := l.pool.Query(ctx, `SELECT hash, vector FROM embeddings WHERE model = $1 AND hash = ANY($2)`, model, hs)
	if err != nil {
		return nil, fmt.Errorf("postgres: cached embeddings: %w", classify(err))
	}
	defer rows.Close()
	for rows.Next() {
		var h string
		var blob []byte
		if err := rows.Scan(&h, &blob); err != nil {
			return nil, err
		}
		out[freshen.ChunkHash(h)] = decodeVector(blob)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: cached embeddings: %w", classify(err))
	}
	return out, nil
}

// CacheEmbeddings implements freshen.EmbeddingCache.
func (l *Ledger) CacheEmbeddings(ctx context.Context, model string, vecs map[freshen.ChunkHash][]float32, work freshen.Counters) error {
	if len(vecs) == 0 && work == (freshen.Counters{}) {
		return nil
	}
	return l.tx(ctx, "cache embeddings", func(tx pgx.Tx) error {
		if len(vecs) > 0 {
			hs := make([]string, 0, len(vecs))
			blobs := make([][]byte, 0, len(vecs))
			for h, v := range vecs {
				hs, blobs = append(hs, string(h)), append(blobs, encodeVector(v))
			}
			if _, err := tx.Exec(ctx, `INSERT INTO embeddings (model, hash, vector) SELECT $1, h, v FROM unnest($2::text[], $3::bytea[]) AS t(h, v)
				ON CONFLICT (model, hash) DO UPDATE SET vector = excluded.vector`, model, hs, blobs); err != nil {
				return err
			}
		}
		return addCounters(ctx, tx, work, l.now())
	})
}

func addCounters(ctx context.Context, tx pgx.Tx, c freshen.Counters, now time.Time) error {
	ns, vs := codec.CounterDeltas(c, now)
	if len(ns) == 0 {
		return nil
	}
	// In name order, so that concurrent transactions lock the rows in one
	// order and never deadlock.
	_, err := tx.Exec(ctx, `INSERT INTO counters (name, value) SELECT n, v FROM unnest($1::text[], $2::bigint[]) AS t(n, v) ORDER BY n
		ON CONFLICT (name) DO UPDATE SET value = counters.value + excluded.value`, ns, vs)
	return err
}

// Counters implements freshen.EmbeddingCache.
func (l *Ledger) Counters(ctx context.Context) (freshen.Counters, error) {
	var c freshen.Counters
	rows, err := l.pool.Query(ctx, `SELECT name, value FROM counters`)
	if err != nil {
		return c, fmt.Errorf("postgres: counters: %w", classify(err))
	}
	defer rows.Close()
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
	rows, err := l.pool.Query(ctx, `SELECT state, count(*), coalesce(sum(chunks), 0) FROM objects GROUP BY state`)
	if err != nil {
		return s, fmt.Errorf("postgres: summary: %w", classify(err))
	}
	defer rows.Close()
	for rows.Next() {
		var state string
		var n, chunks int64
		if err := rows.Scan(&state, &n, &chunks); err != nil {
			return s, err
		}
		codec.AddSummary(&s, state, int(n), int(chunks))
	}
	return s, rows.Err()
}

// ObjectsInState implements freshen.Catalog.
func (l *Ledger) ObjectsInState(ctx context.Context, state freshen.ObjectState, limit int) ([]freshen.ObjectRecord, error) {
	rows, err := l.pool.Query(ctx, `SELECT `+objectCols+` FROM objects WHERE state = $1 ORDER BY updated_at, bucket, key LIMIT $2`, string(state), limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: objects in state %s: %w", state, classify(err))
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (freshen.ObjectRecord, error) { return scanObject(r) })
}

// Stamp implements freshen.Stamped.
func (l *Ledger) Stamp(ctx context.Context) (self, partner string, err error) {
	err = l.pool.QueryRow(ctx, `SELECT (SELECT v FROM meta WHERE k = 'identity'), coalesce((SELECT v FROM meta WHERE k = 'partner'), '')`).Scan(&self, &partner)
	if err != nil {
		return "", "", fmt.Errorf("postgres: stamp: %w", classify(err))
	}
	return self, partner, nil
}

// Pair implements freshen.Stamped.
func (l *Ledger) Pair(ctx context.Context, partner string) error {
	if _, err := l.pool.Exec(ctx, `INSERT INTO meta (k, v) VALUES ('partner', $1) ON CONFLICT (k) DO UPDATE SET v = excluded.v`, partner); err != nil {
		return fmt.Errorf("postgres: pair: %w", classify(err))
	}
	return nil
}

// classify marks errors a retry cannot fix as permanent (bad data, a
// constraint, a wrong schema or privilege); connection trouble and the
// rest stay retryable.
func classify(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code[:2] {
		case "22", "23", "42", "2B", "0A", "28", "3D", "3F":
			return freshen.Permanent(err)
		}
	}
	return err
}

// encodeVector stores a vector as little-endian float32s.
func encodeVector(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func decodeVector(b []byte) []float32 {
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

// PutObjects writes object rows directly (COPY into a staging table, then
// one upsert), without chunks or queue entries. It is for importing state
// (benchmarks, migrations), not for the pipeline, which commits through
// Complete.
func (l *Ledger) PutObjects(ctx context.Context, objs []freshen.ObjectRecord) error {
	now := codec.Nanos(l.now())
	rows := make([][]any, len(objs))
	for i, o := range objs {
		rows[i] = []any{o.Bucket, o.Key, o.ETag, o.VersionID, o.Size, codec.Nanos(o.LastModified), string(o.State), o.Reason, o.Chunks,
			o.Chunker, o.Model, o.Attempts, now, o.Meta}
	}
	return l.tx(ctx, "put objects", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE objects_in (LIKE objects) ON COMMIT DROP`); err != nil {
			return err
		}
		cols := strings.Split(strings.ReplaceAll(objectCols, " ", ""), ",")
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"objects_in"}, cols, pgx.CopyFromRows(rows)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO objects SELECT * FROM objects_in ON CONFLICT (bucket, key) DO UPDATE SET etag = excluded.etag,
			version_id = excluded.version_id, size = excluded.size, last_modified = excluded.last_modified, state = excluded.state,
			reason = excluded.reason, chunks = excluded.chunks, chunker = excluded.chunker, model = excluded.model,
			attempts = excluded.attempts, updated_at = excluded.updated_at, meta = excluded.meta`)
		return err
	})
}
