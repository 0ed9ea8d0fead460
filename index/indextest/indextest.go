// Package indextest is the conformance suite every freshen.Index passes:
// call Run from the implementation's tests with a constructor that returns
// a fresh, empty index.
package indextest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
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
	t.Run("PrefixIsLiteral", func(t *testing.T) {
		x := newIndex(t)
		ctx := context.Background()
		keys := []string{"100%/a.md", "100x/b.md", "a_b/c.md", "axb/d.md", "über/e.md", "uber/f.md", `back\slash/g.md`, "back/h.md", "plain.md"}
		var recs []freshen.Record
		for i, k := range keys {
			recs = append(recs, rec(fmt.Sprintf("r%d", i), k, vec(1, float64(i)/100, 0)))
		}
		must(t, x.Upsert(ctx, recs))
		for prefix, want := range map[string]string{
			"100%":    "[100%/a.md]",
			"a_b":     "[a_b/c.md]",
			"über":    "[über/e.md]",
			`back\`:   `[back\slash/g.md]`,
			"nothing": "[]",
		} {
			hits, err := x.Search(ctx, freshen.Query{Vector: vec(1, 0, 0), K: 20, Prefix: prefix})
			must(t, err)
			if got := hitKeys(hits); got != want {
				t.Errorf("prefix %q: %s, want %s (a literal prefix)", prefix, got, want)
			}
		}
		hits, err := x.Search(ctx, freshen.Query{Vector: vec(1, 0, 0), K: 20})
		must(t, err)
		if len(hits) != len(keys) {
			t.Errorf("empty prefix: %d hits, want all %d", len(hits), len(keys))
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

// RunObjectWriter checks the freshen.ObjectWriter contract, for indexes
// that applications read directly; they are RowScanners too.
func RunObjectWriter(t *testing.T, newIndex func(t *testing.T) freshen.Index) {
	t.Run("ApplyWritesAndDeletes", func(t *testing.T) {
		x := newIndex(t)
		w := x.(freshen.ObjectWriter)
		ctx := context.Background()
		must(t, w.Apply(ctx, freshen.ObjectWrite{Bucket: "b", Key: "k.md", Version: "v1", Fence: 5,
			Upserts: []freshen.Record{rec("a", "k.md", vec(1, 0, 0)), rec("b", "k.md", vec(0, 1, 0))}}))
		must(t, w.Apply(ctx, freshen.ObjectWrite{Bucket: "b", Key: "k.md", Version: "v2", Fence: 6,
			Upserts: []freshen.Record{rec("c", "k.md", vec(0, 0, 1))}, Deletes: []freshen.ChunkID{"a", "gone-already"}}))
		// A retry of the same write (equal fence) is applied again.
		must(t, w.Apply(ctx, freshen.ObjectWrite{Bucket: "b", Key: "k.md", Version: "v2", Fence: 6,
			Upserts: []freshen.Record{rec("c", "k.md", vec(0, 0, 1))}, Deletes: []freshen.ChunkID{"a"}}))
		rows := rowsOf(t, x, "b")
		if got := fmt.Sprint(rows); got != "[b@v1 c@v2]" {
			t.Fatalf("rows after two writes = %s, want [b@v1 c@v2]", got)
		}
	})
	t.Run("StaleWritesChangeNothing", func(t *testing.T) {
		x := newIndex(t)
		w := x.(freshen.ObjectWriter)
		ctx := context.Background()
		must(t, w.Apply(ctx, freshen.ObjectWrite{Bucket: "b", Key: "k.md", Version: "new", Fence: 10,
			Upserts: []freshen.Record{rec("n", "k.md", vec(1, 0, 0))}}))
		// A worker that stalled past its lease (an older fence) writes
		// its older version: refused whole.
		err := w.Apply(ctx, freshen.ObjectWrite{Bucket: "b", Key: "k.md", Version: "old", Fence: 9,
			Upserts: []freshen.Record{rec("o", "k.md", vec(0, 1, 0))}, Deletes: []freshen.ChunkID{"n"}})
		if !errors.Is(err, freshen.ErrStaleWrite) {
			t.Fatalf("a write with an older fence: %v, want ErrStaleWrite", err)
		}
		if got := fmt.Sprint(rowsOf(t, x, "b")); got != "[n@new]" {
			t.Fatalf("rows after a stale write = %s, want [n@new]", got)
		}
		// The fence outlives the rows: after the key is deleted, a stale
		// write cannot bring it back.
		must(t, w.Apply(ctx, freshen.ObjectWrite{Bucket: "b", Key: "k.md", Fence: 11, Deletes: []freshen.ChunkID{"n"}}))
		err = w.Apply(ctx, freshen.ObjectWrite{Bucket: "b", Key: "k.md", Version: "old", Fence: 10,
			Upserts: []freshen.Record{rec("o", "k.md", vec(0, 1, 0))}})
		if !errors.Is(err, freshen.ErrStaleWrite) {
			t.Fatalf("a stale write after a delete: %v, want ErrStaleWrite", err)
		}
		if rows := rowsOf(t, x, "b"); len(rows) != 0 {
			t.Fatalf("a stale write resurrected %v", rows)
		}
		// Fences are per key.
		must(t, w.Apply(ctx, freshen.ObjectWrite{Bucket: "b", Key: "other.md", Version: "v", Fence: 1,
			Upserts: []freshen.Record{rec("x", "other.md", vec(1, 0, 0))}}))
	})
	t.Run("ApplyIsAllOrNothing", func(t *testing.T) {
		x := newIndex(t)
		w := x.(freshen.ObjectWriter)
		ctx := context.Background()
		must(t, w.Apply(ctx, freshen.ObjectWrite{Bucket: "b", Key: "k.md", Version: "v1", Fence: 1,
			Upserts: []freshen.Record{rec("a", "k.md", vec(1, 0, 0))}}))
		err := w.Apply(ctx, freshen.ObjectWrite{Bucket: "b", Key: "k.md", Version: "v2", Fence: 2,
			Upserts: []freshen.Record{rec("b", "k.md", vec(1, 0, 0)), rec("bad", "k.md", []float32{1, 0})}, Deletes: []freshen.ChunkID{"a"}})
		if !errors.Is(err, freshen.ErrDimension) {
			t.Fatalf("Apply with a 2-d vector: %v, want ErrDimension", err)
		}
		if got := fmt.Sprint(rowsOf(t, x, "b")); got != "[a@v1]" {
			t.Fatalf("rows after a failed Apply = %s, want [a@v1]", got)
		}
	})
	t.Run("ReadersSeeWholeVersions", func(t *testing.T) {
		x := newIndex(t)
		w := x.(freshen.ObjectWriter)
		_, isolated := x.(freshen.Isolated)
		ctx := context.Background()
		// Each version of the object is 6 chunks whose texts all name
		// the version; a reader of an Isolated index must see exactly
		// one version's rows, and of any other at least one version
		// whole (never half of an object and nothing of the rest).
		write := func(v int) error {
			var ups []freshen.Record
			for i := 0; i < 6; i++ {
				r := rec(fmt.Sprintf("v%d-%d", v, i), "k.md", vec(1, float64(i)/10, 0))
				r.Text = fmt.Sprintf("version %d", v)
				ups = append(ups, r)
			}
			var dels []freshen.ChunkID
			for i := 0; v > 0 && i < 6; i++ {
				dels = append(dels, freshen.ChunkID(fmt.Sprintf("v%d-%d", v-1, i)))
			}
			return w.Apply(ctx, freshen.ObjectWrite{Bucket: "b", Key: "k.md", Version: fmt.Sprint(v), Fence: int64(v + 1), Upserts: ups, Deletes: dels})
		}
		must(t, write(0))
		done := make(chan error, 1)
		go func() {
			for v := 1; v <= 15; v++ {
				if err := write(v); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		for reads := 0; ; reads++ {
			select {
			case err := <-done:
				must(t, err)
				if reads == 0 {
					t.Fatal("no search ran while the object was rewritten")
				}
				return
			default:
			}
			hits, err := x.Search(ctx, freshen.Query{Vector: vec(1, 0, 0), K: 20, Prefix: "k.md"})
			must(t, err)
			texts := map[string]int{}
			whole := false
			for _, h := range hits {
				texts[h.Text]++
				whole = whole || texts[h.Text] == 6
			}
			if isolated && (len(hits) != 6 || len(texts) != 1) || !whole {
				t.Fatalf("a reader saw %d rows of versions %v during a rewrite (isolated: %v)", len(hits), texts, isolated)
			}
		}
	})
}

// RunRowScanner checks the freshen.RowScanner contract (what verify
// needs).
func RunRowScanner(t *testing.T, newIndex func(t *testing.T) freshen.Index) {
	t.Run("RowsInKeyOrder", func(t *testing.T) {
		x := newIndex(t)
		ctx := context.Background()
		must(t, x.Upsert(ctx, []freshen.Record{rec("z", "a.md", vec(1, 0, 0)), rec("y", "b.md", vec(1, 0, 0)),
			rec("a", "b.md", vec(1, 0, 0)), rec("m", "a b.md", vec(1, 0, 0))}))
		other := rec("o", "a.md", vec(1, 0, 0))
		other.Bucket = "other-bucket"
		must(t, x.Upsert(ctx, []freshen.Record{other}))
		var got []string
		must(t, x.(freshen.RowScanner).Rows(ctx, "b", func(r freshen.Row) error {
			if r.Bucket != "b" || r.Hash != freshen.ChunkHash("hash-"+string(r.ID)) || r.Text != "text of "+string(r.ID) {
				t.Errorf("row %+v", r)
			}
			got = append(got, r.Key+"/"+string(r.ID))
			return nil
		}))
		if fmt.Sprint(got) != "[a b.md/m a.md/z b.md/a b.md/y]" {
			t.Fatalf("rows = %v, want (key, id) order of bucket b only", got)
		}
	})
}

// rowsOf lists a bucket's rows as "id@version", in order.
func rowsOf(t *testing.T, x freshen.Index, bucket string) []string {
	t.Helper()
	var out []string
	must(t, x.(freshen.RowScanner).Rows(context.Background(), bucket, func(r freshen.Row) error {
		out = append(out, string(r.ID)+"@"+r.Version)
		return nil
	}))
	sort.Strings(out)
	return out
}

func hitKeys(hits []freshen.Hit) string {
	var keys []string
	for _, h := range hits {
		keys = append(keys, h.Key)
	}
	sort.Strings(keys)
	return fmt.Sprint(keys)
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

// RunMetadata checks that records keep their metadata and that search
// filters on it: equality, any-of, not-equal, numeric and date ranges,
// list attributes; filters combine with a prefix and still return up to
// K hits.
func RunMetadata(t *testing.T, newIndex func(t *testing.T) freshen.Index) {
	ctx := context.Background()
	x := newIndex(t)
	var recs []freshen.Record
	for i := range 12 {
		r := rec(fmt.Sprintf("m%02d", i), fmt.Sprintf("dept/%d.md", i), vec(1, float64(i)/100, 0))
		r.Metadata = map[string]any{
			"dept":      []string{"sales", "support", "hr"}[i%3],
			"year":      float64(2020 + i),
			"published": fmt.Sprintf("2024-%02d-01", i+1),
			"tags":      []string{"t" + strconv.Itoa(i%2), "all"},
		}
		recs = append(recs, r)
	}
	if err := x.Upsert(ctx, recs); err != nil {
		t.Fatal(err)
	}
	search := func(prefix string, k int, filters ...string) []string {
		t.Helper()
		var fs []freshen.Filter
		for _, s := range filters {
			f, err := freshen.ParseFilter(s)
			if err != nil {
				t.Fatal(err)
			}
			fs = append(fs, f)
		}
		hits, err := x.Search(ctx, freshen.Query{Vector: vec(1, 0, 0), K: k, Prefix: prefix, Filters: fs})
		if err != nil {
			t.Fatalf("search %v: %v", filters, err)
		}
		var ids []string
		for _, h := range hits {
			ids = append(ids, string(h.ID))
			if h.Metadata["dept"] == nil {
				t.Fatalf("hit %s without its metadata: %v", h.ID, h.Metadata)
			}
		}
		slices.Sort(ids)
		return ids
	}
	cases := []struct {
		filters []string
		want    string
	}{
		{[]string{"dept=sales"}, "m00 m03 m06 m09"},
		{[]string{"dept=sales|hr"}, "m00 m02 m03 m05 m06 m08 m09 m11"},
		{[]string{"dept!=sales", "year<2025"}, "m01 m02 m04"},
		{[]string{"year>=2029"}, "m09 m10 m11"},
		{[]string{"year>2020", "year<=2022"}, "m01 m02"},
		{[]string{"published>=2024-11-01"}, "m10 m11"},
		{[]string{"published<2024-02-15", "dept=sales"}, "m00"},
		{[]string{"tags=t1", "dept=support"}, "m01 m07"},
		{[]string{"tags=all", "year>=2030"}, "m10 m11"},
		{[]string{"nosuch=x"}, ""},
	}
	for _, c := range cases {
		if got := strings.Join(search("", 20, c.filters...), " "); got != c.want {
			t.Errorf("filters %v: %q, want %q", c.filters, got, c.want)
		}
	}
	// K hits even when the nearest chunks do not match.
	if got := search("", 2, "dept=hr"); len(got) != 2 {
		t.Errorf("K=2 with a filter: %v", got)
	}
	if got := strings.Join(search("dept/1", 20, "dept=support"), " "); got != "m01 m10" {
		t.Errorf("prefix and filter: %q", got)
	}
}
