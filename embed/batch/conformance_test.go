package batch

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/embed/builtin"
	"github.com/freshen-io/freshen/embed/embedtest"
	fakes "github.com/freshen-io/freshen/embed/internal/fake"
)

// hashEmbedder is a contract-abiding stand-in for a model: each text's
// vector is its SHA-256, centred and normalized.
type hashEmbedder struct{}

func (hashEmbedder) Model() freshen.ModelInfo {
	return freshen.ModelInfo{Name: "test/sha256", Dim: sha256.Size, MaxTokens: 512}
}

func (hashEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([][]float32, len(texts))
	for i, t := range texts {
		if t == "" {
			return nil, fmt.Errorf("hash: text %d: %w", i, freshen.ErrEmptyInput)
		}
		out[i] = fakes.HashVec(t)
	}
	return out, nil
}

func TestConformance(t *testing.T) {
	m, err := builtin.Default()
	if err != nil {
		t.Fatalf("load built-in model: %v", err)
	}
	for name, c := range map[string]struct {
		inner freshen.Embedder
		cfg   Config
	}{
		"Builtin": {m, Config{}},
		"Fake":    {hashEmbedder{}, Config{}},
		// Calls of two texts or more bypass the gathering loop.
		"FakeSmallBatches": {hashEmbedder{}, Config{MaxTexts: 2}},
	} {
		t.Run(name, func(t *testing.T) {
			embedtest.Run(t, func(t *testing.T) freshen.Embedder { return setup(t, c.inner, c.cfg) })
		})
	}
}
