// Package indextest is the conformance suite every freshen.Index passes:
// call Run from the implementation's tests with a constructor that returns
// a fresh, empty index.
package indextest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"testing"

	"github.com/freshen-io/freshen"
)

// Dim is the dimension of the indexes the suite asks for.
const Dim = 3

// Run checks the freshen.Index contract against fresh indexes. newIndex
// returns an empty index for vectors of Dim values; the suite closes it.
func Run(t *testing.T, newIndex func(t *testing.T) freshen.Index) {
	t.Run("DimensionIsEnforced", func(t *testing.T) {
		x := newIndex(t)
		defer x.Close()
		ctx := context.Background()
		if x.Dim() != Dim {
			t.Fatalf("Dim() = %d, want %d", x.Dim(), Dim)
		}
		err := x.Upsert(ctx, []freshen.Record{rec("ok", "k.md", vec(1, 0, 0)), rec("short", "k.md", []float32{1, 0})})
		if !errors.Is(err, freshen.ErrDimension) || !freshen.IsPermanent(err) {
			t.Fatalf("Upsert of a 2-d vector into a 3-d index: %v, want a permanent ErrDimension", err)
		}
		hits, err := x.Search(ctx, freshen.Query{Vector: vec(1, 0, 0), K: 10})
		must(t, err)
		if len(hits) != 0 {
			t.Fatalf("a failed Upsert wrote %d records", len(hits))
		}
		if _, err := x.Search(ctx, freshen.Query{Vector: []float32{1, 0, 0, 0}, K: 1}); !errors.Is(err, freshen.ErrDimension) {
			t.Fatalf("Search with a 4-d query: %v, want ErrDimension", err)
		}
		if err := x.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	})
	t.Run("SearchEmpty", func(t *testing.T) {
		x := newIndex(t)
		hits, err := x.Search(context.Background(), freshen.Query{Vector: vec(1, 0, 0), K: 3})
		if err != nil || len(hits) != 0 {
			t.Fatalf("Search on an empty index = %v, %v", hits, err)
		}
	})
	t.Run("TopKBestFirst", func(t *testing.T) {
		x := newIndex(t)
		ctx := context.Background()
		var recs []freshen.Record
		for i := 0; i < 20; i++ {
			angle := float64(i) * math.Pi / 40 // 0 .. almost 90 degrees from the query
			recs = append(recs, rec(fmt.Sprintf("id%02d", i), fmt.Sprintf("k/%02d.md", i), vec(math.Cos(angle), math.Sin(angle), 0)))
		}
		must(t, x.Upsert(ctx, recs))
		hits, err := x.Search(ctx, freshen.Query{Vector: vec(1, 0, 0), K: 5})
		must(t, err)
		if len(hits) != 5 {
			t.Fatalf("%d hits, want 5", len(hits))
		}
		for i, h := range hits {
			if want := fmt.Sprintf("id%02d", i); string(h.ID) != want {
				t.Fatalf("hit %d = %s, want %s (best first)", i, h.ID, want)
			}
			if i > 0 && h.Score > hits[i-1].Score {
				t.Fatalf("scores not descending: %v", hits)
			}
		}
		if math.Abs(float64(hits[0].Score)-1) > 1e-4 {
			t.Fatalf("cosine of identical directions = %v, want 1", hits[0].Score)
		}
		if h := hits[0]; h.Key != "k/00.md" || h.Text != "text of id00" || h.Bucket != "b" || h.Hash != "hash-id00" {
			t.Fatalf("hit fields = %+v", h)
		}
		all, err := x.Search(ctx, freshen.Query{Vector: vec(1, 0, 0), K: 100})
		must(t, err)
		if len(all) != 20 {
			t.Fatalf("K larger than the index: %d hits, want 20", len(all))
		}
	})
	t.Run("PrefixFilter", func(t *testing.T) {
		x := newIndex(t)
		ctx := context.Background()
		must(t, x.Upsert(ctx, []freshen.Record{
			rec("a", "docs/a.md", vec(1, 0, 0)), rec("b", "docs/sub/b.md", vec(0.9, 0.1, 0)),
			rec("c", "other/c.md", vec(1, 0, 0)), rec("d", "docsx/d.md", vec(1, 0, 0)),
		}))
		hits, err := x.Search(ctx, freshen.Query{Vector: vec(1, 0, 0), K: 10, Prefix: "docs/"})
		must(t, err)
		var keys []string
		for _, h := range hits {
			keys = append(keys, h.Key)
		}
		sort.Strings(keys)
		if fmt.Sprint(keys) != "[docs/a.md docs/sub/b.md]" {
			t.Fatalf("prefix docs/: %v", keys)
		}
	})
	t.Run("UpsertAndDeleteAreIdempotent", func(t *testing.T) {
		x := newIndex(t)
		ctx := context.Background()
		r := rec("a", "k.md", vec(1, 0, 0))
		must(t, x.Upsert(ctx, []freshen.Record{r}))
		must(t, x.Upsert(ctx, []freshen.Record{r}))
		r.Text, r.Vector = "replaced", vec(0, 1, 0)
		must(t, x.Upsert(ctx, []freshen.Record{r}))
		hits, err := x.Search(ctx, freshen.Query{Vector: vec(0, 1, 0), K: 10})
		must(t, err)
		if len(hits) != 1 || hits[0].Text != "replaced" || hits[0].Score < 0.999 {
			t.Fatalf("after re-upserts: %+v", hits)
		}
		must(t, x.Delete(ctx, []freshen.ChunkID{"a", "never-existed"}))
		must(t, x.Delete(ctx, []freshen.ChunkID{"a"}))
		must(t, x.Delete(ctx, nil))
		must(t, x.Upsert(ctx, nil))
		hits, err = x.Search(ctx, freshen.Query{Vector: vec(0, 1, 0), K: 10})
		must(t, err)
		if len(hits) != 0 {
			t.Fatalf("after delete: %+v", hits)
		}
	})
	t.Run("UnnormalizedVectors", func(t *testing.T) {
		x := newIndex(t)
		ctx := context.Background()
		must(t, x.Upsert(ctx, []freshen.Record{rec("long", "k", vec(10, 0, 0)), rec("short", "k2", vec(0.1, 0.1, 0))}))
		hits, err := x.Search(ctx, freshen.Query{Vector: vec(3, 0, 0), K: 2})
		must(t, err)
		if hits[0].ID != "long" || math.Abs(float64(hits[0].Score)-1) > 1e-4 || math.Abs(float64(hits[1].Score)-math.Sqrt2/2) > 1e-4 {
			t.Fatalf("cosine must ignore vector length: %+v", hits)
		}
	})
}

func vec(x, y, z float64) []float32 { return []float32{float32(x), float32(y), float32(z)} }

func rec(id, key string, v []float32) freshen.Record {
	return freshen.Record{ID: freshen.ChunkID(id), Bucket: "b", Key: key, Hash: freshen.ChunkHash("hash-" + id), Text: "text of " + id, Vector: v}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
