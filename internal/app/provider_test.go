package app

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/embed/openai/openaitest"
	"github.com/freshen-io/freshen/internal/config"
	"github.com/freshen-io/freshen/internal/memsource"
	"github.com/freshen-io/freshen/internal/testenv"
)

// TestProviderUnderFaults: freshen on an OpenAI-compatible server that
// fails a fifth of its requests (429 with Retry-After, 500, 503, resets)
// converges exactly, parks nothing, and pays for each distinct chunk in
// at most one successful response.
func TestProviderUnderFaults(t *testing.T) {
	fake := openaitest.New(t, openaitest.Options{APIKey: "sk-test", Model: "test-embed", FaultRate: 0.2, Seed: 7, Record: true,
		Embedder: openaitest.Hash{Dim: 32, MaxTokens: 512},
		// The server counts words; freshen's own estimate differs, so
		// equal counters show that the server's usage was recorded.
		CountTokens: func(s string) int { return len(strings.Fields(s)) },
		Faults: []openaitest.Fault{openaitest.RateLimit(20 * time.Millisecond), openaitest.Error(500, ""),
			openaitest.Error(503, ""), openaitest.Reset()}})
	t.Setenv("FRESHEN_TEST_OPENAI_KEY", "sk-test")
	cfg := config.Default()
	cfg.Source.Bucket, cfg.DataDir = "docs", t.TempDir()
	cfg.Embedder = config.EmbedderConfig{Type: "openai", BaseURL: fake.URL(), Model: "test-embed", Dim: 32, MaxTokens: 512,
		APIKeyEnv: "FRESHEN_TEST_OPENAI_KEY", Timeout: config.Duration(10 * time.Second), Batch: config.BatchConfig{MaxTexts: 8}}
	src := memsource.New("docs")
	for i := 0; i < 30; i++ {
		src.Put(fmt.Sprintf("doc-%02d.md", i), "text/markdown",
			[]byte(fmt.Sprintf("# Doc %d\n\nParagraph %d about harbors and lanterns.\n\nAnother paragraph %d about bridges and ferries.\n", i, i, i)))
	}
	a, err := Open(context.Background(), cfg, Options{Source: src, Exclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b := &stateBundle{cfg: cfg, src: src}
	b.sync(t, a)
	b.exact(t, a, 30)
	sum, _ := a.Ledger.Summary(context.Background())
	st := fake.Stats()
	if sum.Failed != 0 {
		t.Fatalf("%d objects parked under a fifth of failing requests", sum.Failed)
	}
	if st.Faults == 0 {
		t.Fatal("no fault was injected")
	}
	if int(st.Inputs) != sum.Chunks {
		t.Fatalf("the server embedded %d inputs in successful responses for %d distinct chunks", st.Inputs, sum.Chunks)
	}
	counters, err := a.Ledger.Counters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if counters.TokensEmbedded != st.Tokens || counters.TokensToday != st.Tokens {
		t.Fatalf("counters say %d tokens (%d today), the server counted %d", counters.TokensEmbedded, counters.TokensToday, st.Tokens)
	}
	var estimate int64
	for _, r := range fake.Requests() {
		for _, in := range r.Input {
			estimate += int64(freshen.CountTokens(a.Embedder, in))
		}
	}
	if estimate == st.Tokens {
		t.Fatalf("freshen's own count (%d) equals the server's: the test cannot tell them apart", estimate)
	}
}

// TestProviderConfigFailsAtStart: a missing key, an unknown model without
// its dimension, or a dimension the index does not hold fail at start
// with a clear message, before anything is read or embedded.
func TestProviderConfigFailsAtStart(t *testing.T) {
	base := config.Default()
	base.Source.Bucket, base.DataDir = "docs", t.TempDir()
	for _, c := range []struct {
		edit func(*config.EmbedderConfig)
		want string
	}{
		{func(e *config.EmbedderConfig) {
			e.Type, e.Model, e.APIKeyEnv = "openai", "text-embedding-3-small", "FRESHEN_UNSET_KEY"
		}, "$FRESHEN_UNSET_KEY is empty"},
		{func(e *config.EmbedderConfig) {
			e.Type, e.Model, e.BaseURL, e.APIKeyEnv = "openai", "my-local-model", "http://127.0.0.1:1/v1", "FRESHEN_UNSET_KEY"
		}, "embedder.dim"},
		{func(e *config.EmbedderConfig) {
			e.Type, e.Model = "bedrock", "amazon.titan-embed-text-v2:0"
			e.Dimensions = 300
		}, "300"},
	} {
		cfg := base
		c.edit(&cfg.Embedder)
		err := Check(cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: Check = %v, want %q", cfg.Embedder, err, c.want)
		}
	}
	// An index written by another model's dimension is refused.
	cfg := base
	a, err := Open(context.Background(), cfg, Options{Source: memsource.New("docs"), Embedder: &testenv.HashEmbedder{Dimension: 8}, Exclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	a.Index.Upsert(context.Background(), []freshen.Record{{ID: "x", Bucket: "docs", Key: "k", Hash: "h", Vector: make([]float32, 8)}})
	a.Close()
	_, err = Open(context.Background(), cfg, Options{Source: memsource.New("docs"), Embedder: &testenv.HashEmbedder{Dimension: 16}, Exclusive: true})
	if err == nil || !strings.Contains(err.Error(), "8-dimensional") {
		t.Fatalf("Open with a 16-d model on an 8-d index: %v", err)
	}
}

// TestProviderDownOpensTheCircuit: a provider that keeps failing is
// reported (for /readyz, /v1/status and freshen_stalled) once the circuit
// in front of it opens.
func TestProviderDownOpensTheCircuit(t *testing.T) {
	fake := openaitest.New(t, openaitest.Options{Model: "test-embed", Embedder: openaitest.Hash{Dim: 32, MaxTokens: 512},
		FaultRate: 1, Faults: []openaitest.Fault{openaitest.Error(503, "")}})
	cfg := config.Default()
	cfg.Source.Bucket, cfg.DataDir = "docs", t.TempDir()
	cfg.Embedder = config.EmbedderConfig{Type: "openai", BaseURL: fake.URL(), Model: "test-embed", Dim: 32, MaxTokens: 512,
		APIKeyEnv: "FRESHEN_UNSET_KEY", Timeout: config.Duration(10 * time.Second), Batch: config.BatchConfig{MaxTexts: 8}}
	emb, err := embedders["openai"](context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer emb.(interface{ Close() error }).Close()
	h := emb.(interface{ ProviderHealth() error })
	if err := h.ProviderHealth(); err != nil {
		t.Fatalf("before any call: %v", err)
	}
	var last error
	for i := 0; i < 10 && h.ProviderHealth() == nil; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, last = emb.Embed(ctx, []string{"some text"})
		cancel()
	}
	if err := h.ProviderHealth(); err == nil || !strings.Contains(err.Error(), "embedding provider") {
		t.Fatalf("after sustained 503s: health %v (last error %v)", err, last)
	}
	// (That the open circuit's error is not an attempt, so nothing is
	// parked, is the breaker's own test.)
}

// TestProviderDownForAMinute: the provider answers every request with
// 503 for a whole minute. The circuit opens and stops the calls (a few
// probes, not a request storm), work waits in the queue (nothing is
// parked as failed, though two failed attempts would park a key), the
// circuit closes once the provider answers again, and the backlog drains.
func TestProviderDownForAMinute(t *testing.T) {
	t.Parallel()
	const outage = time.Minute
	fake := openaitest.New(t, openaitest.Options{Model: "test-embed", Embedder: openaitest.Hash{Dim: 32, MaxTokens: 512}})
	cfg := config.Default()
	cfg.Source.Bucket, cfg.DataDir = "docs", t.TempDir()
	cfg.Embedder = config.EmbedderConfig{Type: "openai", BaseURL: fake.URL(), Model: "test-embed", Dim: 32, MaxTokens: 512,
		APIKeyEnv: "FRESHEN_UNSET_KEY", Timeout: config.Duration(10 * time.Second), CircuitOpenFor: config.Duration(time.Second),
		Batch: config.BatchConfig{MaxTexts: 8}}
	cfg.Retry.Backoff = config.Duration(10 * time.Millisecond)
	cfg.Limits.MaxAttempts = 2 // an outage counted as attempts would park every key
	src := memsource.New("docs")
	for i := 0; i < 20; i++ {
		src.Put(fmt.Sprintf("doc-%02d.md", i), "text/markdown", []byte(fmt.Sprintf("# Doc %d\n\nText %d about the harbor.\n", i, i)))
	}
	a, err := Open(context.Background(), cfg, Options{Source: src, Exclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	h := a.Embedder.(interface{ ProviderHealth() error })
	var mu sync.Mutex
	var opened, closed time.Time
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			mu.Lock()
			switch err := h.ProviderHealth(); {
			case err != nil && opened.IsZero():
				opened = time.Now()
			case err == nil && !opened.IsZero() && closed.IsZero():
				closed = time.Now()
			}
			mu.Unlock()
		}
	}()
	start := time.Now()
	fake.DownFor(openaitest.Error(503, ""), outage)
	b := &stateBundle{cfg: cfg, src: src}
	b.sync(t, a)
	drained := time.Since(start)
	close(stop)
	<-watched
	st := fake.Stats()
	t.Logf("circuit opened after %s, closed after %s; drained after %s; %d requests failed during the outage",
		opened.Sub(start).Round(time.Millisecond), closed.Sub(start).Round(time.Millisecond), drained.Round(time.Millisecond), st.Faults)
	if opened.IsZero() || closed.IsZero() {
		t.Fatalf("the circuit never opened (%v) or never closed again (%v)", opened, closed)
	}
	if closed.Sub(start) < outage {
		t.Fatalf("the circuit closed %s into a %s outage", closed.Sub(start), outage)
	}
	// One request a second would be 60; the breaker probes far less.
	if st.Faults > 30 {
		t.Fatalf("%d requests reached the provider while it was down: the circuit did not stop them", st.Faults)
	}
	b.exact(t, a, 20)
	if sum, _ := a.Ledger.Summary(context.Background()); sum.Failed != 0 {
		t.Fatalf("%d objects parked because the provider was down", sum.Failed)
	}
}
