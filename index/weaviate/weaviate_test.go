package weaviate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/index/indextest"
	"github.com/freshen-io/freshen/index/weaviate"
	"github.com/freshen-io/freshen/internal/testenv"
)

// TestMain stops the package's weaviate-server (SharedWeaviate, started
// by the first test that needs it) after the last test.
func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopShared()
	os.Exit(code)
}

// open opens an index on the package's server, by default in a fresh
// collection created for the test.
func open(t *testing.T, cfg weaviate.Config) *weaviate.Index {
	t.Helper()
	if cfg.URL == "" {
		cfg.URL = testenv.SharedWeaviate(t).URL
	}
	if cfg.Collection == "" {
		cfg.Collection, cfg.Create = testenv.UniqueCollection("Chunks"), true
	}
	if cfg.Dim == 0 {
		cfg.Dim = indextest.Dim
	}
	x, err := weaviate.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

// TestConformance runs indextest's suites. Weaviate is not
// freshen.Isolated (it has no transactions), so ReadersSeeWholeVersions
// checks that a reader sees at least one version whole.
func TestConformance(t *testing.T) {
	newIndex := func(t *testing.T) freshen.Index { return open(t, weaviate.Config{}) }
	indextest.Run(t, newIndex)
	indextest.RunObjectWriter(t, newIndex)
	indextest.RunRowScanner(t, newIndex)
	t.Run("Metadata", func(t *testing.T) { indextest.RunMetadata(t, newIndex) })
}

// TestPrefixWildcardsAreLiteral: Weaviate's Like wildcards, white space
// that field tokenization would trim, and newlines that Like's .* does not
// cross are all matched literally.
func TestPrefixWildcardsAreLiteral(t *testing.T) {
	x := open(t, weaviate.Config{})
	ctx := context.Background()
	keys := []string{"a*b/1.md", "axb/2.md", "a?c/3.md", "abc/4.md", "a\nb/5.md", " lead/6.md", "lead/7.md",
		"trail /8.md", "trail/9.md", "*", "?", "A*B/10.md", "a%b/11.md"}
	var recs []freshen.Record
	for i, k := range keys {
		recs = append(recs, freshen.Record{ID: freshen.ChunkID(fmt.Sprintf("r%d", i)), Bucket: "b", Key: k, Text: k,
			Vector: []float32{1, float32(i) / 100, 0}})
	}
	if err := x.Upsert(ctx, recs); err != nil {
		t.Fatal(err)
	}
	for prefix, want := range map[string][]string{
		"a*":     {"a*b/1.md"},
		"a?":     {"a?c/3.md"},
		"*":      {"*"},
		"?":      {"?"},
		"a\n":    {"a\nb/5.md"},
		" ":      {" lead/6.md"},
		"lead":   {"lead/7.md"},
		"trail ": {"trail /8.md"},
		"a":      {"a\nb/5.md", "a%b/11.md", "a*b/1.md", "a?c/3.md", "abc/4.md", "axb/2.md"},
		"A*":     {"A*B/10.md"},
		"a%":     {"a%b/11.md"},
	} {
		hits, err := x.Search(ctx, freshen.Query{Vector: []float32{1, 0, 0}, K: 20, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, h := range hits {
			got = append(got, h.Key)
		}
		sort.Strings(got)
		if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
			t.Errorf("prefix %q: %q, want %q", prefix, got, want)
		}
	}
	// K hits when K match, however many others are closer.
	hits, err := x.Search(ctx, freshen.Query{Vector: []float32{1, 0, 0}, K: 3, Prefix: "a"})
	if err != nil || len(hits) != 3 {
		t.Fatalf("K=3 of 6 matches: %d hits, %v", len(hits), err)
	}
	for _, h := range hits {
		if !strings.HasPrefix(h.Key, "a") {
			t.Fatalf("hit %q for prefix a", h.Key)
		}
	}
}

// TestObjectIDs: UUIDs are UUIDv5 of the chunk id (golden values), and
// the stored object is found under that UUID by an application.
func TestObjectIDs(t *testing.T) {
	for id, want := range map[freshen.ChunkID]string{
		"0123456789abcdef0123456789abcdef": "965fc69f-0aec-5db8-ab41-b324c0468ea4",
		"a":                                "5a99a68b-a173-5db2-824b-fbea2d2f467a",
	} {
		if got := weaviate.ObjectID(id); got != want || weaviate.ObjectID(id) != got {
			t.Errorf("ObjectID(%q) = %s, want %s", id, got, want)
		}
	}
	if weaviate.ObjectID("a") == weaviate.ObjectID("b") || weaviate.FenceID("b", "k") == weaviate.FenceID("b", "k2") ||
		weaviate.FenceID("b", "k") != weaviate.FenceID("b", "k") || weaviate.FenceID("ab", "c") == weaviate.FenceID("a", "bc") {
		t.Fatal("ids are not deterministic and distinct")
	}
	x := open(t, weaviate.Config{})
	ctx := context.Background()
	id := freshen.MakeChunkID("b", "doc.md", freshen.HashChunk("v1", "hello"), 0)
	if err := x.Upsert(ctx, []freshen.Record{{ID: id, Bucket: "b", Key: "doc.md", Text: "hello", Vector: []float32{1, 0, 0}}}); err != nil {
		t.Fatal(err)
	}
	var obj struct {
		Properties map[string]any `json:"properties"`
	}
	if code := rest(t, http.MethodGet, "/v1/objects/"+x.Collection()+"/"+weaviate.ObjectID(id), nil, &obj); code != 200 {
		t.Fatalf("GET the object by ObjectID: HTTP %d", code)
	}
	if obj.Properties["chunk_id"] != string(id) || obj.Properties["key"] != "doc.md" {
		t.Fatalf("object under ObjectID(%s): %v", id, obj.Properties)
	}
}

// TestExistingCollection: without Create the collection must exist; one
// of another dimension or layout is refused, saying what differs.
func TestExistingCollection(t *testing.T) {
	ctx := context.Background()
	url := testenv.SharedWeaviate(t).URL
	missing := testenv.UniqueCollection("Missing")
	_, err := weaviate.Open(ctx, weaviate.Config{URL: url, Collection: missing, Dim: 3})
	if err == nil || !strings.Contains(err.Error(), missing+" does not exist") || !freshen.IsPermanent(err) {
		t.Fatalf("Create false on a missing collection: %v", err)
	}

	// A 3-d collection with a vector, opened for a 4-d model.
	name := testenv.UniqueCollection("ThreeD")
	x := open(t, weaviate.Config{Collection: name, Create: true})
	if err := x.Upsert(ctx, []freshen.Record{{ID: "a", Bucket: "b", Key: "k", Vector: []float32{1, 0, 0}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := weaviate.Open(ctx, weaviate.Config{URL: url, Collection: name, Dim: 3}); err != nil {
		t.Fatalf("reopen with the same dimension: %v", err)
	}
	for _, create := range []bool{false, true} {
		_, err = weaviate.Open(ctx, weaviate.Config{URL: url, Collection: name, Dim: 4, Create: create})
		t.Logf("create %v: %v", create, err)
		if err == nil || !strings.Contains(err.Error(), "holds 3-dimensional vectors and the model makes 4") || !freshen.IsPermanent(err) ||
			!errors.Is(err, freshen.ErrDimension) {
			t.Fatalf("a 3-d collection opened for 4-d vectors (create %v): %v, want a permanent ErrDimension", create, err)
		}
	}
	// An empty one: the dimension is in its description.
	empty := testenv.UniqueCollection("EmptyThreeD")
	open(t, weaviate.Config{Collection: empty, Create: true})
	_, err = weaviate.Open(ctx, weaviate.Config{URL: url, Collection: empty, Dim: 4})
	if err == nil || !strings.Contains(err.Error(), "holds 3-dimensional vectors and the model makes 4") {
		t.Fatalf("an empty 3-d collection opened for 4-d vectors: %v", err)
	}

	// A class made by someone else: dot product, a word-tokenized key, no
	// key_hex; and no fence class.
	other := testenv.UniqueCollection("Other")
	class := map[string]any{"class": other, "vectorizer": "none", "vectorIndexType": "hnsw",
		"vectorIndexConfig": map[string]any{"distance": "dot"},
		"properties": []map[string]any{
			{"name": "chunk_id", "dataType": []string{"text"}, "tokenization": "field"},
			{"name": "key", "dataType": []string{"text"}, "tokenization": "word"},
			{"name": "ordinal", "dataType": []string{"text"}},
		}}
	if code := rest(t, http.MethodPost, "/v1/schema", class, nil); code != 200 {
		t.Fatalf("create class: HTTP %d", code)
	}
	_, err = weaviate.Open(ctx, weaviate.Config{URL: url, Collection: other, Dim: 3})
	t.Logf("a foreign class: %v", err)
	for _, want := range []string{`distance is "dot", want "cosine"`, `property key has tokenization "word", want "field"`,
		"property ordinal is text, want int", "property key_hex is missing"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("a foreign class: %v\nwant it to say %s", err, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg  weaviate.Config
		want string
	}{
		{weaviate.Config{URL: "http://h:1", Collection: "docs", Dim: 3}, `Weaviate would silently store it as "Docs"`},
		{weaviate.Config{URL: "http://h:1", Collection: "My-Docs", Dim: 3}, "not a valid Weaviate class name"},
		{weaviate.Config{URL: "http://h:1", Collection: "_Docs", Dim: 3}, "not a valid Weaviate class name"},
		{weaviate.Config{URL: "http://h:1", Collection: strings.Repeat("A", 251), Dim: 3}, "at most 250"},
		{weaviate.Config{URL: "http://h:1", Dim: 3}, "collection is empty"},
		{weaviate.Config{URL: "h:1", Collection: "Docs", Dim: 3}, "want http://host:port"},
		{weaviate.Config{URL: "http://h:1/base", Collection: "Docs", Dim: 3}, "want only scheme, host and port"},
		{weaviate.Config{URL: "http://h:1", Collection: "Docs"}, "dimension 0"},
	} {
		err := c.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) || !freshen.IsPermanent(err) {
			t.Errorf("%+v: %v, want a permanent error saying %q", c.cfg, err, c.want)
		}
	}
	if err := (weaviate.Config{URL: "https://weaviate.example:443/", Collection: "Docs_v2", Dim: 3}).Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestServerDown: a server that cannot be reached is
// ErrIndexUnavailable: retryable, and not an attempt.
func TestServerDown(t *testing.T) {
	_, err := weaviate.Open(context.Background(), weaviate.Config{URL: fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t)),
		Collection: "Docs", Dim: 3, Create: true})
	if err == nil || freshen.IsPermanent(err) || !errors.Is(err, freshen.ErrIndexUnavailable) || !freshen.IsNotAttempt(err) {
		t.Fatalf("Open with nobody listening: %v, want a retryable ErrIndexUnavailable", err)
	}
}

// TestRowsInKeyOrderAcrossPages makes Rows split its walk (pages of 7
// rows) over keys where byte order differs from Weaviate's sort (upper
// before lower case), keys and ids that extend others, a long shared
// path, and a bucket whose name extends the one listed.
func TestRowsInKeyOrderAcrossPages(t *testing.T) {
	defer weaviate.SetRowsPage(7)()
	x := open(t, weaviate.Config{})
	ctx := context.Background()
	var recs []freshen.Record
	var want []string
	add := func(bucket, key, id string) {
		recs = append(recs, freshen.Record{ID: freshen.ChunkID(id), Bucket: bucket, Key: key, Hash: freshen.ChunkHash("h" + id),
			Text: "t" + id, Vector: []float32{1, 0, 0}})
		if bucket == "b" {
			want = append(want, key+"|"+id)
		}
	}
	for i := 0; i < 40; i++ {
		add("b", fmt.Sprintf("docs/2024/reports/%02d.md", i), fmt.Sprintf("id%02d", i))
	}
	for i, k := range []string{"B.md", "a.md", "a", "a/b", "Z", "über", "uber", "a b", "a\tb", " x", "~"} {
		add("b", k, fmt.Sprintf("k%02d", i))
	}
	add("b", "a", "x")
	add("b", "a", "xy")
	add("b", "a", "X")
	add("bb", "a", "other-bucket")
	add("b2", "a", "other-bucket-2")
	if err := x.Upsert(ctx, recs); err != nil {
		t.Fatal(err)
	}
	sort.Slice(want, func(i, j int) bool {
		ki, ii, _ := strings.Cut(want[i], "|")
		kj, ij, _ := strings.Cut(want[j], "|")
		if ki != kj {
			return ki < kj
		}
		return ii < ij
	})
	var got []string
	err := x.Rows(ctx, "b", func(r freshen.Row) error {
		if r.Bucket != "b" || string(r.Hash) != "h"+string(r.ID) || r.Text != "t"+string(r.ID) {
			t.Errorf("row %+v", r)
		}
		got = append(got, r.Key+"|"+string(r.ID))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Fatalf("rows:\n%q\nwant\n%q", got, want)
	}
	stop := errors.New("stop")
	n := 0
	if err := x.Rows(ctx, "b", func(freshen.Row) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("an error from fn: %v after %d rows", err, n)
	}
}

// rest calls Weaviate's REST API on the package's server, decoding the
// answer into out (if not nil), and returns the status.
func rest(t *testing.T, method, path string, body, out any) int {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, testenv.SharedWeaviate(t).URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	if resp.StatusCode >= 300 {
		t.Logf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode
}
