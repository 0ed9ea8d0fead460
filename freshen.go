// Package freshen keeps a vector index equal to the chunks of the current
// content of every object under watched S3 prefixes, embedding only what
// changed. This root package holds the domain types, the sentinel errors and
// the interfaces that every technology-specific package implements; it
// imports no SDK and does no I/O.
package freshen

import (
	"context"
	"errors"
	"fmt"
)

// Sentinel errors. Implementations wrap them with %w so callers can use
// errors.Is across package boundaries.
var (
	// ErrNotFound reports that an object, key or record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrEmptyInput reports an input that has nothing to embed (for example
	// an empty string). It is permanent: retrying the same input fails again.
	ErrEmptyInput = errors.New("empty input")
)

// ModelInfo describes an embedding model. Name and Dim are part of the
// identity of every cached embedding: a change of either is a change of model.
type ModelInfo struct {
	// Name identifies the model and its weights, e.g. "builtin/use-lite-f16".
	Name string `json:"name"`
	// Dim is the length of every vector the model returns.
	Dim int `json:"dim"`
	// MaxTokens is the model's context window in its own tokens; longer
	// inputs are handled by the embedder (windowing) or rejected, as its
	// documentation says.
	MaxTokens int `json:"max_tokens"`
}

// Embedder turns texts into vectors.
//
// Contract:
//   - Embed returns exactly one vector per input text, in input order, each of
//     length Model().Dim. Vectors are L2-normalized unless the implementation
//     documents otherwise.
//   - Embed is deterministic for a given model and safe for concurrent use.
//   - A text with nothing to embed yields an error wrapping ErrEmptyInput;
//     such errors are permanent. Errors from remote providers say whether
//     they are retryable through the classification in the retry decorator,
//     never by string matching in callers.
//   - Embed honours ctx cancellation between batches and returns ctx.Err().
//   - The returned slices belong to the caller.
type Embedder interface {
	Model() ModelInfo
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}

// TokenCounter is implemented by embedders that count their own tokens;
// freshen then reports the model's tokens (what a provider bills) instead
// of the chunker's estimate. Decorators forward it.
type TokenCounter interface {
	CountTokens(text string) int
}

// CountTokens counts text's tokens with e's own measure when it has one,
// else estimates four bytes a token.
func CountTokens(e Embedder, text string) int {
	if tc, ok := e.(TokenCounter); ok {
		return tc.CountTokens(text)
	}
	return (len(text) + 3) / 4
}

// QueryEmbedder is implemented by embedders whose model embeds search
// queries differently from documents (Cohere's input_type, instruction-
// tuned models). Search uses it when available, and Embed otherwise.
type QueryEmbedder interface {
	// EmbedQuery embeds one query, cut to the model's window if longer.
	EmbedQuery(ctx context.Context, query string) ([]float32, error)
}

type urgentKey struct{}

// Urgent marks ctx as carrying work for a change that an event announced
// (a fresh edit), as opposed to backlog a reconcile pass or a backfill
// queued. Decorators serve urgent calls first: the micro-batcher does not
// hold them back to merge them, and the rate limiter lets them take the
// next tokens ahead of waiting backlog.
func Urgent(ctx context.Context) context.Context { return context.WithValue(ctx, urgentKey{}, true) }

// IsUrgent reports whether ctx was marked with Urgent.
func IsUrgent(ctx context.Context) bool {
	v, _ := ctx.Value(urgentKey{}).(bool)
	return v
}

// EmbedQuery embeds one search query with e's query side when it has one
// (QueryEmbedder), else as a document. A wrong number of vectors is a
// permanent error.
func EmbedQuery(ctx context.Context, e Embedder, query string) ([]float32, error) {
	if q, ok := e.(QueryEmbedder); ok {
		return q.EmbedQuery(ctx, query)
	}
	vecs, err := e.Embed(ctx, []string{query})
	if err != nil {
		return nil, err
	}
	if len(vecs) != 1 {
		return nil, Permanent(fmt.Errorf("embedder %s returned %d vectors for one query", e.Model().Name, len(vecs)))
	}
	return vecs[0], nil
}
