package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/freshen-io/freshen/internal/testenv"
)

const (
	uniqueOld = "Purple giraffes recite Icelandic sagas to bewildered lighthouse keepers."
	uniqueNew = "Seven accordion players repair a broken submarine beneath the glacier."
)

func oddCorpus() map[string][]byte {
	r := rand.New(rand.NewSource(1))
	bin := make([]byte, 4096)
	r.Read(bin)
	bin[10] = 0
	c := map[string][]byte{
		"notes/spaces in name.md":          []byte("# Spaces\n\nA note whose key has spaces about mountain hiking trails.\n"),
		"notes/plus+sign.md":               []byte(markdownDoc(11, 3, 3)),
		"notes/percent%20literal.md":       []byte("# Percent\n\nThe key of this note has a literal percent sign followed by 20.\n"),
		"ünïcödé/日本語 ファイル.md":              []byte("# 日本語\n\n東京は日本の首都です。Unicode keys must work end to end.\n"),
		"deep/a/b/c/d/e/f/g.txt":           []byte("A deeply nested plain text file.\n\nIt has two paragraphs about railway schedules."),
		"empty.txt":                        {},
		"binary.bin":                       bin,
		"invalid-utf8.txt":                 []byte("caf\xe9 au lait costs \xff\xfe three euros in the harbor cafe.\n"),
		"oversized.md":                     []byte(strings.Repeat("This line makes the object larger than the limit.\n", 2000)),
		"site/page.html":                   []byte("<html><head><title>Page</title><script>var x=1;</script></head><body><h1>Welcome</h1><p>Our museum opens at nine.</p><ul><li>Tickets</li><li>Maps</li></ul></body></html>"),
		"data/items.json":                  []byte(`[{"name":"lantern","price":12.5},{"name":"compass","price":30}]`),
		"data/log.jsonl":                   []byte("{\"event\":\"login\",\"user\":\"ada\"}\n{\"event\":\"logout\",\"user\":\"ada\"}\nnot json\n"),
		"odd/key with 'quote' & amp=1?.md": []byte("# Odd\n\nQuotes, ampersands and question marks in keys.\n"),
		"docs/unique.md":                   []byte("# Unique\n\n" + uniqueOld + "\n"),
		"docs/space trailing .md":          []byte("Trailing space before the extension.\n"),
	}
	for i := 0; i < 20; i++ {
		c[fmt.Sprintf("corpus/doc-%02d.md", i)] = []byte(markdownDoc(int64(100+i), 2+i%3, 3))
	}
	return c
}

func contentType(key string) string {
	switch {
	case strings.HasSuffix(key, ".md"):
		return "text/markdown"
	case strings.HasSuffix(key, ".html"):
		return "text/html"
	case strings.HasSuffix(key, ".bin"):
		return "application/octet-stream"
	}
	return "" // let freshen sniff
}

func TestSyncIsExactOnOddKeysAndEdits(t *testing.T) {
	b := setup(t, "")
	for k, v := range oddCorpus() {
		b.put(k, contentType(k), v)
	}
	sum := b.sync()
	if sum["in_sync"] != true {
		t.Fatalf("first sync not in sync: %v", sum)
	}
	truth := b.assertExact()
	if len(truth) < 30 {
		t.Fatalf("ground truth has only %d chunks", len(truth))
	}
	st := b.status()
	skipped := map[string]string{}
	for _, s := range st.Skipped {
		skipped[s.Key] = s.Reason
	}
	if !strings.Contains(skipped["binary.bin"], "binary") || !strings.Contains(skipped["oversized.md"], "max-object-bytes") || len(skipped) != 2 {
		t.Errorf("skipped = %v, want binary.bin and oversized.md with reasons", skipped)
	}
	if st.FailedTotal != 0 || st.Backlog != 0 || st.Chunks != len(truth) {
		t.Errorf("status = %+v, want no failures, no backlog, %d chunks", st, len(truth))
	}
	hits := b.search(uniqueOld)
	if len(hits) == 0 || hits[0].Key != "docs/unique.md" {
		t.Fatalf("search for the unique phrase: top hit %+v, want docs/unique.md", hits)
	}

	// Edit, delete, copy and rename; then everything must be exact again.
	plus := []byte(markdownDoc(11, 3, 3))
	plus = bytes.Replace(plus, []byte("## Section 2"), []byte("An inserted paragraph about festival lanterns.\n\n## Section 2"), 1)
	b.put("notes/plus+sign.md", "text/markdown", plus)
	testenv.Delete(t, b.client, b.bucket, "notes/spaces in name.md")
	testenv.Copy(t, b.client, b.bucket, "site/page.html", "site/copy of page.html", nil)
	testenv.Copy(t, b.client, b.bucket, "deep/a/b/c/d/e/f/g.txt", "deep/renamed+moved.txt", nil)
	testenv.Delete(t, b.client, b.bucket, "deep/a/b/c/d/e/f/g.txt")
	b.put("docs/unique.md", "text/markdown", []byte("# Unique\n\n"+uniqueNew+"\n"))
	before := b.status()
	b.sync()
	b.assertExact()
	after := b.status()
	// Only the edited paragraph's chunk and the new phrase needed the model.
	if grew := after.ChunksEmbedded - before.ChunksEmbedded; grew < 1 || grew > 4 {
		t.Errorf("edits embedded %d chunks, want 1..4 (copy and rename reuse vectors)", grew)
	}
	for _, h := range b.search(uniqueOld) {
		if strings.Contains(h.Text, "Purple giraffes") {
			t.Errorf("the old phrase is still searchable: %+v", h)
		}
	}
	if hits := b.search(uniqueNew); len(hits) == 0 || hits[0].Key != "docs/unique.md" || !strings.Contains(hits[0].Text, "accordion") {
		t.Errorf("search for the new phrase: %+v", hits)
	}
	for _, h := range b.search("A note whose key has spaces about mountain hiking trails.") {
		if h.Key == "notes/spaces in name.md" || h.Key == "deep/a/b/c/d/e/f/g.txt" {
			t.Errorf("deleted object in results: %+v", h)
		}
	}
	// A sync with nothing changed does nothing.
	again := b.sync()
	if again["processed"].(float64) != 0 || again["chunks_embedded"].(float64) != 0 {
		t.Errorf("idle sync did work: %v", again)
	}
}

func TestNoRedundantEmbedding(t *testing.T) {
	b := setup(t, "")
	docs := map[string][]byte{}
	for i := 0; i < 6; i++ {
		k := fmt.Sprintf("kb/doc-%d.md", i)
		docs[k] = []byte(markdownDoc(int64(500+i), 2, 3))
		b.put(k, "text/markdown", docs[k])
	}
	b.sync()
	b.assertExact()
	base := b.status().ChunksEmbedded
	if base == 0 {
		t.Fatal("nothing embedded")
	}
	// Identical bytes again, a metadata-only change, a copy, a rename.
	b.put("kb/doc-0.md", "text/markdown", docs["kb/doc-0.md"])
	testenv.Copy(t, b.client, b.bucket, "kb/doc-1.md", "kb/doc-1.md", map[string]string{"reviewed": "yes"})
	testenv.Copy(t, b.client, b.bucket, "kb/doc-2.md", "kb/copy of doc-2.md", nil)
	testenv.Copy(t, b.client, b.bucket, "kb/doc-3.md", "archive/doc-3.md", nil)
	testenv.Delete(t, b.client, b.bucket, "kb/doc-3.md")
	sum := b.sync()
	b.assertExact()
	if got := b.status().ChunksEmbedded; got != base {
		t.Errorf("chunks_embedded grew from %d to %d on re-upload/metadata/copy/rename (sync: %v)", base, got, sum)
	}
	if sum["chunks_reused"].(float64) == 0 {
		t.Errorf("sync reused nothing: %v", sum)
	}
}

func TestMassDeleteBreaker(t *testing.T) {
	const limits = "mass-delete:\n  min-objects: 10\n"
	b := setup(t, limits)
	b.prefix = "kb/"
	b.writeConfig(limits)
	for i := 0; i < 12; i++ {
		b.put(fmt.Sprintf("kb/%02d.md", i), "text/markdown", []byte(fmt.Sprintf("# Doc %d\n\nA short document number %d about harbor bridges.\n", i, i)))
	}
	b.put("outside/x.md", "text/markdown", []byte("# Outside\n\nNot under the watched prefix.\n"))
	b.sync()
	indexed := len(b.assertExact())

	// Point at an empty prefix: the listing says everything is gone.
	b.prefix = "empty/"
	b.writeConfig(limits)
	out := b.freshen(true, "sync", "--config", b.cfg)
	if !strings.Contains(out, "refusing to delete 12 of 12 indexed objects") || !strings.Contains(out, "--allow-mass-delete") {
		t.Errorf("breaker message unclear:\n%s", out)
	}
	if rows, _ := b.indexRows(); len(rows) != indexed {
		t.Fatalf("breaker tripped but the index went from %d to %d chunks", indexed, len(rows))
	}
	b.sync("--allow-mass-delete")
	if rows, _ := b.indexRows(); len(rows) != 0 {
		t.Fatalf("after --allow-mass-delete the index still has %d chunks", len(rows))
	}
	b.assertExact()
}

// TestLostDatabasesAreRepaired: an index.db truncated to nothing, then a
// ledger lost with its volume, are noticed by the next sync and repaired
// with the real binary and a real S3 server: the index is exact again,
// objects deleted meanwhile are not searchable, and nothing is embedded
// again.
func TestLostDatabasesAreRepaired(t *testing.T) {
	b := setup(t, "")
	for i := 0; i < 6; i++ {
		b.put(fmt.Sprintf("kb/doc-%d.md", i), "text/markdown", []byte(markdownDoc(int64(700+i), 2, 3)))
	}
	b.sync()
	b.assertExact()
	lose := func(name string) {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			p := filepath.Join(b.data, name+suffix)
			if suffix == "" {
				if err := os.Truncate(p, 0); err != nil {
					t.Fatal(err)
				}
				continue
			}
			os.Remove(p)
		}
	}
	lose("index.db")
	sum := b.sync()
	if msg, _ := sum["repaired"].(string); !strings.Contains(msg, "index is empty") {
		t.Errorf("sync did not report the lost index: %v", sum)
	}
	if sum["chunks_embedded"].(float64) != 0 {
		t.Errorf("rebuilding the index embedded %v chunks", sum["chunks_embedded"])
	}
	b.assertExact()

	lose("ledger.db")
	testenv.Delete(t, b.client, b.bucket, "kb/doc-0.md") // gone while the ledger was lost
	sum = b.sync()
	if msg, _ := sum["repaired"].(string); !strings.Contains(msg, "ledger is empty") {
		t.Errorf("sync did not report the lost ledger: %v", sum)
	}
	if sum["chunks_embedded"].(float64) != 0 {
		t.Errorf("rebuilding the ledger embedded %v chunks", sum["chunks_embedded"])
	}
	rows := b.assertExact()
	for _, r := range rows {
		if r.Key == "kb/doc-0.md" {
			t.Fatal("a deleted object is still in the index")
		}
	}
}

// TestEstimateExampleCorpus: `freshen estimate` with the README's
// simulator configuration prints the tokens, money and time a sync of
// examples/corpus would cost, against a real S3 server. (That a sync
// then spends exactly the estimate is the app test's and the provider
// benchmark's.)
func TestEstimateExampleCorpus(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- config-example: simulator -->\n```yaml\n.*?\n(embedder:.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README has no simulator configuration example")
	}
	b := setup(t, string(m[1]))
	n := 0
	filepath.WalkDir("../../examples/corpus", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		key, _ := filepath.Rel("../../examples/corpus", path)
		b.put(filepath.ToSlash(key), contentType(key), body)
		n++
		return nil
	})
	out := b.freshen(false, "estimate", "--config", b.cfg, "--json")
	var est struct {
		Objects int     `json:"objects"`
		Chunks  int     `json:"chunks"`
		Tokens  int64   `json:"tokens"`
		USD     float64 `json:"usd"`
		Seconds float64 `json:"seconds"`
	}
	if err := json.Unmarshal([]byte(out), &est); err != nil {
		t.Fatalf("estimate --json: %v\n%s", err, out)
	}
	if est.Objects == 0 || est.Objects > n || est.Chunks < est.Objects || est.Tokens == 0 || est.USD <= 0 || est.Seconds <= 0 {
		t.Fatalf("estimate for %d corpus files: %+v", n, est)
	}
	text := b.freshen(false, "estimate", "--config", b.cfg)
	for _, want := range []string{"tokens", "cost: $", "time: about"} {
		if !strings.Contains(text, want) {
			t.Errorf("estimate output lacks %q:\n%s", want, text)
		}
	}
	t.Logf("examples/corpus: %+v", est)
}
