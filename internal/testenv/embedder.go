package testenv

import (
	"context"
	"crypto/sha256"
	"sync/atomic"

	"github.com/freshen-io/freshen"
)

// HashEmbedder is a fast, deterministic stand-in for a model in tests
// where what matters is how often the pipeline embeds, not what: each
// text's vector comes from its SHA-256, and Texts counts the texts.
type HashEmbedder struct {
	// Dimension of the vectors; 0 means 8.
	Dimension int
	Texts     atomic.Int64
}

var _ freshen.Embedder = (*HashEmbedder)(nil)

// Model implements freshen.Embedder.
func (e *HashEmbedder) Model() freshen.ModelInfo {
	return freshen.ModelInfo{Name: "test/hash", Dim: e.dim(), MaxTokens: 128}
}

func (e *HashEmbedder) dim() int {
	if e.Dimension == 0 {
		return 8
	}
	return e.Dimension
}

// Embed implements freshen.Embedder.
func (e *HashEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e.Texts.Add(int64(len(texts)))
	out := make([][]float32, len(texts))
	for i, t := range texts {
		h := sha256.Sum256([]byte(t))
		v := make([]float32, e.dim())
		for j := range v {
			v[j] = float32(h[j%len(h)]) - 127.5
		}
		out[i] = v
	}
	return out, nil
}
