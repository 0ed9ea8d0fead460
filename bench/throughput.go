package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/freshen-io/freshen/embed/builtin"
)

// throughput measures the built-in model and the pipeline's own ceiling.
func (r *runner) throughput() (section, error) {
	ctx := context.Background()
	t0 := time.Now()
	m, err := builtin.Default()
	if err != nil {
		return section{}, err
	}
	load := time.Since(t0)
	budget := 3 * time.Second
	if r.quick {
		budget = time.Second
	}
	short := func(i int) string { return fmt.Sprintf("The quarterly report number %d describes the budget.", i) }
	window := func(i int) string {
		var b strings.Builder
		for j := 0; m.CountTokens(b.String()) < builtin.MaxTokens-4; j++ {
			fmt.Fprintf(&b, "word%d and more text %d ", i+j, j)
		}
		return b.String()
	}
	var rows [][]string
	var tokensPerS float64
	for _, c := range []struct {
		name  string
		text  func(int) string
		batch int
	}{{"short sentence", short, 1}, {"short sentence", short, 32}, {"128-token window", window, 1}, {"128-token window", window, 32}} {
		texts := make([]string, c.batch)
		tokens := 0
		for i := range texts {
			texts[i] = c.text(i)
			tokens += m.CountTokens(texts[i])
		}
		n := 0
		start := time.Now()
		for time.Since(start) < budget || n == 0 {
			if _, err := m.Embed(ctx, texts); err != nil {
				return section{}, err
			}
			n++
		}
		sec := time.Since(start).Seconds()
		ips := float64(n*c.batch) / sec
		tps := float64(n*tokens) / sec
		rows = append(rows, []string{c.name, fmt.Sprint(c.batch), fmt.Sprintf("%.0f", float64(tokens)/float64(c.batch)),
			fmt.Sprintf("%.1f", ips), fmt.Sprintf("%.0f", tps), fmt.Sprintf("%.2f", 1000*sec/float64(n*c.batch))})
		if c.batch == 32 && c.name == "128-token window" {
			tokensPerS = tps
		}
	}
	r.summary["builtin_tokens_per_s"] = round(tokensPerS, 0)

	objs, perObj, err := pipelineCeiling(ctx, r.quick)
	if err != nil {
		return section{}, err
	}
	r.summary["pipeline_objects_per_s"] = round(objs, 1)

	var b strings.Builder
	fmt.Fprintf(&b, "Built-in model (Universal Sentence Encoder Lite, pure Go with AVX2/FMA kernels), loaded in %s. `Embed` calls including tokenization; inputs/s counts texts (windows), tokens are the model's.\n\n", load.Round(time.Millisecond))
	b.WriteString(table([]string{"input", "batch", "tokens/input", "inputs/s", "tokens/s", "ms/input"}, rows))
	fmt.Fprintf(&b, "\nAlso as a Go benchmark: `go test ./embed/builtin -run '^$' -bench Embed`.\n\n")
	fmt.Fprintf(&b, "Pipeline ceiling with a zero-cost embedder (real extractor, chunker, SQLite ledger and embedded index; objects of ~%d chunks from memory): **%.0f objects/s**.\n", perObj, objs)
	return section{title: "Embedding and pipeline throughput", body: b.String()}, nil
}

func round(x float64, digits int) float64 {
	p := 1.0
	for i := 0; i < digits; i++ {
		p *= 10
	}
	return float64(int64(x*p+0.5)) / p
}

// countTokens is the shared token measure of the locality suite (the same
// formula the JS peers use): ceil(code points / 4).
func countTokens(s string) int { return (len([]rune(s)) + 3) / 4 }
