package pipeline

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/chunk"
	"github.com/freshen-io/freshen/extract"
	"github.com/freshen-io/freshen/index/embedded"
	"github.com/freshen-io/freshen/internal/memsource"
	"github.com/freshen-io/freshen/ledger/sqlite"
)

// fakeEmbedder makes deterministic vectors from text and counts texts.
type fakeEmbedder struct {
	texts atomic.Int64
	fail  atomic.Bool
	slow  time.Duration
	// failWith, when set, is returned instead of vectors.
	failWith atomic.Pointer[error]
	// block, when set, makes Embed wait for ctx to be done.
	block atomic.Bool
	// dim overrides the length of the vectors returned.
	dim int
}

func (f *fakeEmbedder) Model() freshen.ModelInfo { return freshen.ModelInfo{Name: "fake", Dim: 8} }

func (f *fakeEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if f.fail.Load() {
		return nil, errors.New("embedder is down")
	}
	if e := f.failWith.Load(); e != nil {
		return nil, *e
	}
	if f.block.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	time.Sleep(f.slow)
	f.texts.Add(int64(len(texts)))
	out := make([][]float32, len(texts))
	for i, t := range texts {
		h := sha256.Sum256([]byte(t))
		v := make([]float32, 8)
		if f.dim != 0 {
			v = make([]float32, f.dim)
		}
		for j := range v {
			v[j] = float32(h[j]) - 127.5
		}
		out[i] = v
	}
	return out, nil
}

// flakyIndex wraps an index and fails on demand.
type flakyIndex struct {
	*embedded.Index
	failUpsert atomic.Bool
}

func (x *flakyIndex) Upsert(ctx context.Context, r []freshen.Record) error {
	if x.failUpsert.Load() {
		return errors.New("index is down")
	}
	return x.Index.Upsert(ctx, r)
}

type testBundle struct {
	src *memsource.Source
	emb *fakeEmbedder
	idx *flakyIndex
	led *sqlite.Ledger
	dir string
}

func setup(t *testing.T) (*Pipeline, *testBundle) {
	t.Helper()
	ctx := context.Background()
	b := &testBundle{src: memsource.New("b"), emb: &fakeEmbedder{}, dir: t.TempDir()}
	var err error
	if b.led, err = sqlite.Open(ctx, filepath.Join(b.dir, "ledger.db")); err != nil {
		t.Fatal(err)
	}
	x, err := embedded.Open(ctx, filepath.Join(b.dir, "index.db"), 8)
	if err != nil {
		t.Fatal(err)
	}
	b.idx = &flakyIndex{Index: x}
	t.Cleanup(func() { b.led.Close(); x.Close() })
	return b.pipeline(t), b
}

func (b *testBundle) pipeline(t *testing.T) *Pipeline {
	chk, err := chunk.New(chunk.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return New(Config{Bucket: "b", Workers: 4, MaxAttempts: 3, Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond},
		b.src, extract.New(extract.Config{}), chk, b.emb, b.idx, b.led, nil, nil)
}

func (b *testBundle) enqueue(t *testing.T, keys ...string) {
	t.Helper()
	var cs []freshen.Change
	for _, k := range keys {
		cs = append(cs, freshen.Change{Bucket: "b", Key: k, EventTime: time.Now()})
	}
	if _, err := b.led.Enqueue(context.Background(), cs); err != nil {
		t.Fatal(err)
	}
}

// indexKeys returns key -> number of chunks in the index.
func (b *testBundle) indexKeys(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	b.idx.Scan(context.Background(), func(r freshen.Record) error { out[r.Key]++; return nil })
	return out
}

func doc(title string, paras ...string) string {
	return "# " + title + "\n\n" + strings.Join(paras, "\n\n") + "\n"
}

func TestIdenticalChunksEmbeddedOnceAcrossConcurrentObjects(t *testing.T) {
	p, b := setup(t)
	b.emb.slow = 20 * time.Millisecond // keep the workers overlapping
	body := doc("Shared", "The same paragraph in many objects.", "And a second one that is shared too.")
	var keys []string
	for i := 0; i < 8; i++ {
		k := fmt.Sprintf("copy-%d.md", i)
		b.src.Put(k, "text/markdown", []byte(body))
		keys = append(keys, k)
	}
	b.enqueue(t, keys...)
	if _, err := p.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := b.indexKeys(t); len(got) != 8 {
		t.Fatalf("index keys = %v", got)
	}
	c, _ := b.led.Counters(context.Background())
	if n := b.emb.texts.Load(); n != c.ChunksEmbedded || n != 1 {
		t.Fatalf("embedded %d texts (counter %d) for 8 identical one-chunk objects, want 1", n, c.ChunksEmbedded)
	}
}

func TestEmbedderDownRetriesThenParks(t *testing.T) {
	p, b := setup(t)
	b.src.Put("a.md", "text/markdown", []byte(doc("A", "Some text about harbors.")))
	b.emb.fail.Store(true)
	b.enqueue(t, "a.md")
	if _, err := p.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	o, err := b.led.Object(context.Background(), "b", "a.md")
	if err != nil || o.State != freshen.StateFailed || !strings.Contains(o.Reason, "embedder is down") || o.Attempts != 3 {
		t.Fatalf("object = %+v, %v; want parked as failed after 3 attempts", o, err)
	}
	// The embedder recovers; a new change (or a re-drive) indexes it.
	b.emb.fail.Store(false)
	b.enqueue(t, "a.md")
	if _, err := p.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if o, _ := b.led.Object(context.Background(), "b", "a.md"); o.State != freshen.StateIndexed {
		t.Fatalf("after recovery: %+v", o)
	}
}

// TestCrashBetweenIndexWriteAndCommit simulates a process that dies after
// writing the index but before the ledger commit: the next run must delete
// the chunks it wrote for a version that no longer exists, and restore
// chunks it deleted that are still wanted.
func TestCrashBetweenIndexWriteAndCommit(t *testing.T) {
	ctx := context.Background()
	p, b := setup(t)
	v1 := doc("Doc", "Paragraph one about lanterns.", "Paragraph two about bridges.")
	b.src.Put("d.md", "text/markdown", []byte(v1))
	b.enqueue(t, "d.md")
	if _, err := p.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	before := b.indexKeys(t)["d.md"]

	// A v2 is processed up to the index writes, then the process "dies":
	// we replay exactly what the pipeline does, without the commit.
	b.src.Put("d.md", "text/markdown", []byte(doc("Doc", "Paragraph one about lanterns.", "A rewritten second paragraph about ferries.")))
	b.enqueue(t, "d.md")
	ls, err := b.led.Lease(ctx, freshen.LeaseParams{Owner: "doomed", Max: 1, TTL: time.Millisecond})
	if err != nil || len(ls) != 1 {
		t.Fatal(ls, err)
	}
	obj, _ := b.src.Stat(ctx, "d.md")
	tgt, _, err := p.read(ctx, obj)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := b.led.State(ctx, "b", "d.md")
	prev := st.Chunks
	var ups []freshen.ChunkID
	var recs []freshen.Record
	for _, r := range tgt.refs {
		ups = append(ups, r.ID)
		recs = append(recs, freshen.Record{ID: r.ID, Bucket: "b", Key: "d.md", Hash: r.Hash, Text: tgt.chunks[r.ID].Text, Vector: []float32{1, 2, 3, 4, 5, 6, 7, 8}})
	}
	var dels []freshen.ChunkID
	for _, c := range prev {
		dels = append(dels, c.ID)
	}
	must(t, b.led.BeginIntent(ctx, ls[0], freshen.Intent{Upserts: ups, Deletes: dels}))
	must(t, b.idx.Upsert(ctx, recs))
	must(t, b.idx.Delete(ctx, dels))
	// ... crash. Meanwhile the object changes back to v1.
	b.src.Put("d.md", "text/markdown", []byte(v1))
	time.Sleep(5 * time.Millisecond) // the doomed lease expires

	p2 := b.pipeline(t)
	if n, err := p2.Recover(ctx); err != nil || n != 1 {
		t.Fatalf("Recover = %d, %v", n, err)
	}
	if _, err := p2.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	var texts []string
	b.idx.Scan(ctx, func(r freshen.Record) error { texts = append(texts, r.Text); return nil })
	sort.Strings(texts)
	if len(texts) != before || strings.Contains(strings.Join(texts, "|"), "ferries") {
		t.Fatalf("after recovery the index holds %q, want exactly v1's %d chunks", texts, before)
	}
	if keys, _ := b.led.KeysWithIntents(ctx); len(keys) != 0 {
		t.Fatalf("intents left: %v", keys)
	}
}

func TestIndexDownLosesNothing(t *testing.T) {
	ctx := context.Background()
	p, b := setup(t)
	b.src.Put("x.md", "text/markdown", []byte(doc("X", "Text about orchards.")))
	b.idx.failUpsert.Store(true)
	b.enqueue(t, "x.md")
	// Drain runs until the key is parked; the embedding is cached.
	if _, err := p.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	embedded := b.emb.texts.Load()
	b.idx.failUpsert.Store(false)
	b.enqueue(t, "x.md")
	if _, err := p.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.indexKeys(t)["x.md"]; got != 1 {
		t.Fatalf("index has %d chunks of x.md", got)
	}
	if b.emb.texts.Load() != embedded {
		t.Fatalf("the retry re-embedded (%d -> %d texts)", embedded, b.emb.texts.Load())
	}
}

func TestDeleteAndFilter(t *testing.T) {
	ctx := context.Background()
	_, b := setup(t)
	b.src.Put("keep.md", "text/markdown", []byte(doc("K", "Kept.")))
	b.src.Put("drop.md", "text/markdown", []byte(doc("D", "Dropped.")))
	b.src.Put("private/x.md", "text/markdown", []byte(doc("P", "Private.")))
	chk, _ := chunk.New(chunk.Config{})
	p := New(Config{Bucket: "b", Match: func(k string) bool { return !strings.HasPrefix(k, "private/") }},
		b.src, extract.New(extract.Config{}), chk, b.emb, b.idx, b.led, nil, nil)
	b.enqueue(t, "keep.md", "drop.md", "private/x.md")
	if _, err := p.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	b.src.Delete("drop.md")
	b.enqueue(t, "drop.md")
	if _, err := p.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	got := b.indexKeys(t)
	if len(got) != 1 || got["keep.md"] != 1 {
		t.Fatalf("index keys = %v, want only keep.md", got)
	}
	if _, err := b.led.Object(ctx, "b", "drop.md"); !errors.Is(err, freshen.ErrNotFound) {
		t.Fatalf("ledger still has drop.md: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
