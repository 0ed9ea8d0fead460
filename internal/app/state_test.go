package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/internal/config"
	"github.com/freshen-io/freshen/internal/memsource"
	"github.com/freshen-io/freshen/internal/testenv"
)

type stateBundle struct {
	cfg config.Config
	src *memsource.Source
	emb *testenv.HashEmbedder
}

func newStateBundle(t *testing.T) *stateBundle {
	cfg := config.Default()
	cfg.Source.Bucket, cfg.DataDir = "docs", t.TempDir()
	b := &stateBundle{cfg: cfg, src: memsource.New("docs"), emb: &testenv.HashEmbedder{}}
	for i := 0; i < 6; i++ {
		b.src.Put(fmt.Sprintf("doc-%d.md", i), "text/markdown",
			[]byte(fmt.Sprintf("# Doc %d\n\nParagraph %d about harbors and lanterns.\n\nAnother paragraph %d about bridges.\n", i, i, i)))
	}
	return b
}

func (b *stateBundle) open(t *testing.T) *App {
	t.Helper()
	a, err := Open(context.Background(), b.cfg, Options{Source: b.src, Embedder: b.emb, Exclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// sync is `freshen sync` in process: check, recover, reconcile, drain.
func (b *stateBundle) sync(t *testing.T, a *App) StateReport {
	t.Helper()
	ctx := context.Background()
	rep, err := a.CheckState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := a.Pipeline(nil)
	if _, err := p.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Reconciler(a.Sink(nil, nil)).Pass(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	return rep
}

// exact checks that the index holds exactly the ledger's chunks and
// only keys that exist.
func (b *stateBundle) exact(t *testing.T, a *App, wantKeys int) {
	t.Helper()
	ctx := context.Background()
	sum, err := a.Ledger.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	n := 0
	a.Index.(freshen.Scanner).Scan(ctx, func(r freshen.Record) error { keys[r.Key] = true; n++; return nil })
	if n != sum.Chunks || len(keys) != wantKeys || sum.Indexed != wantKeys {
		t.Fatalf("index holds %d chunks of %d keys, ledger %d chunks of %d objects; want %d keys", n, len(keys), sum.Chunks, sum.Indexed, wantKeys)
	}
	for k := range keys {
		if _, err := b.src.Stat(ctx, k); err != nil {
			t.Fatalf("index holds %s, which is gone", k)
		}
	}
}

func TestHealthyStateIsQuiet(t *testing.T) {
	b := newStateBundle(t)
	a := b.open(t)
	if rep := b.sync(t, a); rep.Problem != "" {
		t.Fatalf("first start: %s", rep.Problem)
	}
	a.Close()
	a = b.open(t)
	defer a.Close()
	rep, err := a.CheckState(context.Background())
	if err != nil || rep.Problem != "" || rep.Reclaimed != 0 {
		t.Fatalf("healthy restart: %+v, %v", rep, err)
	}
	if n, _, _ := a.Ledger.Backlog(context.Background()); n != 0 {
		t.Fatalf("a healthy restart queued %d keys", n)
	}
}

// TestLostIndexIsRebuiltWithoutEmbedding: an index.db truncated to zero
// is noticed and rebuilt from the embedding cache.
func TestLostIndexIsRebuiltWithoutEmbedding(t *testing.T) {
	b := newStateBundle(t)
	a := b.open(t)
	b.sync(t, a)
	b.exact(t, a, 6)
	a.Close()
	if err := os.Truncate(filepath.Join(b.cfg.DataDir, "index.db"), 0); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"index.db-wal", "index.db-shm"} {
		os.Remove(filepath.Join(b.cfg.DataDir, f))
	}
	before := b.emb.Texts.Load()
	a = b.open(t)
	defer a.Close()
	rep := b.sync(t, a)
	if !strings.Contains(rep.Problem, "index is empty") || rep.Reclaimed != 6 {
		t.Fatalf("report = %+v", rep)
	}
	b.exact(t, a, 6)
	if n := b.emb.Texts.Load() - before; n != 0 {
		t.Fatalf("rebuilding the index embedded %d texts, want 0", n)
	}
}

// TestLostLedgerReusesTheIndex: a lost ledger is rebuilt from the bucket,
// paying for nothing the index still holds, and rows of objects deleted
// meanwhile do not stay searchable.
func TestLostLedgerReusesTheIndex(t *testing.T) {
	b := newStateBundle(t)
	a := b.open(t)
	b.sync(t, a)
	a.Close()
	for _, f := range []string{"ledger.db", "ledger.db-wal", "ledger.db-shm"} {
		os.Remove(filepath.Join(b.cfg.DataDir, f))
	}
	b.src.Delete("doc-0.md") // while the ledger was gone
	before := b.emb.Texts.Load()
	a = b.open(t)
	defer a.Close()
	rep := b.sync(t, a)
	if !strings.Contains(rep.Problem, "ledger is empty") || rep.Seeded == 0 {
		t.Fatalf("report = %+v", rep)
	}
	b.exact(t, a, 5)
	if n := b.emb.Texts.Load() - before; n != 0 {
		t.Fatalf("rebuilding the ledger embedded %d texts, want 0", n)
	}
	// And the pair agrees now.
	rep, err := a.CheckState(context.Background())
	if err != nil || rep.Problem != "" {
		t.Fatalf("after the repair: %+v, %v", rep, err)
	}
}

// TestStatusPricesTheTokens: status reports lifetime and today's tokens
// and what they cost at the configured price.
func TestStatusPricesTheTokens(t *testing.T) {
	b := newStateBundle(t)
	b.cfg.Embedder.PricePerMillionTokens = 0.02
	a := b.open(t)
	defer a.Close()
	b.sync(t, a)
	st, err := a.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.TokensEmbedded == 0 || st.TokensToday != st.TokensEmbedded {
		t.Fatalf("tokens = %d, today %d", st.TokensEmbedded, st.TokensToday)
	}
	want := float64(st.TokensEmbedded) * 0.02 / 1e6
	if st.USDSpent != want || st.USDToday != want {
		t.Fatalf("usd = %v, today %v; want %v", st.USDSpent, st.USDToday, want)
	}
}

// TestEstimateMatchesTheSync: estimate's tokens are what the following
// sync spends, to the token, and an estimate after the sync is zero.
func TestEstimateMatchesTheSync(t *testing.T) {
	b := newStateBundle(t)
	b.cfg.Embedder.PricePerMillionTokens = 0.02
	b.cfg.Embedder.TPM = 1000
	// A duplicate of another document's content is embedded once.
	b.src.Put("copy.md", "text/markdown", []byte("# Doc 1\n\nParagraph 1 about harbors and lanterns.\n\nAnother paragraph 1 about bridges.\n"))
	a := b.open(t)
	defer a.Close()
	ctx := context.Background()
	est, err := a.Estimate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if est.Objects != 7 || est.Tokens == 0 {
		t.Fatalf("estimate = %+v", est)
	}
	before := b.emb.Texts.Load()
	b.sync(t, a)
	st, _ := a.Status(ctx)
	if st.TokensEmbedded != est.Tokens {
		t.Fatalf("estimate %d tokens, the sync spent %d", est.Tokens, st.TokensEmbedded)
	}
	if want := float64(est.Tokens) * 0.02 / 1e6; est.USD != want || est.Seconds != float64(est.Tokens)/1000*60 {
		t.Fatalf("estimate = %+v", est)
	}
	if b.emb.Texts.Load() == before {
		t.Fatal("nothing was embedded")
	}
	again, err := a.Estimate(ctx)
	if err != nil || again.Tokens != 0 || again.Objects != 0 {
		t.Fatalf("estimate after the sync = %+v, %v", again, err)
	}
}
