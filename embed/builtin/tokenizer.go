package builtin

import (
	"strings"
	"unicode/utf16"

	"golang.org/x/text/unicode/norm"

	"github.com/freshen-io/freshen/embed/builtin/internal/modelfile"
)

// The first pieces of the vocabulary are control symbols that text never
// produces; piece 0 is also the id of every unknown character.
const (
	reservedPieces = 6
	unknownID      = 0
	wordSeparator  = '\u2581' // "▁", SentencePiece's marker for a space
)

// tokenizer is a faithful port of the tokenizer that ships with the TF.js
// Universal Sentence Encoder (a Viterbi segmentation over a unigram
// vocabulary). Its quirks are kept on purpose, because the model was used
// with them: NFKC normalization and no lowercasing, only U+0020 becomes
// the word separator, ties go to the shorter piece, an unset best score is
// recognised by being exactly 0, and runs of unknown characters collapse
// into one unknown token.
type tokenizer struct {
	root trieNode
	// pieceLen is each piece's length in UTF-16 code units, which is what
	// the reference uses when it walks the best path backwards.
	pieceLen []int
}

type trieNode struct {
	children map[rune]*trieNode
	end      bool
	id       int
	score    float64
	runes    int
}

func newTokenizer(vocab []modelfile.Piece) *tokenizer {
	t := &tokenizer{pieceLen: make([]int, len(vocab))}
	for i, p := range vocab {
		t.pieceLen[i] = len(utf16.Encode([]rune(p.Text)))
		if i < reservedPieces {
			continue
		}
		n := &t.root
		runes := []rune(p.Text)
		for _, r := range runes {
			if n.children == nil {
				n.children = map[rune]*trieNode{}
			}
			c := n.children[r]
			if c == nil {
				c = &trieNode{}
				n.children[r] = c
			}
			n = c
		}
		if len(runes) > 0 {
			n.end, n.id, n.score, n.runes = true, i, p.Score, len(runes)
		}
	}
	return t
}

// normalize applies the reference's input processing.
func normalize(s string) string {
	s = norm.NFKC.String(s)
	if s == "" {
		return s
	}
	return string(wordSeparator) + strings.ReplaceAll(s, " ", string(wordSeparator))
}

type candidate struct {
	start int
	id    int
	score float64
}

// encode returns the token ids of s; nil when s normalizes to nothing.
func (t *tokenizer) encode(s string) []int {
	syms := []rune(normalize(s))
	n := len(syms)
	if n == 0 {
		return nil
	}
	// ends[e] lists the pieces ending at e in increasing start order, the
	// order in which the reference visits them.
	ends := make([][]candidate, n+1)
	for i := 0; i < n; i++ {
		found := false
		node := t.root.children[syms[i]]
		for j := i; node != nil; {
			if node.end {
				ends[i+node.runes] = append(ends[i+node.runes], candidate{start: i, id: node.id, score: node.score})
				found = true
			}
			j++
			if j >= n {
				break
			}
			node = node.children[syms[j]]
		}
		if !found {
			ends[i+1] = append(ends[i+1], candidate{start: i, id: unknownID, score: 0})
		}
	}
	best := make([]float64, n+1)
	words := make([]int, n+1)
	for e := 0; e <= n; e++ {
		for _, c := range ends[e] {
			score := c.score + best[c.start]
			if best[e] == 0 || score >= best[e] {
				best[e] = score
				words[e] = c.id
			}
		}
	}
	var rev []int
	for i := n; i > 0; i -= t.pieceLen[words[i]] {
		rev = append(rev, words[i])
	}
	out := make([]int, 0, len(rev))
	prevUnknown := false
	for i := len(rev) - 1; i >= 0; i-- {
		id := rev[i]
		if !(prevUnknown && id == unknownID) {
			out = append(out, id)
		}
		prevUnknown = id == unknownID
	}
	return out
}
