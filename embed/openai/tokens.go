package openai

import (
	"sync"

	"github.com/tiktoken-go/tokenizer/codec"
)

// Tokenizers a Config may name. OpenAI's embedding models all use
// cl100k_base; other servers' models have tokenizers of their own, which
// freshen estimates (and then records what the server reports using).
const (
	TokenizerCL100k   = "cl100k_base"
	TokenizerEstimate = "estimate"
)

// cl100k is loaded on first use (its vocabulary is compiled into the
// binary by github.com/tiktoken-go/tokenizer: nothing is downloaded).
var cl100k = sync.OnceValue(codec.NewCl100kBase)

// countCL100k counts text's tokens as OpenAI does for its embedding
// models. The codec cannot fail on a string (invalid UTF-8 is encoded
// byte by byte), but if it ever did, the estimate stands in.
func countCL100k(text string) int {
	n, err := cl100k().Count(text)
	if err != nil {
		return estimateTokens(text)
	}
	return n
}

// tokenizerFor returns the counter for the configured tokenizer: by
// default cl100k_base for OpenAI's own models and the estimate for any
// other model name.
func tokenizerFor(name, model string) func(string) int {
	switch name {
	case TokenizerCL100k:
		return countCL100k
	case TokenizerEstimate:
		return estimateTokens
	}
	if _, ok := knownModels[model]; ok {
		return countCL100k
	}
	return estimateTokens
}
