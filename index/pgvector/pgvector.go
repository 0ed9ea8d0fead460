// Package pgvector keeps freshen's chunks in a PostgreSQL table with the
// pgvector extension, laid out for applications to query with plain SQL:
//
//	CREATE TABLE freshen_chunks (
//	    chunk_id    text COLLATE "C" PRIMARY KEY,  -- freshen's chunk id
//	    bucket      text NOT NULL,
//	    key         text COLLATE "C" NOT NULL,     -- the S3 key
//	    chunk_hash  text NOT NULL,                 -- hash of the chunker version and the text
//	    ordinal     integer NOT NULL,              -- position in the document, from 0
//	    headings    text[] NOT NULL,               -- heading trail, outermost first
//	    text        text NOT NULL,
//	    metadata    jsonb NOT NULL,
//	    embedding   vector(D) NOT NULL,
//	    version     text NOT NULL,                 -- object version (VersionID, else ETag) written for
//	    updated_at  timestamptz NOT NULL
//	);
//	-- HNSW (cosine) on embedding, a b-tree on (bucket, key)
//
// and a search is
//
//	SELECT key, text, 1 - (embedding <=> $1) AS score
//	FROM freshen_chunks ORDER BY embedding <=> $1 LIMIT 10;
//
// Keys compare as bytes (COLLATE "C"), as S3 orders them. Each object's
// change is one transaction (Apply), fenced by the lease token in a side
// table <table>_fence, so a reader never sees half of an edited document
// and a stalled worker cannot undo a newer commit.
package pgvector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	pgv "github.com/pgvector/pgvector-go"
)

// DefaultTable is the table's name unless configured.
const DefaultTable = "freshen_chunks"

// Config configures an Index.
type Config struct {
	// DSN is a PostgreSQL connection string (URL or key=value); empty
	// means the standard PG* environment variables.
	DSN string
	// Table is the table's name (default DefaultTable), optionally
	// schema-qualified; one table per model.
	Table string
	// Dim is the model's vector length.
	Dim int
	// NoCreate checks an existing table instead of creating what is
	// missing; every difference is reported.
	NoCreate bool
	// MaxConns caps the pool (default 4).
	MaxConns int
}

// Index is a pgvector table. It is safe for concurrent use.
type Index struct {
	pool             *pgxpool.Pool
	dim              int
	table, fence     string // quoted identifiers
	meta             string
	name             string
	upsertSQL        string
	upsertBatch      int
	searchSQL        string
	searchWhereSQL   string
	rowsSQL, scanSQL string
}

var (
	_ freshen.Index        = (*Index)(nil)
	_ freshen.ObjectWriter = (*Index)(nil)
	_ freshen.Isolated     = (*Index)(nil)
	_ freshen.RowScanner   = (*Index)(nil)
	_ freshen.Scanner      = (*Index)(nil)
	_ freshen.Stamped      = (*Index)(nil)
)

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,50}$`)

// parseTable splits "schema.table" and checks both are plain identifiers
// (they become part of SQL).
func parseTable(name string) (schema, table string, err error) {
	if name == "" {
		name = DefaultTable
	}
	schema, table, ok := strings.Cut(name, ".")
	if !ok {
		schema, table = "", name
	}
	if (schema != "" || ok) && !identRE.MatchString(schema) || !identRE.MatchString(table) {
		return "", "", freshen.Permanent(fmt.Errorf("pgvector: table %q: want letters, digits and _ (at most 50), optionally schema.table", name))
	}
	return schema, table, nil
}

func quote(schema, name string) string {
	if schema == "" {
		return pgx.Identifier{name}.Sanitize()
	}
	return pgx.Identifier{schema, name}.Sanitize()
}

// Open connects, and creates the table and its indexes (or, with
// NoCreate, checks them). A table made for another dimension is refused.
func Open(ctx context.Context, cfg Config) (*Index, error) {
	if cfg.Dim < 1 || cfg.Dim > 16000 {
		return nil, freshen.Permanent(fmt.Errorf("pgvector: dimension %d: want 1..16000", cfg.Dim))
	}
	schema, table, err := parseTable(cfg.Table)
	if err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		// The error may quote the DSN, password included: say where.
		return nil, freshen.Permanent(errors.New("pgvector: index.dsn is not a valid PostgreSQL connection string"))
	}
	pc.MaxConns = int32(max(cfg.MaxConns, 0))
	if pc.MaxConns == 0 {
		pc.MaxConns = 4
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("pgvector: %w", err)
	}
	x := &Index{pool: pool, dim: cfg.Dim, name: strings.TrimPrefix(schema+"."+table, "."),
		table: quote(schema, table), fence: quote(schema, table+"_fence"), meta: quote(schema, table+"_meta")}
	x.prepareSQL()
	if err := x.setUp(ctx, schema, table, !cfg.NoCreate); err != nil {
		pool.Close()
		return nil, err
	}
	return x, nil
}

const columns = "chunk_id, bucket, key, chunk_hash, ordinal, headings, text, version, embedding"

func (x *Index) prepareSQL() {
	// Rows of one statement: 10 parameters each, under PostgreSQL's
	// 65,535.
	x.upsertBatch = 450
	x.upsertSQL = `INSERT INTO ` + x.table + ` (` + columns + `, metadata, updated_at) VALUES %s
		ON CONFLICT (chunk_id) DO UPDATE SET bucket = excluded.bucket, key = excluded.key, chunk_hash = excluded.chunk_hash,
		ordinal = excluded.ordinal, headings = excluded.headings, text = excluded.text, version = excluded.version,
		embedding = excluded.embedding, metadata = excluded.metadata, updated_at = excluded.updated_at`
	sel := `SELECT chunk_id, bucket, key, chunk_hash, ordinal, headings, text, version, metadata::text, embedding <=> $1::vector AS dist FROM ` + x.table
	x.searchSQL = sel + ` ORDER BY dist LIMIT $2`
	x.searchWhereSQL = sel + ` WHERE %s ORDER BY dist LIMIT $2`
	x.rowsSQL = `SELECT chunk_id, key, chunk_hash, text, version FROM ` + x.table + `
		WHERE bucket = $1 AND (key, chunk_id) > ($2, $3) ORDER BY key, chunk_id LIMIT $4`
	x.scanSQL = `SELECT ` + columns + `::text FROM ` + x.table + ` WHERE chunk_id > $1 ORDER BY chunk_id LIMIT $2`
}

// want is the table's layout: column, type as format_type prints it.
func (x *Index) want() [][2]string {
	return [][2]string{
		{"chunk_id", "text"}, {"bucket", "text"}, {"key", "text"}, {"chunk_hash", "text"}, {"ordinal", "integer"},
		{"headings", "text[]"}, {"text", "text"}, {"metadata", "jsonb"}, {"embedding", fmt.Sprintf("vector(%d)", x.dim)},
		{"version", "text"}, {"updated_at", "timestamp with time zone"},
	}
}

func (x *Index) setUp(ctx context.Context, schema, table string, create bool) error {
	if create {
		stmts := []string{
			`CREATE EXTENSION IF NOT EXISTS vector`,
			`CREATE TABLE IF NOT EXISTS ` + x.table + ` (
				chunk_id text COLLATE "C" PRIMARY KEY,
				bucket text NOT NULL,
				key text COLLATE "C" NOT NULL,
				chunk_hash text NOT NULL,
				ordinal integer NOT NULL,
				headings text[] NOT NULL DEFAULT '{}',
				text text NOT NULL,
				metadata jsonb NOT NULL DEFAULT '{}',
				embedding vector(` + strconv.Itoa(x.dim) + `) NOT NULL,
				version text NOT NULL DEFAULT '',
				updated_at timestamptz NOT NULL DEFAULT now())`,
			`CREATE INDEX IF NOT EXISTS ` + pgx.Identifier{table + "_embedding_idx"}.Sanitize() + ` ON ` + x.table + ` USING hnsw (embedding vector_cosine_ops)`,
			`CREATE INDEX IF NOT EXISTS ` + pgx.Identifier{table + "_key_idx"}.Sanitize() + ` ON ` + x.table + ` (bucket, key, chunk_id)`,
			`CREATE TABLE IF NOT EXISTS ` + x.fence + ` (bucket text NOT NULL, key text COLLATE "C" NOT NULL, fence bigint NOT NULL, PRIMARY KEY (bucket, key))`,
			`CREATE TABLE IF NOT EXISTS ` + x.meta + ` (name text PRIMARY KEY, value text NOT NULL)`,
		}
		for _, s := range stmts {
			if _, err := x.pool.Exec(ctx, s); err != nil {
				return fmt.Errorf("pgvector: create %s: %w", x.name, classify(err))
			}
		}
	}
	return x.check(ctx, schema, table)
}

// check compares the table with the layout and says every difference.
func (x *Index) check(ctx context.Context, schema, table string) error {
	rows, err := x.pool.Query(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod)
		FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`, strings.TrimPrefix(schema+"."+table, "."))
	if err != nil {
		return fmt.Errorf("pgvector: read the layout of %s: %w", x.name, classify(err))
	}
	have := map[string]string{}
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			rows.Close()
			return classify(err)
		}
		have[name] = typ
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("pgvector: read the layout of %s: %w", x.name, classify(err))
	}
	if len(have) == 0 {
		return freshen.Permanent(fmt.Errorf("pgvector: table %s does not exist (index.create is false: create it, or let freshen)", x.name))
	}
	var diffs []string
	for _, c := range x.want() {
		got, ok := have[c[0]]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("column %s %s is missing", c[0], c[1]))
		case got != c[1] && c[0] == "embedding":
			return freshen.Permanent(fmt.Errorf("%w: pgvector: table %s holds %s embeddings; the model makes %d-dimensional vectors (use another index.table for another model)",
				freshen.ErrDimension, x.name, got, x.dim))
		case got != c[1]:
			diffs = append(diffs, fmt.Sprintf("column %s is %s, want %s", c[0], got, c[1]))
		}
	}
	for _, t := range [][2]string{{x.fence, x.name + "_fence"}, {x.meta, x.name + "_meta"}} {
		var exists bool
		if err := x.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, t[0]).Scan(&exists); err != nil {
			return classify(err)
		}
		if !exists {
			diffs = append(diffs, fmt.Sprintf("table %s is missing", t[1]))
		}
	}
	if len(diffs) > 0 {
		return freshen.Permanent(fmt.Errorf("pgvector: table %s differs from freshen's layout: %s", x.name, strings.Join(diffs, "; ")))
	}
	return nil
}

// Dim implements freshen.Index.
func (x *Index) Dim() int { return x.dim }

// Close implements freshen.Index.
func (x *Index) Close() error {
	x.pool.Close()
	return nil
}

// Table is the table's name as configured.
func (x *Index) Table() string { return x.name }

// Upsert implements freshen.Index: batched multi-row upserts in one
// transaction.
func (x *Index) Upsert(ctx context.Context, records []freshen.Record) error {
	if len(records) == 0 {
		return nil
	}
	return x.inTx(ctx, "upsert", func(tx pgx.Tx) error { return x.upsert(ctx, tx, records, "") })
}

// Delete implements freshen.Index.
func (x *Index) Delete(ctx context.Context, ids []freshen.ChunkID) error {
	if len(ids) == 0 {
		return nil
	}
	return x.inTx(ctx, "delete", func(tx pgx.Tx) error { return x.delete(ctx, tx, ids) })
}

// Isolated implements freshen.Isolated: Apply is one transaction.
func (x *Index) Isolated() {}

// Apply implements freshen.ObjectWriter: the fence, the upserts and the
// deletes of one object in one transaction.
func (x *Index) Apply(ctx context.Context, w freshen.ObjectWrite) error {
	for _, r := range w.Upserts {
		if err := freshen.CheckDim(r.Vector, x.dim); err != nil {
			return fmt.Errorf("pgvector: record %s: %w", r.ID, err)
		}
	}
	return x.inTx(ctx, "apply", func(tx pgx.Tx) error {
		// The fence row is locked until commit: writers of one key
		// take turns, and an older one finds the newer fence.
		var fence int64
		err := tx.QueryRow(ctx, `INSERT INTO `+x.fence+` (bucket, key, fence) VALUES ($1, $2, $3)
			ON CONFLICT (bucket, key) DO UPDATE SET fence = excluded.fence WHERE `+x.fence+`.fence <= excluded.fence
			RETURNING fence`, w.Bucket, w.Key, w.Fence).Scan(&fence)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("pgvector: %s: %w", freshen.KeyForLog(w.Key), freshen.ErrStaleWrite)
		}
		if err != nil {
			return err
		}
		if err := x.upsert(ctx, tx, w.Upserts, w.Version); err != nil {
			return err
		}
		return x.delete(ctx, tx, w.Deletes)
	})
}

func (x *Index) inTx(ctx context.Context, op string, fn func(pgx.Tx) error) error {
	err := pgx.BeginFunc(ctx, x.pool, fn)
	if err != nil {
		if errors.Is(err, freshen.ErrStaleWrite) || errors.Is(err, freshen.ErrDimension) {
			return err
		}
		return fmt.Errorf("pgvector: %s %s: %w", op, x.name, classify(err))
	}
	return nil
}

// upsert writes records in statements of upsertBatch rows; version, when
// set, overrides each record's.
func (x *Index) upsert(ctx context.Context, tx pgx.Tx, records []freshen.Record, version string) error {
	for _, r := range records {
		if err := freshen.CheckDim(r.Vector, x.dim); err != nil {
			return fmt.Errorf("pgvector: record %s: %w", r.ID, err)
		}
	}
	now := time.Now()
	for start := 0; start < len(records); start += x.upsertBatch {
		part := records[start:min(start+x.upsertBatch, len(records))]
		// A statement may not touch one row twice: the last write of an
		// ID wins, as separate upserts would.
		last := make(map[freshen.ChunkID]int, len(part))
		for i, r := range part {
			last[r.ID] = i
		}
		var values strings.Builder
		args := make([]any, 0, len(part)*11)
		for i, r := range part {
			if last[r.ID] != i {
				continue
			}
			v := r.Version
			if version != "" {
				v = version
			}
			headings := r.Headings
			if headings == nil {
				headings = []string{}
			}
			if len(args) > 0 {
				values.WriteString(", ")
			}
			n := len(args)
			meta := []byte("{}")
			if len(r.Metadata) > 0 {
				meta, _ = json.Marshal(r.Metadata)
			}
			fmt.Fprintf(&values, "($%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d::vector, $%d::jsonb, $%d)", n+1, n+2, n+3, n+4, n+5, n+6, n+7, n+8, n+9, n+10, n+11)
			args = append(args, string(r.ID), r.Bucket, r.Key, string(r.Hash), r.Ordinal, headings, r.Text, v, pgv.NewVector(r.Vector).String(), string(meta), now)
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf(x.upsertSQL, values.String()), args...); err != nil {
			return err
		}
	}
	return nil
}

func (x *Index) delete(ctx context.Context, tx pgx.Tx, ids []freshen.ChunkID) error {
	if len(ids) == 0 {
		return nil
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	_, err := tx.Exec(ctx, `DELETE FROM `+x.table+` WHERE chunk_id = ANY($1)`, s)
	return err
}

// Search implements freshen.Index: the HNSW index's nearest neighbours by
// cosine distance. With a prefix, pgvector's iterative index scan keeps
// going until k rows pass the filter (or the table is exhausted).
func (x *Index) Search(ctx context.Context, q freshen.Query) ([]freshen.Hit, error) {
	if err := freshen.CheckDim(q.Vector, x.dim); err != nil {
		return nil, fmt.Errorf("pgvector: query: %w", err)
	}
	if q.K <= 0 {
		return nil, nil
	}
	vec := pgv.NewVector(q.Vector).String()
	var hits []freshen.Hit
	var err error
	if q.Prefix == "" && len(q.Filters) == 0 {
		// No filter: one query, no transaction.
		hits, err = scanHits(x.pool.Query(ctx, x.searchSQL, vec, q.K))
	} else {
		args := []any{vec, q.K}
		var conds []string
		if q.Prefix != "" {
			// starts_with, not LIKE: a key's % and _ are literal.
			args = append(args, q.Prefix)
			conds = append(conds, fmt.Sprintf("starts_with(key, $%d)", len(args)))
		}
		for _, f := range q.Filters {
			conds = append(conds, filterSQL(f, &args))
		}
		query := fmt.Sprintf(x.searchWhereSQL, strings.Join(conds, " AND "))
		// The iterative scan (set for this transaction only) keeps
		// reading the HNSW index until K rows pass the filters.
		err = pgx.BeginFunc(ctx, x.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL hnsw.iterative_scan = strict_order`); err != nil {
				return err
			}
			hits, err = scanHits(tx.Query(ctx, query, args...))
			return err
		})
	}
	if err != nil {
		return nil, fmt.Errorf("pgvector: search %s: %w", x.name, classify(err))
	}
	return hits, nil
}

// filterSQL is f as a condition on the jsonb metadata column, with its
// values appended to args: the same rules as freshen.Filter.Match (numbers
// as numbers, dates as times, else text; a list matches by any element).
func filterSQL(f freshen.Filter, args *[]any) string {
	arg := func(v any) string {
		*args = append(*args, v)
		return fmt.Sprintf("$%d", len(*args))
	}
	attr := arg(f.Attr)
	val := "metadata->" + attr
	text := "metadata->>" + attr
	switch f.Op {
	case "=", "!=":
		vals := f.Values
		if f.Op == "!=" {
			vals = vals[:1]
		}
		p := arg(vals)
		eq := fmt.Sprintf("(%s = ANY(%s::text[]) OR (jsonb_typeof(%s) = 'array' AND %s ?| %s::text[])", text, p, val, val, p)
		if nums, ok := numbers(vals); ok {
			eq += fmt.Sprintf(" OR (jsonb_typeof(%s) = 'number' AND (%s)::numeric = ANY(%s::numeric[]))", val, text, arg(nums))
		}
		eq += ")"
		if f.Op == "!=" {
			return fmt.Sprintf("(%s IS NULL OR NOT %s)", val, eq)
		}
		return eq
	}
	op := f.Op
	v := f.Values[0]
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		return fmt.Sprintf("(jsonb_typeof(%s) = 'number' AND (%s)::numeric %s %s::numeric)", val, text, op, arg(n))
	}
	if t, ok := freshen.ParseDate(v); ok {
		return fmt.Sprintf("(jsonb_typeof(%s) = 'string' AND %s ~ '%s' AND (%s)::timestamptz %s %s::timestamptz)", val, text, dateRE, text, op, arg(t))
	}
	return fmt.Sprintf("(jsonb_typeof(%s) = 'string' AND %s COLLATE \"C\" %s %s)", val, text, op, arg(v))
}

// dateRE is what a string must look like to be cast to a time: a valid
// calendar date, optionally followed by an RFC 3339 time.
const dateRE = `^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])(T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2}))?$`

// numbers parses every value as a number.
func numbers(vals []string) ([]float64, bool) {
	out := make([]float64, len(vals))
	for i, v := range vals {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return nil, false
		}
		out[i] = n
	}
	return out, true
}

// scanHits reads a search's rows.
func scanHits(rows pgx.Rows, err error) ([]freshen.Hit, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (freshen.Hit, error) {
		var h freshen.Hit
		var id, hash, meta string
		var dist float64
		err := r.Scan(&id, &h.Bucket, &h.Key, &hash, &h.Ordinal, &h.Headings, &h.Text, &h.Version, &meta, &dist)
		h.ID, h.Hash, h.Score = freshen.ChunkID(id), freshen.ChunkHash(hash), float32(1-dist)
		if meta != "{}" && meta != "" {
			_ = json.Unmarshal([]byte(meta), &h.Metadata)
		}
		if len(h.Headings) == 0 {
			h.Headings = nil
		}
		return h, err
	})
}

// page is how many rows Rows and Scan read per query.
const page = 1000

// Rows implements freshen.RowScanner with keyset pagination on the
// (bucket, key, chunk_id) index: memory holds one page.
func (x *Index) Rows(ctx context.Context, bucket string, fn func(freshen.Row) error) error {
	var afterKey, afterID string
	for {
		rows, err := x.pool.Query(ctx, x.rowsSQL, bucket, afterKey, afterID, page)
		if err != nil {
			return fmt.Errorf("pgvector: rows of %s: %w", x.name, classify(err))
		}
		var batch []freshen.Row
		for rows.Next() {
			r := freshen.Row{Bucket: bucket}
			var id, hash string
			if err := rows.Scan(&id, &r.Key, &hash, &r.Text, &r.Version); err != nil {
				rows.Close()
				return classify(err)
			}
			r.ID, r.Hash = freshen.ChunkID(id), freshen.ChunkHash(hash)
			batch = append(batch, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("pgvector: rows of %s: %w", x.name, classify(err))
		}
		for _, r := range batch {
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(batch) < page {
			return nil
		}
		afterKey, afterID = batch[len(batch)-1].Key, string(batch[len(batch)-1].ID)
	}
}

// Scan implements freshen.Scanner: every record with its vector, by id.
func (x *Index) Scan(ctx context.Context, fn func(freshen.Record) error) error {
	after := ""
	for {
		rows, err := x.pool.Query(ctx, x.scanSQL, after, page)
		if err != nil {
			return fmt.Errorf("pgvector: scan %s: %w", x.name, classify(err))
		}
		var batch []freshen.Record
		for rows.Next() {
			var r freshen.Record
			var id, hash, vec string
			if err := rows.Scan(&id, &r.Bucket, &r.Key, &hash, &r.Ordinal, &r.Headings, &r.Text, &r.Version, &vec); err != nil {
				rows.Close()
				return classify(err)
			}
			var v pgv.Vector
			if err := v.Parse(vec); err != nil {
				rows.Close()
				return fmt.Errorf("pgvector: scan %s: row %s: %w", x.name, id, err)
			}
			r.ID, r.Hash, r.Vector = freshen.ChunkID(id), freshen.ChunkHash(hash), v.Slice()
			if len(r.Headings) == 0 {
				r.Headings = nil
			}
			batch = append(batch, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("pgvector: scan %s: %w", x.name, classify(err))
		}
		for _, r := range batch {
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(batch) < page {
			return nil
		}
		after = string(batch[len(batch)-1].ID)
	}
}

// Count implements freshen.Scanner.
func (x *Index) Count(ctx context.Context) (int, error) {
	var n int
	if err := x.pool.QueryRow(ctx, `SELECT count(*) FROM `+x.table).Scan(&n); err != nil {
		return 0, fmt.Errorf("pgvector: count %s: %w", x.name, classify(err))
	}
	return n, nil
}

// Stamp implements freshen.Stamped; the table's identity is made at its
// first Stamp.
func (x *Index) Stamp(ctx context.Context) (self, partner string, err error) {
	_, err = x.pool.Exec(ctx, `INSERT INTO `+x.meta+` (name, value) VALUES ('self', md5(random()::text || clock_timestamp()::text))
		ON CONFLICT (name) DO NOTHING`)
	if err == nil {
		err = x.pool.QueryRow(ctx, `SELECT (SELECT value FROM `+x.meta+` WHERE name = 'self'),
			coalesce((SELECT value FROM `+x.meta+` WHERE name = 'partner'), '')`).Scan(&self, &partner)
	}
	if err != nil {
		return "", "", fmt.Errorf("pgvector: stamp of %s: %w", x.name, classify(err))
	}
	return self, partner, nil
}

// Pair implements freshen.Stamped. Paired with another ledger, the table
// forgets its fences: that ledger's lease tokens start again.
func (x *Index) Pair(ctx context.Context, partner string) error {
	err := pgx.BeginFunc(ctx, x.pool, func(tx pgx.Tx) error {
		var old string
		err := tx.QueryRow(ctx, `SELECT value FROM `+x.meta+` WHERE name = 'partner' FOR UPDATE`).Scan(&old)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if old == partner {
			return nil
		}
		if _, err := tx.Exec(ctx, `DELETE FROM `+x.fence); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO `+x.meta+` (name, value) VALUES ('partner', $1)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value`, partner)
		return err
	})
	if err != nil {
		return fmt.Errorf("pgvector: pair %s: %w", x.name, classify(err))
	}
	return nil
}

// classify marks errors that a retry cannot fix as permanent (bad data,
// a constraint, a wrong schema or privilege), and a server that cannot be
// reached (refused, reset, shutting down, not accepting connections yet)
// as freshen.ErrIndexUnavailable: the workers pause rather than spend the
// keys' attempts. Serialization failures and resource shortages stay
// plainly retryable.
func classify(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code[:2] == "08" || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03":
			return fmt.Errorf("%w: %w", freshen.ErrIndexUnavailable, err)
		}
		switch pe.Code[:2] {
		case "22", "23", "42", "2B", "0A", "28":
			return freshen.Permanent(err)
		}
		return err
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	if errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return fmt.Errorf("%w: %w", freshen.ErrIndexUnavailable, err)
	}
	return err
}
