// Package e2e tests freshen end to end: the real freshen binary against a
// real S3-compatible server (versitygw), checking the index against ground
// truth computed independently from the bucket's contents.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/chunk"
	"github.com/freshen-io/freshen/embed/builtin"
	"github.com/freshen-io/freshen/extract"
	"github.com/freshen-io/freshen/index/embedded"
	"github.com/freshen-io/freshen/internal/config"
	"github.com/freshen-io/freshen/internal/testenv"
	"github.com/freshen-io/freshen/ledger/postgres"
	"github.com/freshen-io/freshen/ledger/sqlite"
)

var freshenBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "freshen-e2e-")
	if err != nil {
		panic(err)
	}
	freshenBin = filepath.Join(dir, "freshen")
	out, err := exec.Command("go", "build", "-o", freshenBin, "github.com/freshen-io/freshen/cmd/freshen").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build freshen: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	testenv.StopShared()
	os.RemoveAll(dir)
	os.Exit(code)
}

// bundle is one test's world: a gateway, a bucket, a config file.
type bundle struct {
	t      *testing.T
	gw     *testenv.VersityGW
	client *s3.Client
	bucket string
	cfg    string
	data   string
	prefix string
	conf   config.Config
}

const maxObjectBytes = 64 << 10

func setup(t *testing.T, extraYAML string) *bundle {
	t.Helper()
	gw := testenv.StartVersityGW(t, testenv.GWOptions{})
	b := &bundle{t: t, gw: gw, bucket: "docs", data: filepath.Join(t.TempDir(), "data")}
	b.client = gw.CreateBucket(t, b.bucket)
	b.cfg = filepath.Join(t.TempDir(), "freshen.yaml")
	b.writeConfig(extraYAML)
	return b
}

func (b *bundle) writeConfig(extraYAML string) {
	b.t.Helper()
	y := fmt.Sprintf(`source:
  bucket: %s
  endpoint: %s
  path-style: true
  prefix: "%s"
data-dir: %s
workers: 2
limits:
  max-object-bytes: %d
  max-attempts: 2
%s`, b.bucket, b.gw.Endpoint, b.prefix, b.data, maxObjectBytes, extraYAML)
	if err := os.WriteFile(b.cfg, []byte(y), 0o644); err != nil {
		b.t.Fatal(err)
	}
	conf, err := config.Load(b.cfg, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	b.conf = conf
}

// freshen runs the binary and returns stdout; it fails the test on a
// non-zero exit unless wantFail.
func (b *bundle) freshen(wantFail bool, args ...string) string {
	b.t.Helper()
	cmd := exec.Command(freshenBin, args...)
	cmd.Env = append(os.Environ(), b.gw.Env()...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if (err != nil) != wantFail {
		b.t.Fatalf("freshen %s: err = %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String() + stderr.String()
}

func (b *bundle) sync(extra ...string) map[string]any {
	b.t.Helper()
	out := b.freshen(false, append([]string{"sync", "--config", b.cfg, "--json"}, extra...)...)
	var sum map[string]any
	if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &sum); err != nil {
		b.t.Fatalf("sync output: %v\n%s", err, out)
	}
	return sum
}

type status struct {
	Objects        int   `json:"objects"`
	Chunks         int   `json:"chunks"`
	ChunksEmbedded int64 `json:"chunks_embedded"`
	ChunksReused   int64 `json:"chunks_reused"`
	TokensEmbedded int64 `json:"tokens_embedded"`
	Backlog        int   `json:"backlog"`
	SkippedTotal   int   `json:"skipped_total"`
	FailedTotal    int   `json:"failed_total"`
	Skipped        []struct {
		Key    string `json:"key"`
		Reason string `json:"reason"`
	} `json:"skipped"`
}

func (b *bundle) status() status {
	b.t.Helper()
	var s status
	out := b.freshen(false, "status", "--config", b.cfg, "--json")
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		b.t.Fatalf("status: %v\n%s", err, out)
	}
	return s
}

type hit struct {
	Key   string  `json:"key"`
	Score float64 `json:"score"`
	Text  string  `json:"text"`
}

func (b *bundle) search(query string) []hit {
	b.t.Helper()
	var hits []hit
	out := b.freshen(false, "search", "--config", b.cfg, "--json", "-k", "5", query)
	if err := json.Unmarshal([]byte(out), &hits); err != nil {
		b.t.Fatalf("search: %v\n%s", err, out)
	}
	return hits
}

func (b *bundle) put(key, contentType string, body []byte) {
	b.t.Helper()
	testenv.Put(b.t, b.client, b.bucket, key, contentType, body)
}

// chunkRow is what an index entry must be, computed from the bucket.
// Ordinal is informational: a chunk keeps its ID (and is not rewritten)
// when an edit elsewhere moves it, so the index's ordinal is the one it
// had when written, and it is not compared.
type chunkRow struct {
	ID      freshen.ChunkID
	Key     string
	Hash    freshen.ChunkHash
	Ordinal int
	Text    string
}

func (r chunkRow) same(o chunkRow) bool {
	return r.ID == o.ID && r.Key == o.Key && r.Hash == o.Hash && r.Text == o.Text
}

// groundTruth lists the bucket, reads every watched object and runs the
// extractor and chunker on it: the chunks the index must hold, exactly.
func (b *bundle) groundTruth() []chunkRow {
	b.t.Helper()
	ctx := context.Background()
	filter, err := config.NewFilter(b.conf.Source)
	if err != nil {
		b.t.Fatal(err)
	}
	ext := extract.New(extract.Config{MaxBytes: maxObjectBytes})
	c := b.conf.Chunk
	chk, err := chunk.New(chunk.Config{MinTokens: c.MinTokens, TargetTokens: c.TargetTokens, MaxTokens: c.MaxTokens, HardHeadingLevel: c.HardHeadingLevel, OverlapBlocks: c.OverlapBlocks})
	if err != nil {
		b.t.Fatal(err)
	}
	var rows []chunkRow
	p := s3.NewListObjectsV2Paginator(b.client, &s3.ListObjectsV2Input{Bucket: aws.String(b.bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			b.t.Fatal(err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			if !filter.Match(key) || aws.ToInt64(o.Size) > maxObjectBytes {
				continue
			}
			get, err := b.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(key)})
			if err != nil {
				b.t.Fatalf("get %q: %v", key, err)
			}
			body, _ := io.ReadAll(get.Body)
			get.Body.Close()
			info := freshen.ObjectInfo{Bucket: b.bucket, Key: key, ContentType: aws.ToString(get.ContentType), Size: int64(len(body))}
			doc, err := ext.Extract(ctx, bytes.NewReader(body), info)
			if errors.Is(err, freshen.ErrUnsupported) || errors.Is(err, freshen.ErrTooLarge) {
				continue
			}
			if err != nil {
				b.t.Fatalf("extract %q: %v", key, err)
			}
			chunks, err := chk.Split(doc)
			if err != nil {
				b.t.Fatal(err)
			}
			seen := map[freshen.ChunkHash]int{}
			for _, ch := range chunks {
				rows = append(rows, chunkRow{ID: freshen.MakeChunkID(b.bucket, key, ch.Hash, seen[ch.Hash]), Key: key, Hash: ch.Hash, Ordinal: ch.Ordinal, Text: ch.Text})
				seen[ch.Hash]++
			}
		}
	}
	sortRows(rows)
	return rows
}

func sortRows(rows []chunkRow) {
	sort.Slice(rows, func(i, j int) bool { return rows[i].ID < rows[j].ID })
}

// indexRows reads every record of the configured index: the embedded
// index through its package, pgvector with plain SQL, as an application
// would.
func (b *bundle) indexRows() ([]chunkRow, map[freshen.ChunkID][]float32) {
	b.t.Helper()
	ctx := context.Background()
	switch b.conf.Index.Type {
	case "pgvector":
		return b.pgvectorRows()
	case "weaviate":
		return b.weaviateRows()
	}
	x, err := embedded.Open(ctx, filepath.Join(b.data, "index.db"), builtin.Dim)
	if err != nil {
		b.t.Fatal(err)
	}
	defer x.Close()
	var rows []chunkRow
	vecs := map[freshen.ChunkID][]float32{}
	err = x.Scan(ctx, func(r freshen.Record) error {
		rows = append(rows, chunkRow{ID: r.ID, Key: r.Key, Hash: r.Hash, Ordinal: r.Ordinal, Text: r.Text})
		vecs[r.ID] = r.Vector
		return nil
	})
	if err != nil {
		b.t.Fatal(err)
	}
	sortRows(rows)
	return rows, vecs
}

// assertExact checks that the index holds exactly the ground truth (no
// stale, missing, orphaned or duplicate chunk), that every vector is a
// unit vector, and that the ledger's chunk sets agree with the index.
func (b *bundle) assertExact() []chunkRow {
	b.t.Helper()
	want := b.groundTruth()
	got, vecs := b.indexRows()
	wantByID := map[freshen.ChunkID]chunkRow{}
	for _, r := range want {
		wantByID[r.ID] = r
	}
	gotByID := map[freshen.ChunkID]chunkRow{}
	for _, r := range got {
		if _, dup := gotByID[r.ID]; dup {
			b.t.Errorf("duplicate index entry %s (%q)", r.ID, r.Key)
		}
		gotByID[r.ID] = r
		w, ok := wantByID[r.ID]
		switch {
		case !ok:
			b.t.Errorf("index has a chunk the bucket does not imply: %q #%d %.60q", r.Key, r.Ordinal, r.Text)
		case !w.same(r):
			b.t.Errorf("index entry for %q #%d differs:\n got  %+v\n want %+v", r.Key, r.Ordinal, r, w)
		}
		var ss float64
		for _, v := range vecs[r.ID] {
			ss += float64(v) * float64(v)
		}
		if len(vecs[r.ID]) != 512 || ss < 0.99 || ss > 1.01 {
			b.t.Errorf("chunk %s of %q has a bad vector (dim %d, norm² %.3f)", r.ID, r.Key, len(vecs[r.ID]), ss)
		}
	}
	for _, w := range want {
		if _, ok := gotByID[w.ID]; !ok {
			b.t.Errorf("index is missing %q #%d %.60q", w.Key, w.Ordinal, w.Text)
		}
	}
	// The ledger agrees with the index, key by key.
	ctx := context.Background()
	led := b.openLedger()
	defer led.Close()
	ledgerIDs := map[freshen.ChunkID]bool{}
	led.Objects(ctx, b.bucket, "", "", func(o freshen.ObjectRecord) error {
		st, err := led.State(ctx, b.bucket, o.Key)
		if err != nil {
			return err
		}
		for _, r := range st.Chunks {
			ledgerIDs[r.ID] = true
		}
		return nil
	})
	if len(ledgerIDs) != len(gotByID) {
		b.t.Errorf("ledger lists %d chunks, index holds %d", len(ledgerIDs), len(gotByID))
	}
	for id := range ledgerIDs {
		if _, ok := gotByID[id]; !ok {
			b.t.Errorf("ledger lists chunk %s that the index lacks", id)
		}
	}
	if keys, _ := led.KeysWithIntents(ctx); len(keys) != 0 {
		b.t.Errorf("intents left after sync: %v", keys)
	}
	if b.t.Failed() {
		b.t.FailNow()
	}
	return want
}

// openLedger opens the configured ledger, as the freshen binary would.
func (b *bundle) openLedger() freshen.Ledger {
	b.t.Helper()
	ctx := context.Background()
	var led freshen.Ledger
	var err error
	if b.conf.Ledger.Type == "postgres" {
		led, err = postgres.Open(ctx, postgres.Config{DSN: string(b.conf.Ledger.DSN), Schema: b.conf.Ledger.Schema})
	} else {
		led, err = sqlite.Open(ctx, filepath.Join(b.data, "ledger.db"))
	}
	if err != nil {
		b.t.Fatal(err)
	}
	return led
}
