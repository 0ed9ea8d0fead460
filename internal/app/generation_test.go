package app

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/freshen-io/freshen/chunk"
	"github.com/freshen-io/freshen/internal/config"
)

// syncAll is `freshen sync` of every live generation, in process.
func (b *stateBundle) syncAll(t *testing.T, a *App) {
	t.Helper()
	b.sync(t, a)
	if a.Other != nil {
		b.sync(t, a.Other)
	}
}

// reopen is what a process does when the registry changes.
func reopen(t *testing.T, a *App) *App {
	t.Helper()
	n, err := a.Reopen(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	return n
}

// TestGenerationLifecycle: a configuration that changes the chunking is
// not applied to the serving generation; it is planned, built beside
// it, switched to, and the old generation is dropped once its grace
// period ends (its index and ledger emptied); an aborted build is
// deleted with its directory.
func TestGenerationLifecycle(t *testing.T) {
	defer func(g time.Duration) { dropGrace = g }(dropGrace)
	dropGrace = 0
	ctx := context.Background()
	b := newStateBundle(t)
	a := b.open(t)
	b.syncAll(t, a)
	b.exact(t, a, 6)
	if a.Gen.ID != 1 || a.Other != nil || !a.Matches(b.cfg) {
		t.Fatalf("a new deployment serves generation %d (other %v, matches %v)", a.Gen.ID, a.Other, a.Matches(b.cfg))
	}
	if _, err := a.PlanMigration(ctx, b.cfg); err == nil || !strings.Contains(err.Error(), "nothing to migrate") {
		t.Fatalf("plan of the serving configuration: %v", err)
	}
	v1 := a.Chunker.Version()

	next := b.cfg
	next.Chunk = chunk.Config{MinTokens: 8, TargetTokens: 16, MaxTokens: 40}
	// Opening with the new configuration does not apply it.
	a.Close()
	b.cfg, next = next, b.cfg
	a = b.open(t)
	if a.Chunker.Version() != v1 || a.Matches(b.cfg) {
		t.Fatalf("the serving generation took the file's chunking (%s, was %s)", a.Chunker.Version(), v1)
	}

	// Abort a first build: its directory goes at the next collection.
	if _, err := a.StartMigration(ctx, b.cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := a.StartMigration(ctx, b.cfg); err == nil {
		t.Fatal("a second migration started while one is building")
	}
	a = reopen(t, a)
	if a.Other == nil || a.Other.Gen.ID != 2 || a.Other.Gen.State != GenBuilding {
		t.Fatalf("after start: other = %+v", a.Other)
	}
	b.syncAll(t, a)
	gen2 := filepath.Join(b.cfg.DataDir, "gen-2")
	if _, err := os.Stat(filepath.Join(gen2, "ledger.db")); err != nil {
		t.Fatalf("generation 2's ledger: %v", err)
	}
	if _, err := a.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	a = reopen(t, a)
	if a.Other != nil {
		t.Fatal("an aborted generation is still maintained")
	}
	if err := a.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(gen2); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("generation 2's directory after the drop: %v", err)
	}

	// Build generation 3, switch with no grace: generation 1 is dropped.
	g, err := a.StartMigration(ctx, b.cfg)
	if err != nil || g.ID != 3 {
		t.Fatalf("start: %+v, %v", g, err)
	}
	a = reopen(t, a)
	if _, err := a.Switch(ctx, time.Hour); !errors.Is(err, ErrNotComplete) {
		t.Fatalf("switch to an empty generation: %v", err)
	}
	b.syncAll(t, a)
	b.exact(t, a.Other, 6)
	st, err := a.Migration(ctx)
	if err != nil || st.Other == nil || st.Other.Objects != 6 || st.Other.Of != 6 {
		t.Fatalf("migration status: %+v %v", st.Other, err)
	}
	if _, err := a.Switch(ctx, 0); err != nil {
		t.Fatal(err)
	}
	a = reopen(t, a)
	if a.Gen.ID != 3 || a.Chunker.Version() == v1 || a.Other == nil || a.Other.Gen.State != GenRetired {
		t.Fatalf("after the switch: serving %d (%s), other %+v", a.Gen.ID, a.Chunker.Version(), a.Other)
	}
	if hits, err := a.Search(ctx, "harbors", 3, ""); err != nil || len(hits) == 0 {
		t.Fatalf("search after the switch: %v, %v", hits, err)
	}
	for range 2 { // retire, then drop
		if err := a.Collect(ctx); err != nil {
			t.Fatal(err)
		}
	}
	reg, err := a.ReadRegistry(ctx)
	if err != nil || reg.Shape() != "3:serving" {
		t.Fatalf("registry after the grace period: %q, %v", reg.Shape(), err)
	}
	if sum, err := a.shared.root.Summary(ctx); err != nil || sum.Chunks != 0 || sum.Indexed != 0 {
		t.Fatalf("generation 1's ledger after the drop: %+v, %v", sum, err)
	}
	a = reopen(t, a)
	defer a.Close()
	if a.Other != nil || a.Gen.ID != 3 {
		t.Fatalf("after the drop: serving %d, other %v", a.Gen.ID, a.Other)
	}
	b.exact(t, a, 6)
}

// TestGenerationTargets: a new generation's index gets a name of its own
// when the configuration keeps the serving one's; the file's tuning
// applies to the generation whose vectors it makes.
func TestGenerationTargets(t *testing.T) {
	serving := Generation{ID: 1, Spec: Spec{Index: config.IndexConfig{Type: "pgvector"}}}
	next := config.Default()
	next.Index.Type = "pgvector"
	next.Embedder.Model = "other"
	if g := newGeneration(next, serving, 2); g.Spec.Index.Table != "freshen_chunks_g2" {
		t.Fatalf("table = %q", g.Spec.Index.Table)
	}
	serving = Generation{ID: 2, Spec: Spec{Index: config.IndexConfig{Type: "pgvector", Table: "freshen_chunks_g2"}}}
	if g := newGeneration(next, serving, 3); g.Spec.Index.Table != "" {
		t.Fatalf("the configuration's table, free again, is used: %q", g.Spec.Index.Table)
	}
	next.Index.Table = "freshen_chunks_g2"
	if g := newGeneration(next, serving, 3); g.Spec.Index.Table != "freshen_chunks_g3" {
		t.Fatalf("table = %q", g.Spec.Index.Table)
	}
	next.Index.Table = "docs_v2"
	if g := newGeneration(next, serving, 3); g.Spec.Index.Table != "docs_v2" {
		t.Fatalf("a table the configuration names is kept: %q", g.Spec.Index.Table)
	}
	next.Index = config.IndexConfig{Type: "weaviate", Collection: "Docs"}
	if g := newGeneration(next, Generation{ID: 1, Spec: Spec{Index: next.Index}}, 2); g.Spec.Index.Collection != "DocsG2" {
		t.Fatalf("collection = %q", g.Spec.Index.Collection)
	}

	file := config.Default()
	file.Embedder.RPM = 500
	g := Generation{ID: 2, Spec: specOf(config.Default())}
	g.Spec.Embedder.RPM = 10
	if c := configFor(file, g); c.Embedder.RPM != 500 || !strings.HasSuffix(c.DataDir, "gen-2") || c.Ledger.Schema != "freshen_g2" {
		t.Fatalf("configFor: rpm %d, data-dir %s, schema %s", c.Embedder.RPM, c.DataDir, c.Ledger.Schema)
	}
	file.Embedder.Model = "something-else"
	if c := configFor(file, g); c.Embedder.RPM != 10 || c.Embedder.Model != "" {
		t.Fatalf("a file for other vectors must not tune the generation: %+v", c.Embedder)
	}
}
