package weaviate_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"testing"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/index/weaviate"
)

// TestStampAndPair: the identity is made once and shared by every Index
// on the collection; Pair with the same partner keeps the fences, with
// another forgets them (and keeps the identity).
func TestStampAndPair(t *testing.T) {
	ctx := context.Background()
	x := open(t, weaviate.Config{})
	self, partner, err := x.Stamp(ctx)
	if err != nil || !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(self) || partner != "" {
		t.Fatalf("first Stamp = %q, %q, %v; want a random identity and no partner", self, partner, err)
	}
	again := open(t, weaviate.Config{Collection: x.Collection()})
	if s, p, err := again.Stamp(ctx); s != self || p != "" || err != nil {
		t.Fatalf("Stamp of another Index on the collection = %q, %q, %v; want %q", s, p, err, self)
	}
	if s, _, err := open(t, weaviate.Config{}).Stamp(ctx); s == self || err != nil {
		t.Fatalf("another collection's Stamp = %q, %v; want another identity", s, err)
	}

	write := func(fence int64, version string) error {
		return x.Apply(ctx, freshen.ObjectWrite{Bucket: "b", Key: "k.md", Version: version, Fence: fence,
			Upserts: []freshen.Record{{ID: "a", Bucket: "b", Key: "k.md", Text: version, Vector: []float32{1, 0, 0}}}})
	}
	stamp := func(wantPartner string) {
		t.Helper()
		if s, p, err := again.Stamp(ctx); s != self || p != wantPartner || err != nil {
			t.Fatalf("Stamp = %q, %q, %v; want %q, %q", s, p, err, self, wantPartner)
		}
	}
	if err := x.Pair(ctx, "ledger-1"); err != nil {
		t.Fatal(err)
	}
	stamp("ledger-1")
	if err := write(10, "v10"); err != nil {
		t.Fatal(err)
	}
	if err := write(3, "v3"); !errors.Is(err, freshen.ErrStaleWrite) {
		t.Fatalf("fence 3 after 10: %v, want ErrStaleWrite", err)
	}
	// The same partner again: the fences stay.
	if err := again.Pair(ctx, "ledger-1"); err != nil {
		t.Fatal(err)
	}
	stamp("ledger-1")
	if err := write(3, "v3"); !errors.Is(err, freshen.ErrStaleWrite) {
		t.Fatalf("fence 3 after re-pairing with the same ledger: %v, want ErrStaleWrite", err)
	}
	// Another ledger: its tokens start again, and fence 3 is accepted.
	if err := again.Pair(ctx, "ledger-2"); err != nil {
		t.Fatal(err)
	}
	stamp("ledger-2")
	if n := fenceObjects(t, x); n != 2 {
		t.Fatalf("%d objects in the fence class after Pair, want the 2 stamp objects", n)
	}
	if err := write(3, "v3"); err != nil {
		t.Fatalf("fence 3 after pairing with another ledger: %v", err)
	}
	if err := write(2, "v2"); !errors.Is(err, freshen.ErrStaleWrite) {
		t.Fatalf("fence 2 after 3: %v, want ErrStaleWrite", err)
	}
	var got []string
	if err := x.Rows(ctx, "b", func(r freshen.Row) error { got = append(got, string(r.ID)+"@"+r.Version); return nil }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[a@v3]" {
		t.Fatalf("rows %v, want [a@v3]", got)
	}
	if n, err := x.Count(ctx); n != 1 || err != nil {
		t.Fatalf("Count = %d, %v; want 1 (stamp and fence objects are not records)", n, err)
	}
}

// TestPairForgetsManyFences: more fences than Weaviate deletes in one
// batch request (QUERY_MAXIMUM_RESULTS, 10,000 by default) are all
// deleted.
func TestPairForgetsManyFences(t *testing.T) {
	ctx := context.Background()
	x := open(t, weaviate.Config{})
	if _, _, err := x.Stamp(ctx); err != nil {
		t.Fatal(err)
	}
	if err := x.Pair(ctx, "ledger-1"); err != nil {
		t.Fatal(err)
	}
	const n = 10050
	fence := x.Collection() + "Fence"
	for start := 0; start < n; start += 1000 {
		var objs []map[string]any
		for i := start; i < min(start+1000, n); i++ {
			key := fmt.Sprintf("k%05d.md", i)
			objs = append(objs, map[string]any{"class": fence, "id": weaviate.FenceID("b", key),
				"properties": map[string]any{"bucket": "b", "key": key, "fence": 7}})
		}
		if code := rest(t, http.MethodPost, "/v1/batch/objects", map[string]any{"objects": objs}, nil); code != 200 {
			t.Fatalf("batch: HTTP %d", code)
		}
	}
	if got := fenceObjects(t, x); got != n+2 {
		t.Fatalf("%d fence objects, want %d", got, n+2)
	}
	if err := x.Pair(ctx, "ledger-2"); err != nil {
		t.Fatal(err)
	}
	if got := fenceObjects(t, x); got != 2 {
		t.Fatalf("%d fence objects after Pair, want the 2 stamp objects", got)
	}
	if _, p, err := x.Stamp(ctx); p != "ledger-2" || err != nil {
		t.Fatalf("partner %q, %v", p, err)
	}
}

// fenceObjects counts the objects of x's fence class.
func fenceObjects(t *testing.T, x *weaviate.Index) int {
	t.Helper()
	class := x.Collection() + "Fence"
	var resp struct {
		Data map[string]map[string][]struct {
			Meta struct{ Count int } `json:"meta"`
		} `json:"data"`
	}
	q := map[string]any{"query": "{ Aggregate { " + class + " { meta { count } } } }"}
	if code := rest(t, http.MethodPost, "/v1/graphql", q, &resp); code != 200 || len(resp.Data["Aggregate"][class]) != 1 {
		t.Fatalf("count the fence class: HTTP %d, %+v", code, resp)
	}
	return resp.Data["Aggregate"][class][0].Meta.Count
}

// TestCountAndScan: Count and Scan see every record, vector and all
// fields intact, over several of Scan's pages.
func TestCountAndScan(t *testing.T) {
	ctx := context.Background()
	x := open(t, weaviate.Config{})
	if n, err := x.Count(ctx); n != 0 || err != nil {
		t.Fatalf("Count of an empty collection = %d, %v", n, err)
	}
	if err := x.Scan(ctx, func(r freshen.Record) error { return fmt.Errorf("record %s in an empty collection", r.ID) }); err != nil {
		t.Fatal(err)
	}
	const n = 1200
	want := map[freshen.ChunkID]freshen.Record{}
	var recs []freshen.Record
	for i := 0; i < n; i++ {
		r := freshen.Record{ID: freshen.ChunkID(fmt.Sprintf("id%04d", i)), Bucket: []string{"b", "b2"}[i%2],
			Key: fmt.Sprintf("dir/%03d.md", i/3), Hash: freshen.ChunkHash(fmt.Sprintf("h%d", i)), Ordinal: i % 3,
			Text: fmt.Sprintf("text %d", i), Version: fmt.Sprintf("v%d", i%5),
			Vector: []float32{float32(i) + 0.1, -float32(i%7) / 3, 1e-7 * float32(i+1)}}
		if i%4 == 0 {
			r.Headings = []string{"Top", fmt.Sprintf("Section %d", i)}
		}
		recs = append(recs, r)
		want[r.ID] = r
	}
	if err := x.Upsert(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if got, err := x.Count(ctx); got != n || err != nil {
		t.Fatalf("Count = %d, %v; want %d", got, err, n)
	}
	seen := map[freshen.ChunkID]bool{}
	err := x.Scan(ctx, func(r freshen.Record) error {
		if seen[r.ID] {
			t.Errorf("record %s twice", r.ID)
		}
		seen[r.ID] = true
		if w := want[r.ID]; !reflect.DeepEqual(r, w) {
			t.Errorf("scanned %+v\nwant    %+v", r, w)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != n {
		t.Fatalf("Scan saw %d records, want %d", len(seen), n)
	}
	stop := errors.New("stop")
	calls := 0
	if err := x.Scan(ctx, func(freshen.Record) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("an error from fn: %v after %d calls", err, calls)
	}
}
