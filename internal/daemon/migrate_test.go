package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/chunk"
	"github.com/freshen-io/freshen/internal/app"
	"github.com/freshen-io/freshen/internal/config"
	"github.com/freshen-io/freshen/internal/memsource"
	"github.com/freshen-io/freshen/internal/testenv"
)

// recorder is the test model, remembering every text it embedded.
type recorder struct {
	testenv.HashEmbedder
	mu    sync.Mutex
	texts []string
}

func (r *recorder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	r.mu.Lock()
	r.texts = append(r.texts, texts...)
	r.mu.Unlock()
	return r.HashEmbedder.Embed(ctx, texts)
}

func (r *recorder) since(n int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.texts[n:]...)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.texts)
}

// loadCorpus puts the demo corpus into src; it returns its keys.
func loadCorpus(t *testing.T, src *memsource.Source) []string {
	t.Helper()
	var keys []string
	root := filepath.Join("..", "..", "examples", "corpus")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		key, _ := filepath.Rel(root, p)
		src.Put(key, "", body)
		keys = append(keys, key)
		return nil
	})
	if err != nil || len(keys) < 20 {
		t.Fatalf("corpus: %d keys, %v", len(keys), err)
	}
	return keys
}

// genOf says which chunker version made a search hit: a chunk's ID
// covers its hash, which covers the chunker's version.
func genOf(h app.SearchHit, versions map[string]int) int {
	for v, gen := range versions {
		for occ := range 8 {
			if string(freshen.MakeChunkID("docs", h.Key, freshen.HashChunk(v, h.Text), occ)) == h.ID {
				return gen
			}
		}
	}
	return 0
}

// TestMigrateChunkingWhileWriting changes the chunk settings of a running
// service while a writer keeps editing: search answers come from the old
// generation only until the switch and from the new one only after it;
// the new generation is exact; no chunk whose text the old generation
// had is embedded again; a rollback restores the old generation, kept
// fresh meanwhile; an abort drops the other one.
func TestMigrateChunkingWhileWriting(t *testing.T) {
	dir := t.TempDir()
	model := &recorder{HashEmbedder: testenv.HashEmbedder{Dimension: 16}}
	small := chunk.Config{MinTokens: 32, TargetTokens: 80, MaxTokens: 160}
	large := chunk.Config{MinTokens: 64, TargetTokens: 200, MaxTokens: 400}
	base := config.Default()
	base.Source.Bucket, base.DataDir, base.Listen = "docs", dir, "127.0.0.1:0"
	base.ReconcileInterval = config.Duration(time.Hour)
	cfgA, cfgB := base, base
	cfgA.Chunk, cfgB.Chunk = small, large
	chA, _ := chunk.New(small)
	chB, _ := chunk.New(large)
	versions := map[string]int{chA.Version(): 1, chB.Version(): 2}

	src := memsource.New("docs")
	keys := loadCorpus(t, src)
	b := serve(t, cfgA, src, model)

	status := func() app.Status {
		_, body := b.get(t, "/v1/status")
		var s app.Status
		if err := json.Unmarshal([]byte(body), &s); err != nil {
			t.Fatalf("status: %v: %s", err, body)
		}
		return s
	}
	eventuallyFor(t, time.Minute, "generation 1 indexed", func() bool { s := status(); return s.Objects == len(keys) && s.Backlog == 0 })

	// The migration is driven as the CLI drives it: from another App on
	// the same data directory.
	cli := func() *app.App {
		c, err := app.Open(context.Background(), cfgB, app.Options{Source: src, Embedder: model})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := cli()
	plan, err := c.PlanMigration(context.Background(), cfgB)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Estimate.Objects != len(keys) || plan.Estimate.Cached == 0 || plan.Estimate.Tokens == 0 {
		t.Fatalf("plan: %+v", plan)
	}
	t.Logf("plan: %v; %d objects, %d chunks, %d reused, %d tokens", plan.Changes, plan.Estimate.Objects, plan.Estimate.Chunks, plan.Estimate.Cached, plan.Estimate.Tokens)
	known := map[string]bool{} // texts generation 1's cache had before
	for _, tx := range model.since(0) {
		known[tx] = true
	}
	embeddedBefore := model.count()
	if _, err := c.StartMigration(context.Background(), cfgB); err != nil {
		t.Fatal(err)
	}
	c.Close()

	// A writer edits documents all along; searches check the generation.
	var stop atomic.Bool
	var edits atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			k := keys[i%len(keys)]
			if !strings.HasSuffix(k, ".md") {
				continue
			}
			src.Put(k, "", []byte(fmt.Sprintf("# Edited %d\n\nRevision %d of this document, paragraph about zebras %d.\n", i, i, i)))
			b.post(t, url.QueryEscape(k))
			edits.Add(1)
			time.Sleep(30 * time.Millisecond)
		}
	}()
	search := func() []app.SearchHit {
		code, body := b.get(t, "/v1/search?q=zebras+document+revision&k=10")
		var hits []app.SearchHit
		if err := json.Unmarshal([]byte(body), &hits); err != nil || code != 200 {
			t.Fatalf("search: %d %s", code, body)
		}
		return hits
	}
	checkGen := func(want int) {
		t.Helper()
		for _, h := range search() {
			if g := genOf(h, versions); g != want {
				t.Fatalf("a search hit came from generation %d (want %d only): %+v", g, want, h)
			}
		}
	}
	var migration *app.GenerationProgress
	eventuallyFor(t, 2*time.Minute, "generation 2 built", func() bool {
		checkGen(1)
		s := status()
		migration = s.Migration
		return s.Migration != nil && s.Migration.Objects == s.Migration.Of && s.Migration.Backlog == 0
	})
	t.Logf("built: %d of %d objects, %d tokens, %d chunks reused", migration.Objects, migration.Of, migration.Tokens, migration.Reused)

	// Switch while the writer goes on; it refuses while work is queued.
	c = cli()
	var rep app.SwitchReport
	eventuallyFor(t, time.Minute, "a switch", func() bool {
		checkGen(1)
		rep, err = c.Switch(context.Background(), time.Hour)
		if err != nil && !errors.Is(err, app.ErrNotComplete) {
			t.Fatal(err)
		}
		return err == nil
	})
	c.Close()
	t.Logf("switched: %+v", rep)
	eventuallyFor(t, 20*time.Second, "the service to serve generation 2", func() bool { return status().Generation == 2 })
	for range 20 {
		checkGen(2)
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d edits while migrating", edits.Load())

	// Exact once the edits are in; and nothing embedded twice.
	eventuallyFor(t, time.Minute, "both generations caught up", func() bool {
		s := status()
		return s.Backlog == 0 && s.Migration != nil && s.Migration.Backlog == 0
	})
	c = cli()
	for _, g := range []*app.App{c, c.Other} {
		vr, err := g.Verify(context.Background(), false, false)
		if err != nil || vr.Drifts() > 0 {
			t.Fatalf("generation %d verify: %+v, %v", g.Gen.ID, vr, err)
		}
	}
	var again int
	for _, tx := range model.since(embeddedBefore) {
		if known[tx] {
			again++
		}
	}
	if again > 0 {
		t.Fatalf("%d texts generation 1 had were embedded again for generation 2", again)
	}
	if st, _ := c.Migration(context.Background()); st.Other == nil || st.Other.Reused == 0 {
		t.Fatalf("migration status after switch: %+v", st)
	}

	// Rollback: generation 1, kept fresh meanwhile, serves again.
	if _, err := c.Switch(context.Background(), time.Hour); err != nil {
		t.Fatal(err)
	}
	c.Close()
	eventuallyFor(t, 20*time.Second, "the service to serve generation 1 again", func() bool { return status().Generation == 1 })
	checkGen(1)
	c = cli()
	if c.Gen.ID != 1 {
		t.Fatalf("serving generation %d after the rollback", c.Gen.ID)
	}
	for _, k := range keys {
		obj, err := src.Stat(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		st, err := c.Ledger.State(context.Background(), "docs", k)
		if err != nil || st.Object.ETag != obj.ETag {
			t.Fatalf("generation 1 missed an edit made while generation 2 served: %s has %q, the bucket %q (%v)", k, st.Object.ETag, obj.ETag, err)
		}
	}
	c.Close()

	// Abort drops generation 2: it leaves the service at once.
	c = cli()
	if _, err := c.Abort(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.Close()
	eventuallyFor(t, 20*time.Second, "the migration gone from status", func() bool { return status().Migration == nil })
}

func eventuallyFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
