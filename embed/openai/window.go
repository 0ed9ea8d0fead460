package openai

import (
	"strings"

	"github.com/freshen-io/freshen/embed/internal/window"
)

// estimateTokens is ceil(bytes/3). OpenAI's tokenizers (cl100k, o200k)
// average about four bytes a token in English and three in code and most
// other languages, so this errs high: batches stay under the request caps
// and windows under the context. It is not a bound for every text (long
// runs of rare symbols take more tokens): a window the server still finds
// too long fails, permanently and visibly, with freshen.ErrBatchTooLarge.
func estimateTokens(text string) int { return (len(text) + 2) / 3 }

// windows cuts text into pieces of at most limit tokens by count: along
// sentence boundaries, then word boundaries, then (for one enormous
// "word") character boundaries. Pieces are substrings of text, trimmed of
// surrounding white space; pieces of only white space are dropped. It
// returns no pieces for a text of only white space.
//
// A tokenizer's count of a concatenation is not the sum of the parts, so
// every candidate window is counted whole, trimmed as it is sent.
func windows(text string, limit int, count func(string) int) []string {
	return window.Cut(text, window.Measure[int]{
		Size: count,
		Fits: func(n int) bool { return n <= limit },
		Trim: true,
	})
}

// firstWindow is the first of text's windows: text cut to limit tokens at
// the last sentence (else word, else character) boundary that fits.
func firstWindow(text string, limit int, count func(string) int) string {
	if count(text) <= limit {
		return strings.TrimSpace(text)
	}
	if w := windows(text, limit, count); len(w) > 0 {
		return w[0]
	}
	return ""
}
