package chunk

import (
	"unicode"
	"unicode/utf8"
)

// EstimateTokens estimates how many tokens s is for a typical subword
// tokenizer. It is deterministic and independent of any model, because it
// decides chunk boundaries, and those must not move when the embedding
// model changes. It is a budget, not a count: it errs on the high side for
// code and symbols, and is within about ±25% of BPE tokenizers on English
// prose (about 4/3 tokens per word).
//
// The rules, applied to maximal runs of runes:
//   - whitespace counts 0 and separates runs;
//   - a run of letters, digits and combining marks of n runes counts
//     ceil(n/5): "the" is 1, "chunker" 2, "internationalization" 4;
//   - every Han, Hiragana, Katakana or Hangul rune counts 1, since those
//     scripts are written without spaces;
//   - a run of other symbols (punctuation, operators) of n runes counts
//     ceil(n/2): "." is 1, "();" 2, "----------" 5.
//
// The estimate is subadditive: the estimate of a concatenation never
// exceeds the sum of the parts' estimates, so a chunk whose parts fit the
// budget fits it too. Changing these rules changes Split's output and
// therefore requires a new algorithm revision in Version.
func EstimateTokens(s string) int {
	n, word, sym := 0, 0, 0
	for i := 0; i < len(s); {
		class := classSpace
		if b := s[i]; b < utf8.RuneSelf {
			class = asciiClass[b]
			i++
		} else {
			r, size := utf8.DecodeRuneInString(s[i:])
			i += size
			switch {
			case unicode.IsSpace(r):
			case isIdeographic(r):
				class = classIdeograph
			case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r):
				class = classWord
			default:
				class = classSymbol
			}
		}
		switch class {
		case classWord:
			if sym > 0 {
				n += (sym + 1) / 2
				sym = 0
			}
			word++
		case classSymbol:
			if word > 0 {
				n += (word + 4) / 5
				word = 0
			}
			sym++
		default:
			n += (word+4)/5 + (sym+1)/2
			word, sym = 0, 0
			if class == classIdeograph {
				n++
			}
		}
	}
	return n + (word+4)/5 + (sym+1)/2
}

const (
	classSpace uint8 = iota
	classWord
	classSymbol
	classIdeograph
)

var asciiClass = func() (t [utf8.RuneSelf]uint8) {
	for b := range t {
		switch r := rune(b); {
		case unicode.IsSpace(r):
			t[b] = classSpace
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			t[b] = classWord
		default:
			t[b] = classSymbol // including control characters
		}
	}
	return t
}()

func isIdeographic(r rune) bool {
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul)
}
