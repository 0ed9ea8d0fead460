package main

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/embed/openai/openaitest"
	"github.com/freshen-io/freshen/internal/app"
	"github.com/freshen-io/freshen/internal/config"
	"github.com/freshen-io/freshen/internal/memsource"
	"github.com/freshen-io/freshen/internal/pipeline"
)

// provider measures freshen against a simulated OpenAI tier-1 account:
// the simulator enforces RPM and TPM in a sliding minute, answers 429
// with Retry-After past them, and takes 150 ms + 0.05 ms per token. A
// backfill runs through the real pipeline, limiter, breaker and retries
// while fresh edits are announced by events every two seconds.
func (r *runner) provider() (section, error) {
	ctx := context.Background()
	const rpm, tpm = 3000, 1_000_000
	docs := 800 // about 1.1 M tokens: just over a minute at the TPM limit
	if r.quick {
		docs = 150
	}
	estimate := func(s string) int { return (len(s) + 2) / 3 } // the client's measure
	sim, err := openaitest.Start(openaitest.Options{Model: "sim-embed", Embedder: openaitest.Hash{Dim: 64, MaxTokens: 8191},
		CountTokens: estimate, RPM: rpm, TPM: tpm, Latency: 150 * time.Millisecond, LatencyPerToken: 50 * time.Microsecond})
	if err != nil {
		return section{}, err
	}
	defer sim.Close()
	dir, err := os.MkdirTemp("", "freshen-provider-")
	if err != nil {
		return section{}, err
	}
	defer os.RemoveAll(dir)
	os.Setenv("FRESHEN_BENCH_SIM_KEY", "sk-sim")
	cfg := config.Default()
	cfg.Source.Bucket, cfg.DataDir = "docs", dir
	cfg.Embedder = config.EmbedderConfig{Type: "openai", BaseURL: sim.URL(), Model: "sim-embed", Dim: 64, MaxTokens: 8191,
		APIKeyEnv: "FRESHEN_BENCH_SIM_KEY", Timeout: config.Duration(time.Minute), RPM: rpm, TPM: tpm, MaxConcurrency: 16,
		PricePerMillionTokens: 0.02, Batch: config.BatchConfig{MaxTexts: 64, MaxWait: config.Duration(2 * time.Millisecond)}}
	src := memsource.New("docs")
	rnd := rand.New(rand.NewSource(3))
	for i := 0; i < docs; i++ {
		var b strings.Builder
		fmt.Fprintf(&b, "# Backfill document %d\n\n", i)
		for p := 0; p < 8; p++ {
			b.WriteString(paragraph(rnd, 120+rnd.Intn(80)) + "\n\n")
		}
		src.Put(fmt.Sprintf("backfill/%05d.md", i), "text/markdown", []byte(b.String()))
	}
	a, err := app.Open(ctx, cfg, app.Options{Source: src, Exclusive: true})
	if err != nil {
		return section{}, err
	}
	defer a.Close()
	est, err := a.Estimate(ctx)
	if err != nil {
		return section{}, err
	}

	var mu sync.Mutex
	done := map[string]time.Time{}
	var freshTokens int64 // tokens the fresh edits cost, outside the estimate
	p := a.Pipeline(func(res pipeline.Result) {
		mu.Lock()
		defer mu.Unlock()
		if strings.HasPrefix(res.Key, "fresh/") {
			freshTokens += res.Work.TokensEmbedded
		}
		if res.Outcome == pipeline.OutcomeIndexed {
			done[res.Key] = time.Now()
		}
	})
	if err := p.Start(ctx); err != nil {
		return section{}, err
	}
	defer p.Stop()
	sink := a.Sink(nil, p.Wake)
	start := time.Now()
	if _, err := a.Reconciler(sink).Pass(ctx, false); err != nil {
		return section{}, err
	}
	var at10 openaitest.Stats
	var fresh []float64
	queued := map[string]time.Time{}
	for i := 0; ; i++ {
		time.Sleep(250 * time.Millisecond)
		elapsed := time.Since(start)
		if at10.Requests == 0 && elapsed >= 10*time.Second {
			at10 = sim.Stats()
		}
		if i%8 == 0 { // a fresh edit every two seconds, announced by an event
			key := fmt.Sprintf("fresh/%03d.md", i/8)
			src.Put(key, "text/markdown", []byte("# Fresh\n\n"+paragraph(rnd, 60)+"\n"))
			if err := sink.Put(ctx, "webhook", []freshen.Change{{Bucket: "docs", Key: key, EventTime: time.Now()}}); err != nil {
				return section{}, err
			}
			queued[key] = time.Now()
		}
		n, _, err := a.Ledger.Backlog(ctx)
		if err != nil {
			return section{}, err
		}
		mu.Lock()
		backfilled := 0
		for k := range done {
			if strings.HasPrefix(k, "backfill/") {
				backfilled++
			}
		}
		mu.Unlock()
		if backfilled == docs && n == 0 {
			break
		}
		if elapsed > 15*time.Minute {
			return section{}, fmt.Errorf("provider: backfill not done after %s (%d of %d)", elapsed, backfilled, docs)
		}
	}
	took := time.Since(start)
	end := sim.Stats()
	mu.Lock()
	for key, q := range queued {
		if at, ok := done[key]; ok {
			fresh = append(fresh, float64(at.Sub(q).Milliseconds()))
		}
	}
	mu.Unlock()
	sort.Float64s(fresh)
	st, err := a.Status(ctx)
	if err != nil {
		return section{}, err
	}
	spent := st.TokensEmbedded
	backfillTokens := est.Tokens
	utilization := float64(end.Tokens) / took.Minutes() / tpm
	share429 := 0.0
	if reqs := end.Requests - at10.Requests; reqs > 0 {
		share429 = float64(end.RateLimited-at10.RateLimited) / float64(reqs)
	}
	estErr := 0.0
	// The estimate covers the backfill; the fresh edits came later.
	if spent-freshTokens > 0 {
		estErr = abs(float64(backfillTokens)-float64(spent-freshTokens)) / float64(spent-freshTokens)
	}
	r.summary["provider_tpm_utilization"] = round(utilization, 3)
	r.summary["provider_429_share"] = round(share429, 4)
	r.summary["fresh_edit_lag_under_backfill_p99_ms"] = round(percentile(fresh, 99), 0)
	r.summary["estimate_error"] = round(estErr, 4)

	var b strings.Builder
	fmt.Fprintf(&b, "A simulated OpenAI tier-1 account (%d RPM, %d TPM in a sliding minute, 429 with Retry-After past them, 150 ms + 0.05 ms per token) behind freshen's own stack: the `openai` client, the limiter configured to the same limits (with AIMD on 429), the circuit breaker, retries and the micro-batcher, and the real extractor, chunker, ledger and index. A backfill of %d documents (%d chunks, %d tokens by `freshen estimate`) runs while a fresh edit is announced by an event every 2 s.\n\n", rpm, tpm, docs, est.Chunks, est.Tokens)
	b.WriteString(table([]string{"figure", "value", "target"}, [][]string{
		{"backfill time", took.Round(time.Second).String(), ""},
		{"tokens the provider served", fmt.Sprint(end.Tokens), ""},
		{"throughput ÷ TPM limit", fmt.Sprintf("%.2f", utilization), "≥ 0.9"},
		{"requests answered 429 after the first 10 s", fmt.Sprintf("%.2f%% (%d of %d)", 100*share429, end.RateLimited-at10.RateLimited, end.Requests-at10.Requests), "≤ 1%"},
		{"fresh edits", fmt.Sprint(len(fresh)), ""},
		{"fresh-edit lag p50 / p99", fmt.Sprintf("%.0f ms / %.0f ms", percentile(fresh, 50), percentile(fresh, 99)), "p99 ≤ 2 s + one request"},
		{"estimate error", fmt.Sprintf("%.2f%% (%d estimated, %d spent on the backfill)", 100*estErr, backfillTokens, spent-freshTokens), "≤ 1%"},
	}))
	return section{title: "Embedding provider under rate limits", body: b.String()}, nil
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
