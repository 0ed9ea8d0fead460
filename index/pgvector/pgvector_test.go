package pgvector_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/index/indextest"
	"github.com/freshen-io/freshen/index/pgvector"
	"github.com/freshen-io/freshen/internal/testenv"
	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopShared()
	os.Exit(code)
}

// open opens a fresh table on the package's PGlite server.
func open(t *testing.T, cfg pgvector.Config) *pgvector.Index {
	t.Helper()
	if cfg.DSN == "" {
		cfg.DSN = testenv.SharedPGlite(t).DSN
	}
	if cfg.Table == "" {
		cfg.Table = testenv.UniqueTable("chunks")
	}
	if cfg.Dim == 0 {
		cfg.Dim = indextest.Dim
	}
	x, err := pgvector.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

func TestConformance(t *testing.T) {
	newIndex := func(t *testing.T) freshen.Index { return open(t, pgvector.Config{}) }
	indextest.Run(t, newIndex)
	indextest.RunObjectWriter(t, newIndex)
	indextest.RunRowScanner(t, newIndex)
	t.Run("Metadata", func(t *testing.T) { indextest.RunMetadata(t, newIndex) })
}

// TestPlainSQL: an application reads the table with plain SQL, as the
// package documentation shows.
func TestPlainSQL(t *testing.T) {
	x := open(t, pgvector.Config{})
	defer x.Close()
	ctx := context.Background()
	err := x.Apply(ctx, freshen.ObjectWrite{Bucket: "docs", Key: "guide/100% sure.md", Version: "etag-1", Fence: 1,
		Upserts: []freshen.Record{{ID: "c1", Bucket: "docs", Key: "guide/100% sure.md", Hash: "h1", Ordinal: 0,
			Text: "the harbor", Headings: []string{"Guide", "Harbor"}, Vector: []float32{1, 0, 0}}}})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, testenv.SharedPGlite(t).DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var key, text, version string
	var headings []string
	var score float64
	err = conn.QueryRow(ctx, `SELECT key, text, headings, version, 1 - (embedding <=> '[1,0,0]') AS score FROM `+
		x.Table()+` ORDER BY embedding <=> '[1,0,0]' LIMIT 1`).Scan(&key, &text, &headings, &version, &score)
	if err != nil {
		t.Fatal(err)
	}
	if key != "guide/100% sure.md" || text != "the harbor" || strings.Join(headings, ">") != "Guide>Harbor" || version != "etag-1" || score < 0.999 {
		t.Fatalf("plain SQL read %q %q %v %q %v", key, text, headings, version, score)
	}
}

// TestExistingTable: with NoCreate the table must exist and match; a
// table of another dimension is refused, saying both.
func TestExistingTable(t *testing.T) {
	table := testenv.UniqueTable("existing")
	_, err := pgvector.Open(context.Background(), pgvector.Config{DSN: testenv.SharedPGlite(t).DSN, Table: table, Dim: 3, NoCreate: true})
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("NoCreate on a missing table: %v", err)
	}
	open(t, pgvector.Config{Table: table}).Close()
	open(t, pgvector.Config{Table: table, NoCreate: true}).Close()
	_, err = pgvector.Open(context.Background(), pgvector.Config{DSN: testenv.SharedPGlite(t).DSN, Table: table, Dim: 8})
	if !errors.Is(err, freshen.ErrDimension) || !strings.Contains(err.Error(), "vector(3)") || !strings.Contains(err.Error(), "8-dimensional") {
		t.Fatalf("an 8-d model on a 3-d table: %v", err)
	}
	// A table someone else made without freshen's columns.
	conn, err := pgx.Connect(context.Background(), testenv.SharedPGlite(t).DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	other := testenv.UniqueTable("foreign")
	if _, err := conn.Exec(context.Background(), `CREATE TABLE `+other+` (chunk_id text PRIMARY KEY, body text)`); err != nil {
		t.Fatal(err)
	}
	_, err = pgvector.Open(context.Background(), pgvector.Config{DSN: testenv.SharedPGlite(t).DSN, Table: other, Dim: 3, NoCreate: true})
	if err == nil || !strings.Contains(err.Error(), "column key text is missing") || !strings.Contains(err.Error(), "_fence is missing") {
		t.Fatalf("a foreign table: %v", err)
	}
	for _, bad := range []string{"drop table x; --", "a.b.c", "1table", strings.Repeat("x", 60)} {
		if _, err := pgvector.Open(context.Background(), pgvector.Config{DSN: "postgres://127.0.0.1:1/x", Table: bad, Dim: 3}); err == nil || !strings.Contains(err.Error(), "want letters") {
			t.Errorf("table %q: %v", bad, err)
		}
	}
}

func TestScanAndStamp(t *testing.T) {
	x := open(t, pgvector.Config{})
	defer x.Close()
	ctx := context.Background()
	var recs []freshen.Record
	for i := 0; i < 2500; i++ { // more than a page
		recs = append(recs, freshen.Record{ID: freshen.ChunkID(fmt.Sprintf("%05d", i)), Bucket: "b", Key: fmt.Sprintf("k%d", i%7),
			Hash: "h", Text: "t", Vector: []float32{1, float32(i), 0}})
	}
	if err := x.Upsert(ctx, recs); err != nil {
		t.Fatal(err)
	}
	n, err := x.Count(ctx)
	if err != nil || n != 2500 {
		t.Fatalf("Count = %d, %v", n, err)
	}
	seen := 0
	if err := x.Scan(ctx, func(r freshen.Record) error {
		if len(r.Vector) != 3 || fmt.Sprintf("%05d", int(r.Vector[1])) != string(r.ID) {
			t.Fatalf("scanned %+v", r)
		}
		seen++
		return nil
	}); err != nil || seen != 2500 {
		t.Fatalf("Scan saw %d, %v", seen, err)
	}
	rows := 0
	last := ""
	if err := x.Rows(ctx, "b", func(r freshen.Row) error {
		cur := r.Key + "\x00" + string(r.ID)
		if cur <= last {
			t.Fatalf("Rows out of order: %q after %q", cur, last)
		}
		last = cur
		rows++
		return nil
	}); err != nil || rows != 2500 {
		t.Fatalf("Rows saw %d, %v", rows, err)
	}
	self, partner, err := x.Stamp(ctx)
	if err != nil || self == "" || partner != "" {
		t.Fatalf("Stamp = %q %q %v", self, partner, err)
	}
	if err := x.Pair(ctx, "ledger-1"); err != nil {
		t.Fatal(err)
	}
	if s2, p2, _ := x.Stamp(ctx); s2 != self || p2 != "ledger-1" {
		t.Fatalf("after Pair: %q %q", s2, p2)
	}
	// Fences belong to one ledger's tokens: a new partner starts over.
	w := freshen.ObjectWrite{Bucket: "b", Key: "k0", Version: "v", Fence: 100, Upserts: []freshen.Record{recs[0]}}
	if err := x.Apply(ctx, w); err != nil {
		t.Fatal(err)
	}
	w.Fence = 1
	if err := x.Pair(ctx, "ledger-1"); err != nil {
		t.Fatal(err)
	}
	if err := x.Apply(ctx, w); !errors.Is(err, freshen.ErrStaleWrite) {
		t.Fatalf("the same partner again kept no fence: %v", err)
	}
	if err := x.Pair(ctx, "ledger-2"); err != nil {
		t.Fatal(err)
	}
	if err := x.Apply(ctx, w); err != nil {
		t.Fatalf("a new ledger's first token: %v", err)
	}
}

// TestFilteredSearchReturnsK: k hits under a prefix that few rows match,
// far from the query, when the HNSW index would stop at ef_search
// candidates (pgvector 0.8's iterative scan keeps going).
func TestFilteredSearchReturnsK(t *testing.T) {
	x := open(t, pgvector.Config{})
	ctx := context.Background()
	var recs []freshen.Record
	for i := 0; i < 3000; i++ {
		key, v := fmt.Sprintf("near/%04d.md", i), []float32{1, float32(i) / 3000, 0}
		if i%300 == 0 {
			key, v = fmt.Sprintf("far_%04d.md", i), []float32{0, 1, float32(i) / 3000}
		}
		recs = append(recs, freshen.Record{ID: freshen.ChunkID(fmt.Sprintf("id%04d", i)), Bucket: "b", Key: key, Hash: "h", Text: "t", Vector: v})
	}
	if err := x.Upsert(ctx, recs); err != nil {
		t.Fatal(err)
	}
	hits, err := x.Search(ctx, freshen.Query{Vector: []float32{1, 0, 0}, K: 10, Prefix: "far_"})
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 10 {
		t.Fatalf("%d hits under prefix far_, want the 10 that exist", len(hits))
	}
	for i := 1; i < len(hits); i++ {
		if hits[i].Score > hits[i-1].Score {
			t.Fatalf("hits not best first: %v", hits)
		}
	}
}

// TestPublishAndDrop: the published view follows Publish with replace,
// across tables of different dimensions, atomically; without replace it
// is only created; Drop removes a table but not one a view still reads.
func TestPublishAndDrop(t *testing.T) {
	ctx := context.Background()
	a := open(t, pgvector.Config{Dim: 3})
	b := open(t, pgvector.Config{Dim: 5})
	for i, x := range []*pgvector.Index{a, b} {
		vec := make([]float32, 3+2*i)
		vec[0] = 1
		key := fmt.Sprintf("from-%d.md", i)
		if err := x.Apply(ctx, freshen.ObjectWrite{Bucket: "docs", Key: key, Version: "v", Fence: 1,
			Upserts: []freshen.Record{{ID: freshen.ChunkID(key), Bucket: "docs", Key: key, Hash: "h", Text: key, Vector: vec}}}); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := pgx.Connect(ctx, testenv.SharedPGlite(t).DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	view := testenv.UniqueTable("live")
	reads := func() string {
		t.Helper()
		var key string
		if err := conn.QueryRow(ctx, `SELECT key FROM `+view).Scan(&key); err != nil {
			t.Fatal(err)
		}
		return key
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(a.Publish(ctx, view, false))
	must(b.Publish(ctx, view, false))
	if got := reads(); got != "from-0.md" {
		t.Fatalf("without replace the view moved: reads %s", got)
	}
	must(b.Publish(ctx, view, true))
	if got := reads(); got != "from-1.md" {
		t.Fatalf("after replace the view reads %s", got)
	}
	if err := b.Drop(ctx); err == nil {
		t.Fatal("dropped the table the view reads")
	}
	must(a.Drop(ctx))
	var gone bool
	must(conn.QueryRow(ctx, `SELECT to_regclass($1) IS NULL`, a.Table()).Scan(&gone))
	if !gone {
		t.Fatalf("%s still exists after Drop", a.Table())
	}
}
