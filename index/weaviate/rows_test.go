package weaviate_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/index/weaviate"
	"github.com/google/uuid"
)

// TestRowsYieldsForeignObjects: objects another program wrote (no pos or
// key_hex, a pos or UUID that does not match the chunk id, no chunk id,
// no or a blank bucket) come after the ordered rows of their bucket (every bucket
// for those without one), with IDs that Delete removes, and only them.
func TestRowsYieldsForeignObjects(t *testing.T) {
	defer weaviate.SetRowsPage(5)()
	x := open(t, weaviate.Config{})
	ctx := context.Background()
	pos := func(bucket, key, id string) string {
		return hex.EncodeToString([]byte(bucket + "\x00" + key + "\x00" + id))
	}
	var recs []freshen.Record
	ordered := map[string][]string{}
	for i := 0; i < 12; i++ {
		b := []string{"b", "b", "b2"}[i%3]
		key, id := fmt.Sprintf("m/%02d.md", i), fmt.Sprintf("id%02d", i)
		recs = append(recs, freshen.Record{ID: freshen.ChunkID(id), Bucket: b, Key: key, Hash: "h", Text: "t", Vector: []float32{1, 0, 0}})
		ordered[b] = append(ordered[b], key+"|"+id)
	}
	if err := x.Upsert(ctx, recs); err != nil {
		t.Fatal(err)
	}

	// rows lists Rows of bucket: the ordered part, which must be the
	// upserted rows in order, and the rest (sorted).
	rows := func(bucket string) (foreign []string) {
		t.Helper()
		var got []string
		if err := x.Rows(ctx, bucket, func(r freshen.Row) error {
			got = append(got, r.Key+"|"+string(r.ID))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		want := ordered[bucket]
		if len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
			t.Fatalf("rows of %s:\n%q\nwant them to start with\n%q", bucket, got, want)
		}
		foreign = got[len(want):]
		sort.Strings(foreign)
		return foreign
	}
	insert := func(id string, props map[string]any) {
		t.Helper()
		obj := map[string]any{"class": x.Collection(), "id": id, "properties": props, "vector": []float32{0, 1, 0}}
		var res []struct {
			Result struct {
				Errors any `json:"errors"`
			} `json:"result"`
		}
		if code := rest(t, http.MethodPost, "/v1/batch/objects", map[string]any{"objects": []any{obj}}, &res); code != 200 ||
			len(res) != 1 || res[0].Result.Errors != nil {
			t.Fatalf("insert %s: HTTP %d, %+v", id, code, res)
		}
	}
	remove := func(foreign []string) {
		t.Helper()
		var ids []freshen.ChunkID
		for _, f := range foreign {
			ids = append(ids, freshen.ChunkID(f[strings.LastIndex(f, "|")+1:]))
		}
		if err := x.Delete(ctx, ids); err != nil {
			t.Fatal(err)
		}
	}
	check := func(bucket string, want ...string) {
		t.Helper()
		sort.Strings(want)
		if got := rows(bucket); fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
			t.Fatalf("foreign rows of %s: %q, want %q", bucket, got, want)
		}
	}
	check("b")
	check("b2")

	// Each kind alone (so that no other kind makes Rows look), then all.
	noBucket, emptyBucket, blankBucket := uuid.NewString(), uuid.NewString(), uuid.NewString()
	noChunkID, copied := uuid.NewString(), uuid.NewString()
	kinds := []struct {
		insert   func()
		b, b2    []string
		deleteIn string
	}{
		{func() {
			insert(weaviate.ObjectID("f1"), map[string]any{"chunk_id": "f1", "bucket": "b", "key": "a.md", "text": "x"})
		},
			[]string{"a.md|f1"}, nil, "b"},
		{func() { insert(noChunkID, map[string]any{"bucket": "b", "key": "z.md"}) },
			[]string{"z.md|uuid:" + noChunkID}, nil, "b"},
		{func() { insert(noBucket, map[string]any{"text": "no bucket"}) },
			[]string{"|uuid:" + noBucket}, []string{"|uuid:" + noBucket}, "b2"},
		{func() { insert(emptyBucket, map[string]any{"bucket": "", "chunk_id": "f4", "key": "k"}) },
			[]string{"k|uuid:" + emptyBucket}, []string{"k|uuid:" + emptyBucket}, "b"},
		{func() { insert(blankBucket, map[string]any{"bucket": " \t", "key": "k2"}) },
			[]string{"k2|uuid:" + blankBucket}, []string{"k2|uuid:" + blankBucket}, "b2"},
		// A copy of a row of b under another UUID: the row stays ordered.
		{func() {
			insert(copied, map[string]any{"chunk_id": "id00", "bucket": "b", "key": "m/00.md", "pos": pos("b", "m/00.md", "id00"),
				"key_hex": hex.EncodeToString([]byte("m/00.md"))})
		}, []string{"m/00.md|uuid:" + copied}, nil, "b"},
		// Its own UUID but the pos of another key.
		{func() {
			insert(weaviate.ObjectID("f6"), map[string]any{"chunk_id": "f6", "bucket": "b", "key": "m/05.md", "pos": pos("b", "m/04.md", "f6")})
		}, []string{"m/05.md|f6"}, nil, "b"},
		{func() {
			insert(weaviate.ObjectID("f7"), map[string]any{"chunk_id": "f7", "bucket": "b2", "key": "a.md"})
		},
			nil, []string{"a.md|f7"}, "b2"},
	}
	var allB, allB2 []string
	for i, k := range kinds {
		k.insert()
		check("b", k.b...)
		check("b2", k.b2...)
		remove(map[string][]string{"b": k.b, "b2": k.b2}[k.deleteIn])
		check("b")
		check("b2")
		if n, err := x.Count(ctx); n != len(recs) || err != nil {
			t.Fatalf("kind %d: Count = %d, %v after deleting the foreign rows; want %d", i, n, err, len(recs))
		}
		allB, allB2 = append(allB, k.b...), append(allB2, k.b2...)
	}
	for _, k := range kinds {
		k.insert()
	}
	check("b", allB...)
	check("b2", allB2...)
	remove(rows("b"))
	remove(rows("b2"))
	check("b")
	check("b2")
	if n, err := x.Count(ctx); n != len(recs) || err != nil {
		t.Fatalf("Count = %d, %v after deleting every foreign row; want %d", n, err, len(recs))
	}
}
