package app

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/go-pdf/fpdf"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/internal/testenv"
)

func TestMetadataEmbedded(t *testing.T) { testMetadata(t, newStateBundle(t)) }

func TestMetadataPgvector(t *testing.T) {
	b := newStateBundle(t)
	b.cfg.Index.Type, b.cfg.Index.DSN = "pgvector", testenvDSN(t)
	b.cfg.Index.Table = testenv.UniqueTable("meta")
	testMetadata(t, b)
}

// testMetadata: user metadata and sidecar attributes reach every chunk;
// filtered search returns only matching chunks; a metadata-only change
// and a sidecar edit re-tag the chunks embedding nothing; a sidecar is
// never indexed itself; a malformed sidecar is reported, not fatal.
func testMetadata(t *testing.T, b *stateBundle) {
	ctx := context.Background()
	body := func(i int) []byte {
		return []byte(fmt.Sprintf("# Policy %d\n\nA paragraph about harbors and lanterns, number %d.\n\n## More\n\nAnother section about tides %d.\n", i, i, i))
	}
	for i := range 6 {
		b.src.PutMeta(fmt.Sprintf("doc-%d.md", i), "text/markdown", body(i), map[string]string{"dept": []string{"sales", "support"}[i%2]})
	}
	b.src.Put("doc-0.md.metadata.json", "application/json", []byte(`{"metadataAttributes": {"year": 2024, "region": ["eu", "us"]}}`))
	b.src.Put("doc-1.md.metadata.json", "application/json", []byte(`{"metadataAttributes": {"year": 2019}}`))
	b.src.Put("doc-2.md.metadata.json", "application/json", []byte(`not json`))
	a := b.open(t)
	defer a.Close()
	b.sync(t, a)
	b.exact(t, a, 6)
	search := func(filters ...string) map[string]bool {
		t.Helper()
		var fs []freshen.Filter
		for _, s := range filters {
			f, err := freshen.ParseFilter(s)
			if err != nil {
				t.Fatal(err)
			}
			fs = append(fs, f)
		}
		hits, err := a.Search(ctx, "harbors", 50, "", fs...)
		if err != nil {
			t.Fatal(err)
		}
		keys := map[string]bool{}
		for _, h := range hits {
			keys[h.Key] = true
			if strings.HasSuffix(h.Key, ".json") {
				t.Fatalf("a sidecar was indexed: %s", h.Key)
			}
			if h.Metadata["content_type"] != "text/markdown" || h.Metadata["size"] == nil || h.Metadata["last_modified"] == nil {
				t.Fatalf("hit without the object's attributes: %+v", h.Metadata)
			}
		}
		return keys
	}
	set := func(keys ...string) map[string]bool {
		m := map[string]bool{}
		for _, k := range keys {
			m[k] = true
		}
		return m
	}
	same := func(got, want map[string]bool) bool { return fmt.Sprint(got) == fmt.Sprint(want) }
	if got := search("dept=sales"); !same(got, set("doc-0.md", "doc-2.md", "doc-4.md")) {
		t.Fatalf("dept=sales: %v", got)
	}
	if got := search("year>=2020"); !same(got, set("doc-0.md")) {
		t.Fatalf("year>=2020 (a sidecar's number): %v", got)
	}
	if got := search("region=us", "dept=sales"); !same(got, set("doc-0.md")) {
		t.Fatalf("a sidecar's list: %v", got)
	}
	hits, err := a.Search(ctx, "harbors", 50, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hits {
		if reported := h.Metadata["sidecar_error"] != nil; reported != (h.Key == "doc-2.md") {
			t.Fatalf("%s: sidecar_error %v", h.Key, h.Metadata["sidecar_error"])
		}
	}
	st, _, err := a.State(ctx, "doc-2.md.metadata.json")
	if err != nil || st.Object.State != freshen.StateSkipped || !strings.Contains(st.Object.Reason, "metadata sidecar") {
		t.Fatalf("the sidecar's own row: %+v %v", st.Object, err)
	}
	before, _ := a.Ledger.Counters(ctx)

	// A metadata-only change (same bytes, new user metadata), and a
	// sidecar edit: chunks re-tagged, nothing embedded.
	// (A copy onto itself with new metadata keeps the ETag: its event,
	// s3:ObjectCreated:Copy, is what announces it.)
	b.src.PutMeta("doc-3.md", "text/markdown", body(3), map[string]string{"dept": "sales"})
	if err := a.Sink(nil, nil).Put(ctx, "webhook", []freshen.Change{{Bucket: "docs", Key: "doc-3.md", Kind: freshen.ChangeUpsert}}); err != nil {
		t.Fatal(err)
	}
	b.src.Put("doc-1.md.metadata.json", "application/json", []byte(`{"metadataAttributes": {"year": 2031}}`))
	b.sync(t, a)
	if got := search("dept=sales"); !same(got, set("doc-0.md", "doc-2.md", "doc-3.md", "doc-4.md")) {
		t.Fatalf("after the metadata change: %v", got)
	}
	if got := search("year>=2020"); !same(got, set("doc-0.md", "doc-1.md")) {
		t.Fatalf("after the sidecar edit: %v", got)
	}
	// A sidecar removed: its attributes go.
	b.src.Delete("doc-0.md.metadata.json")
	b.sync(t, a)
	if got := search("year>=2020"); !same(got, set("doc-1.md")) {
		t.Fatalf("after the sidecar's removal: %v", got)
	}
	after, _ := a.Ledger.Counters(ctx)
	if after.TokensEmbedded != before.TokensEmbedded || after.ChunksEmbedded != before.ChunksEmbedded || after.ChunksReused <= before.ChunksReused {
		t.Fatalf("metadata changes embedded %d chunks (%d tokens), reused %d", after.ChunksEmbedded-before.ChunksEmbedded,
			after.TokensEmbedded-before.TokensEmbedded, after.ChunksReused-before.ChunksReused)
	}
	b.exact(t, a, 6)
}

// TestPDFPagesInMetadata: a PDF's chunks carry their page, and search
// filters on it.
func TestPDFPagesInMetadata(t *testing.T) {
	ctx := context.Background()
	b := newStateBundle(t)
	f := fpdf.New("P", "pt", "A4", "")
	for i, text := range []string{"The harbor opens at dawn for the fishing fleet.", "Lanterns guide the ferries after dusk.", "Tides are posted at the harbor office."} {
		f.AddPage()
		f.SetFont("Helvetica", "B", 20)
		f.Cell(0, 24, fmt.Sprintf("Chapter %d", i+1))
		f.Ln(36)
		f.SetFont("Helvetica", "", 11)
		f.MultiCell(400, 14, text, "", "L", false)
	}
	var buf bytes.Buffer
	if err := f.Output(&buf); err != nil {
		t.Fatal(err)
	}
	b.src.Put("guide.pdf", "application/pdf", buf.Bytes())
	a := b.open(t)
	defer a.Close()
	b.sync(t, a)
	page2, err := freshen.ParseFilter("page=2")
	if err != nil {
		t.Fatal(err)
	}
	hits, err := a.Search(ctx, "ferries", 10, "guide.pdf", page2)
	if err != nil || len(hits) != 1 || !strings.Contains(hits[0].Text, "Lanterns guide the ferries") || hits[0].Metadata["page"] != 2.0 {
		t.Fatalf("page=2: %+v %v", hits, err)
	}
	all, _ := a.Search(ctx, "harbor", 10, "guide.pdf")
	if len(all) != 3 {
		t.Fatalf("%d chunks for three chapters on three pages: %+v", len(all), all)
	}
}
