package builtin

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Run: go test -run '^$' -bench . -benchtime 3s ./embed/builtin/
// It reports inputs/s and tokens/s for short sentences and for full
// 128-token windows, one input per call and 32 per call.

func benchTexts(m *Model, window bool, n int) []string {
	out := make([]string, n)
	for i := range out {
		if !window {
			out[i] = fmt.Sprintf("The quarterly report number %d describes the budget.", i)
			continue
		}
		var b strings.Builder
		for j := 0; m.CountTokens(b.String()) < MaxTokens; j++ {
			fmt.Fprintf(&b, "word%d and more text %d ", i+j, j)
		}
		ids := m.Tokenize(b.String())
		_ = ids
		out[i] = b.String()
	}
	return out
}

func BenchmarkEmbed(b *testing.B) {
	m, err := Default()
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		window bool
		batch  int
	}{{"short/single", false, 1}, {"short/batch32", false, 32}, {"window128/single", true, 1}, {"window128/batch32", true, 32}} {
		b.Run(c.name, func(b *testing.B) {
			texts := benchTexts(m, c.window, c.batch)
			seqs := make([][]int, len(texts))
			tokens := 0
			for i, t := range texts {
				seqs[i] = m.Tokenize(t)
				if len(seqs[i]) > MaxTokens {
					seqs[i] = seqs[i][:MaxTokens]
				}
				tokens += len(seqs[i])
			}
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				m.embedTokens(seqs)
			}
			sec := time.Since(start).Seconds()
			b.ReportMetric(float64(b.N*len(seqs))/sec, "inputs/s")
			b.ReportMetric(float64(b.N*tokens)/sec, "tokens/s")
		})
	}
}

func BenchmarkEmbedText(b *testing.B) {
	m, err := Default()
	if err != nil {
		b.Fatal(err)
	}
	texts := benchTexts(m, false, 32)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := m.Embed(context.Background(), texts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoad(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := Load(modelBytes); err != nil {
			b.Fatal(err)
		}
	}
}
