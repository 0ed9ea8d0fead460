package embedded

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/index/indextest"
)

func setup(t *testing.T) (*Index, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "index.db")
	x, err := Open(context.Background(), path, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	return x, path
}

func rec(id, key string, v ...float32) freshen.Record {
	return freshen.Record{ID: freshen.ChunkID(id), Bucket: "b", Key: key, Hash: freshen.ChunkHash("h" + id), Text: "text of " + id, Headings: []string{"H"}, Vector: v}
}

func TestSearchTopKAndPrefix(t *testing.T) {
	ctx := context.Background()
	x, _ := setup(t)
	must(t, x.Upsert(ctx, []freshen.Record{
		rec("a", "docs/a.md", 1, 0, 0),
		rec("b", "docs/b.md", 0.9, 0.1, 0),
		rec("c", "other/c.md", 0.95, 0.05, 0),
		rec("d", "docs/d.md", 0, 1, 0),
	}))
	hits, err := x.Search(ctx, freshen.Query{Vector: []float32{1, 0, 0}, K: 2})
	must(t, err)
	if len(hits) != 2 || hits[0].ID != "a" || hits[1].ID != "c" {
		t.Fatalf("hits = %+v", hits)
	}
	if hits[0].Text != "text of a" || hits[0].Headings[0] != "H" || hits[0].Score < 0.999 {
		t.Fatalf("hit = %+v", hits[0])
	}
	hits, err = x.Search(ctx, freshen.Query{Vector: []float32{1, 0, 0}, K: 10, Prefix: "docs/"})
	must(t, err)
	if len(hits) != 3 || hits[0].ID != "a" || hits[1].ID != "b" || hits[2].ID != "d" {
		t.Fatalf("prefix hits = %+v", hits)
	}
}

func TestUpsertDeleteIdempotent(t *testing.T) {
	ctx := context.Background()
	x, _ := setup(t)
	for i := 0; i < 2; i++ {
		must(t, x.Upsert(ctx, []freshen.Record{rec("a", "k", 1, 0, 0), rec("b", "k", 0, 1, 0)}))
	}
	must(t, x.Delete(ctx, []freshen.ChunkID{"a", "missing"}))
	must(t, x.Delete(ctx, []freshen.ChunkID{"a"}))
	if n, _ := x.Count(ctx); n != 1 {
		t.Fatalf("count = %d", n)
	}
	hits, _ := x.Search(ctx, freshen.Query{Vector: []float32{1, 0, 0}, K: 5})
	if len(hits) != 1 || hits[0].ID != "b" {
		t.Fatalf("hits = %+v", hits)
	}
}

func TestPersistenceAndOtherWriters(t *testing.T) {
	ctx := context.Background()
	x, path := setup(t)
	must(t, x.Upsert(ctx, []freshen.Record{rec("a", "k", 1, 0, 0)}))
	if _, err := x.Search(ctx, freshen.Query{Vector: []float32{1, 0, 0}, K: 1}); err != nil {
		t.Fatal(err)
	}
	// A second handle (another process in real life) writes.
	y, err := Open(ctx, path, 3)
	must(t, err)
	must(t, y.Upsert(ctx, []freshen.Record{rec("z", "k2", 0, 1, 0)}))
	must(t, y.Delete(ctx, []freshen.ChunkID{"a"}))
	y.Close()
	hits, err := x.Search(ctx, freshen.Query{Vector: []float32{0, 1, 0}, K: 5})
	must(t, err)
	if len(hits) != 1 || hits[0].ID != "z" {
		t.Fatalf("stale view after another writer: %+v", hits)
	}
	x.Close()
	x2, err := Open(ctx, path, 3)
	must(t, err)
	defer x2.Close()
	var ids []string
	must(t, x2.Scan(ctx, func(r freshen.Record) error { ids = append(ids, string(r.ID)+"@"+r.Key); return nil }))
	if fmt.Sprint(ids) != "[z@k2]" {
		t.Fatalf("after reopen: %v", ids)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestRefusesAnotherModelsIndex: an index.db written with one model's
// dimension is not opened for another's, where search would silently
// skip every record.
func TestRefusesAnotherModelsIndex(t *testing.T) {
	ctx := context.Background()
	x, path := setup(t)
	must(t, x.Upsert(ctx, []freshen.Record{rec("a", "k", 1, 0, 0)}))
	x.Close()
	if _, err := Open(ctx, path, 512); !errors.Is(err, freshen.ErrDimension) || !strings.Contains(err.Error(), "3-dimensional") {
		t.Fatalf("Open with another dimension: %v", err)
	}
}

func TestConformance(t *testing.T) {
	newIndex := func(t *testing.T) freshen.Index {
		x, _ := setup(t)
		return x
	}
	indextest.Run(t, newIndex)
	indextest.RunRowScanner(t, newIndex)
	t.Run("Metadata", func(t *testing.T) { indextest.RunMetadata(t, newIndex) })
}
