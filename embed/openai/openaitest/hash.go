package openaitest

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	"github.com/freshen-io/freshen"
)

// Hash is a fast, deterministic stand-in for a model: a text's vector is
// SHA-256 in counter mode, centred and normalized, so equal texts get
// equal vectors and different texts unrelated ones. Its tokens are words
// (runs of non-space), a measure unlike the client's byte estimate, so
// that tests can tell the server's count from the client's.
type Hash struct {
	// Dim is the vector length (default 64).
	Dim int
	// MaxTokens is reported in Model (default 8191); Hash embeds texts of
	// any length.
	MaxTokens int
}

var (
	_ freshen.Embedder     = Hash{}
	_ freshen.TokenCounter = Hash{}
)

// Model implements freshen.Embedder.
func (h Hash) Model() freshen.ModelInfo {
	return freshen.ModelInfo{Name: "openaitest/sha256", Dim: h.dim(), MaxTokens: orDefault(h.MaxTokens, 8191)}
}

func (h Hash) dim() int { return orDefault(h.Dim, 64) }

func orDefault(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// CountTokens counts words (at least one).
func (Hash) CountTokens(text string) int { return max(len(strings.Fields(text)), 1) }

// Embed implements freshen.Embedder.
func (h Hash) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([][]float32, len(texts))
	for i, t := range texts {
		if t == "" {
			return nil, freshen.Permanent(fmt.Errorf("openaitest: hash: text %d: %w", i, freshen.ErrEmptyInput))
		}
		out[i] = HashVector(t, h.dim())
	}
	return out, nil
}

// HashVector is Hash's vector for text.
func HashVector(text string, dim int) []float32 {
	v := make([]float32, dim)
	var block [sha256.Size]byte
	var ss float64
	for i := range v {
		if i%sha256.Size == 0 {
			var ctr [8]byte
			binary.LittleEndian.PutUint64(ctr[:], uint64(i/sha256.Size))
			block = sha256.Sum256(append(ctr[:], text...))
		}
		x := float64(block[i%sha256.Size]) - 127.5
		v[i] = float32(x)
		ss += x * x
	}
	inv := 1 / math.Sqrt(ss)
	for i := range v {
		v[i] = float32(float64(v[i]) * inv)
	}
	return v
}
