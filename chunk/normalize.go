package chunk

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Normalization decides what counts as "the same text": whatever it folds
// together hashes equal and is never embedded twice. It is part of the
// algorithm revision in Version.

// normalizeProse repairs invalid UTF-8 (the extractor should have done so
// and recorded it; repairing again keeps Split total and its output valid
// JSON), applies NFC, and collapses every run of whitespace into one space,
// so re-wrapping a paragraph is not a change.
func normalizeProse(s string) string {
	s = norm.NFC.String(strings.ToValidUTF8(s, "\uFFFD"))
	if isCollapsed(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	start := -1 // start of the current run of non-space text
	for i := 0; i < len(s); {
		r, size := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(s[i:])
		}
		if isSpace(r) {
			if start >= 0 {
				if b.Len() > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(s[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
		i += size
	}
	if start >= 0 {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s[start:])
	}
	return b.String()
}

// isCollapsed reports whether s has no whitespace but single spaces
// between words, as most extracted paragraphs already are.
func isCollapsed(s string) bool {
	prev := true // a leading space is not collapsed
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ':
			if prev {
				return false
			}
			prev = true
		case c < utf8.RuneSelf && asciiClass[c] == classSpace, c >= utf8.RuneSelf:
			if c >= utf8.RuneSelf {
				r, size := utf8.DecodeRuneInString(s[i:])
				if !unicode.IsSpace(r) {
					prev = false
					i += size - 1
					continue
				}
			}
			return false
		default:
			prev = false
		}
	}
	return !prev || s == ""
}

func isSpace(r rune) bool {
	if r < utf8.RuneSelf {
		return asciiClass[r] == classSpace
	}
	return unicode.IsSpace(r)
}

// normalizeCode keeps indentation and line structure, which carry meaning
// in code, and drops only what editors change invisibly: CR line endings,
// trailing whitespace on each line, and blank lines before and after.
func normalizeCode(s string) string {
	s = norm.NFC.String(strings.ToValidUTF8(s, "\uFFFD"))
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRightFunc(l, unicode.IsSpace)
	}
	for len(lines) > 0 && lines[0] == "" {
		lines = lines[1:]
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return strings.Join(lines, "\n")
}

// A piece is part of an oversized block. join is the text that separated
// it from the previous piece, so joining pieces with their joins gives the
// block back exactly.
type piece struct {
	join, text string
	tok        int // EstimateTokens(text), once known
}

// splitSentences cuts normalized prose after sentence-ending punctuation
// (optionally followed by closing quotes or brackets) that is followed by
// a space, and after CJK full stops even without a space.
func splitSentences(s string) []piece {
	var out []piece
	start, join := 0, ""
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		end := i + size
		if r == '。' || r == '！' || r == '？' {
			end = skipClosers(s, end)
			if end < len(s) && s[end] != ' ' {
				out = append(out, piece{join, s[start:end], 0})
				start, join = end, ""
			}
			i = end
			continue
		}
		if r == ' ' && i > start && endsSentence(s[start:i]) {
			out = append(out, piece{join, s[start:i], 0})
			start, join = i+1, " "
		}
		i = end
	}
	if start < len(s) {
		out = append(out, piece{join, s[start:], 0})
	}
	return out
}

func skipClosers(s string, i int) int {
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if !isCloser(r) {
			break
		}
		i += size
	}
	return i
}

func isCloser(r rune) bool {
	switch r {
	case ')', ']', '"', '\'', '”', '’', '»', '」', '』', '）':
		return true
	}
	return false
}

func endsSentence(s string) bool {
	for s != "" {
		r, size := utf8.DecodeLastRuneInString(s)
		if isCloser(r) {
			s = s[:len(s)-size]
			continue
		}
		switch r {
		case '.', '!', '?', '…', '。', '！', '？':
			return true
		}
		return false
	}
	return false
}

// splitRuns cuts s at every maximal run of runes for which sep is true;
// each run becomes the join of the piece after it. A leading or trailing
// run stays attached to the first or last piece.
func splitRuns(s string, sep func(rune) bool) []piece {
	var out []piece
	start, join := 0, ""
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if !sep(r) {
			i += size
			continue
		}
		j := i + size
		for j < len(s) {
			r, size := utf8.DecodeRuneInString(s[j:])
			if !sep(r) {
				break
			}
			j += size
		}
		if i == 0 || j == len(s) {
			i = j // leading or trailing run: part of the piece
			continue
		}
		out = append(out, piece{join, s[start:i], 0})
		start, join = j, s[i:j]
		i = j
	}
	return append(out, piece{join, s[start:], 0})
}

func isNewline(r rune) bool { return r == '\n' }

func isBlank(r rune) bool { return r == ' ' || r == '\t' }

// splitWord cuts a run of text that has no separator left (a base64 blob,
// a minified line, CJK without punctuation) with content-defined chunking:
// a cut falls after a rune where a gear hash of the last 64 bytes has its
// top bits zero, and depends on nothing else; there is no minimum size,
// because the pieces are grouped into chunks afterwards. An edit therefore
// moves only the cuts in the 64 bytes after it. A piece that reaches
// maxRunes runes is cut there, by position; the number of bits is chosen
// so that pieces average about maxRunes/16 runes and that happens with a
// chance of about e^-8 per piece.
func splitWord(s string, maxRunes int) []piece {
	bits := 1
	for bits < 8 && 1<<(bits+1) <= maxRunes/8 {
		bits++
	}
	var out []piece
	var h uint64
	start, runes := 0, 0
	for i := 0; i < len(s); {
		_, size := utf8.DecodeRuneInString(s[i:])
		for k := i; k < i+size; k++ {
			h = h<<1 + gear[s[k]]
		}
		i += size
		runes++
		if i < len(s) && (h>>(64-bits) == 0 || runes >= maxRunes) {
			out = append(out, piece{"", s[start:i], 0})
			start, runes = i, 0
		}
	}
	return append(out, piece{"", s[start:], 0})
}

// gear is the fixed table of the gear hash, from splitmix64 with a fixed
// seed: it is part of the algorithm and must never change within a
// revision.
var gear = func() (t [256]uint64) {
	x := uint64(0x6672657368656e21) // "freshen!"
	for i := range t {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		t[i] = z ^ z>>31
	}
	return t
}()
