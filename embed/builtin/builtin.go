package builtin

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"unicode"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/embed/builtin/internal/modelfile"
)

// ModelName identifies the built-in model and its float16 weights in
// caches: embeddings made by another model, or by other weights, never mix.
const ModelName = "builtin/use-lite-f16"

// Model is the built-in embedder: Universal Sentence Encoder Lite run by a
// pure-Go forward pass. It is safe for concurrent use.
type Model struct {
	tok *tokenizer
	net *network
	// batchTokens caps the tokens of one forward call, bounding the
	// activations' memory (about 20 KB per token) whatever the input,
	// and how long Embed runs on after its ctx is done.
	batchTokens int
	// forwarded, if set, is told the windows of each forward call (tests
	// count them).
	forwarded func(windows int)
}

var _ freshen.Embedder = (*Model)(nil)

var (
	defaultOnce  sync.Once
	defaultModel *Model
	defaultErr   error
)

// Default returns the model built from the weights embedded in the binary,
// loading them on first use.
func Default() (*Model, error) {
	defaultOnce.Do(func() { defaultModel, defaultErr = Load(modelBytes) })
	return defaultModel, defaultErr
}

// Load builds a model from the bytes of a model file (see
// internal/modelfile). It returns an error, never panics, on truncated or
// inconsistent data.
func Load(b []byte) (*Model, error) {
	f, err := modelfile.Read(b)
	if err != nil {
		return nil, fmt.Errorf("builtin: load: %w", err)
	}
	if len(f.Vocab) <= reservedPieces {
		return nil, fmt.Errorf("builtin: load: vocabulary has %d pieces", len(f.Vocab))
	}
	net, err := loadNetwork(f)
	if err != nil {
		return nil, err
	}
	return &Model{tok: newTokenizer(f.Vocab), net: net, batchTokens: 2048}, nil
}

// Model describes the embedder.
func (m *Model) Model() freshen.ModelInfo {
	return freshen.ModelInfo{Name: ModelName, Dim: Dim, MaxTokens: MaxTokens}
}

// Tokenize returns the model's token ids for text, exactly as the TF.js
// reference tokenizer produces them (before the 128-token clip).
func (m *Model) Tokenize(text string) []int { return m.tok.encode(text) }

// CountTokens is len(Tokenize(text)).
func (m *Model) CountTokens(text string) int { return len(m.tok.encode(text)) }

// Embed returns one unit vector per text. A text of at most MaxTokens
// tokens is embedded as the reference does; a longer one is cut into
// windows of whole sentences (whole words where a sentence is too long)
// and embedded as the token-weighted mean of its windows, normalized: a
// document's embedding, whose cost grows with its length (callers cut a
// search query to the window first). An empty text fails with
// freshen.ErrEmptyInput and nothing is returned. Once ctx is done, Embed
// returns ctx.Err() after the forward call in progress (at most
// batchTokens tokens), between texts and between windows.
func (m *Model) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	type window struct {
		text int
		ids  []int
	}
	var wins []window
	nwin := make([]int, len(texts))
	for i, t := range texts {
		// Cutting a long text into windows costs as much as tokenizing
		// it several times over.
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ids := m.tok.encode(t)
		if len(ids) == 0 {
			return nil, fmt.Errorf("builtin: embed text %d: %w", i, freshen.ErrEmptyInput)
		}
		if len(ids) <= MaxTokens {
			wins = append(wins, window{i, ids})
			nwin[i] = 1
			continue
		}
		for _, w := range m.windows(t) {
			wins = append(wins, window{i, w})
			nwin[i]++
		}
	}
	out := make([][]float32, len(texts))
	sums := make([][]float64, len(texts))
	vecs := make([][]float32, 0, 64)
	for start := 0; start < len(wins); {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		end, tokens := start, 0
		for end < len(wins) && (end == start || tokens+len(wins[end].ids) <= m.batchTokens) {
			tokens += len(wins[end].ids)
			end++
		}
		seqs := make([][]int, 0, end-start)
		vecs = vecs[:0]
		for _, w := range wins[start:end] {
			seqs = append(seqs, w.ids)
			vecs = append(vecs, make([]float32, Dim))
		}
		m.net.forward(seqs, vecs)
		if m.forwarded != nil {
			m.forwarded(len(seqs))
		}
		for j, w := range wins[start:end] {
			if nwin[w.text] == 1 {
				out[w.text] = vecs[j]
				continue
			}
			if sums[w.text] == nil {
				sums[w.text] = make([]float64, Dim)
			}
			weight := float64(len(w.ids))
			for d, v := range vecs[j] {
				sums[w.text][d] += weight * float64(v)
			}
		}
		start = end
	}
	for i, s := range sums {
		if s == nil {
			continue
		}
		var ss float64
		for _, v := range s {
			ss += v * v
		}
		inv := 1 / math.Sqrt(max(ss, 1e-24))
		v := make([]float32, Dim)
		for d := range v {
			v[d] = float32(s[d] * inv)
		}
		out[i] = v
	}
	return out, nil
}

// windows cuts a long text into pieces of at most MaxTokens tokens along
// sentence boundaries, then word boundaries, then (for a single enormous
// "word") characters, and returns each piece's token ids.
func (m *Model) windows(text string) [][]int {
	var units []string
	for _, s := range splitSentences(text) {
		if m.CountTokens(s) <= MaxTokens {
			units = append(units, s)
			continue
		}
		for _, w := range splitWords(s) {
			if m.CountTokens(w) <= MaxTokens {
				units = append(units, w)
				continue
			}
			units = append(units, m.splitRunes(w)...)
		}
	}
	var out [][]int
	cur, curTokens := "", 0
	flush := func() {
		if strings.TrimSpace(cur) == "" {
			cur, curTokens = "", 0
			return
		}
		ids := m.tok.encode(strings.TrimSpace(cur))
		out = append(out, ids[:min(len(ids), MaxTokens)])
		cur, curTokens = "", 0
	}
	for _, u := range units {
		n := m.CountTokens(strings.TrimSpace(u))
		if curTokens > 0 && curTokens+n > MaxTokens {
			flush()
		}
		cand := cur + u
		// Tokens of a concatenation can differ from the sum of the parts;
		// check the real count before committing to the window.
		if curTokens > 0 && m.CountTokens(strings.TrimSpace(cand)) > MaxTokens {
			flush()
			cand = u
		}
		cur = cand
		curTokens = m.CountTokens(strings.TrimSpace(cur))
	}
	flush()
	return out
}

// splitRunes cuts s into pieces of at most MaxTokens tokens.
func (m *Model) splitRunes(s string) []string {
	var out []string
	r := []rune(s)
	for len(r) > 0 {
		n := min(len(r), MaxTokens) // a token covers at least one rune
		for n > 1 && m.CountTokens(string(r[:n])) > MaxTokens {
			n /= 2
		}
		out = append(out, string(r[:n]))
		r = r[n:]
	}
	return out
}

// splitSentences cuts after sentence-ending punctuation followed by white
// space, and after line breaks; the pieces concatenate back to text.
func splitSentences(text string) []string {
	var out []string
	start := 0
	rs := []rune(text)
	pos := 0 // byte offset of rs[i]
	for i, r := range rs {
		next := pos + len(string(r))
		end := r == '\n' || ((r == '.' || r == '!' || r == '?' || r == ';') && i+1 < len(rs) && unicode.IsSpace(rs[i+1]))
		if end {
			out = append(out, text[start:next])
			start = next
		}
		pos = next
	}
	if start < len(text) {
		out = append(out, text[start:])
	}
	return out
}

// splitWords cuts s before each space, keeping the space with the word
// that follows it.
func splitWords(s string) []string {
	var out []string
	start := 0
	for i := 1; i < len(s); i++ {
		if s[i] == ' ' && s[i-1] != ' ' {
			out = append(out, s[start:i])
			start = i
		}
	}
	return append(out, s[start:])
}

// embedTokens embeds token sequences exactly as the TF graph does, which
// keeps only each sequence's first MaxTokens tokens.
func (m *Model) embedTokens(seqs [][]int) [][]float32 {
	out := make([][]float32, len(seqs))
	clipped := make([][]int, len(seqs))
	for i, s := range seqs {
		out[i] = make([]float32, Dim)
		clipped[i] = s[:min(len(s), MaxTokens)]
	}
	m.net.forward(clipped, out)
	return out
}
