// Package window cuts a text longer than a model's context into windows
// that each fit it, for the remote embedding clients (openai, bedrock),
// which embed every window and pool the vectors.
package window

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Measure says what fits in one window. S is the size of a piece of
// text: a token count, or several counts bounded together.
type Measure[S any] struct {
	// Size measures a piece of text.
	Size func(string) S
	// Fits reports whether a piece of that size fits in one window.
	Fits func(S) bool
	// Plus, when set, says that sizes add up: Size(a+b) is
	// Plus(Size(a), Size(b)). Cut then measures every character once: a
	// window's size is the sum of its units', and a word too long is cut
	// between characters greedily. When nil (a tokenizer's count of a
	// concatenation is not the sum of the parts), every candidate window
	// is measured whole, and a word too long is cut at the longest prefix
	// that fits, found by binary search.
	Plus func(S, S) S
	// Trim measures sentences, words and windows trimmed of surrounding
	// white space, as they are sent; the pieces of a word too long are
	// measured as they are. The size of a trimmed window is not a sum, so
	// Trim needs Plus nil.
	Trim bool
}

// Cut cuts text into windows that each fit m: along sentence boundaries,
// then word boundaries, then (for one enormous "word": base64, a minified
// line) character boundaries. Windows are substrings of text trimmed of
// surrounding white space; windows of only white space are dropped, so a
// text of only white space has none. A character that does not fit alone
// is a window by itself.
func Cut[S any](text string, m Measure[S]) []string {
	if m.Trim && m.Plus != nil {
		panic("window: Measure with both Trim and Plus")
	}
	var out []string
	// The current window is text[start:end], of size z when m.Plus is
	// set: units are contiguous, so a window is a substring of text and
	// measuring it allocates nothing.
	start, end := 0, 0
	var z S
	flush := func() {
		if w := strings.TrimSpace(text[start:end]); w != "" {
			out = append(out, w)
		}
		start = end
		z = *new(S)
	}
	// add extends the window with the unit text[end:to], of size uz when
	// m.Plus is set, after flushing the window if the two do not fit
	// together.
	add := func(to int, uz S) {
		if m.Plus != nil {
			if end > start && !m.Fits(m.Plus(z, uz)) {
				flush()
			}
			z = m.Plus(z, uz)
		} else if end > start && !m.Fits(m.size(text[start:to])) {
			flush()
		}
		end = to
	}
	for _, s := range sentences(text) {
		if uz := m.size(text[s[0]:s[1]]); m.Fits(uz) {
			add(s[1], uz)
			continue
		}
		for _, w := range words(text, s[0], s[1]) {
			if uz := m.size(text[w[0]:w[1]]); m.Fits(uz) {
				add(w[1], uz)
				continue
			}
			for _, r := range m.runs(text, w[0], w[1]) {
				add(r.end, r.size)
			}
		}
	}
	flush()
	return out
}

// size measures a sentence, a word or a window.
func (m *Measure[S]) size(s string) S {
	if m.Trim {
		s = strings.TrimSpace(s)
	}
	return m.Size(s)
}

// run is a piece of a word, ending at byte end of the text; its size is
// set when Plus is.
type run[S any] struct {
	end  int
	size S
}

// runs cuts text[from:to] at character boundaries into the fewest pieces
// that fit, each the longest prefix of the rest that fits, or its first
// character if not even that does.
func (m *Measure[S]) runs(text string, from, to int) []run[S] {
	var out []run[S]
	if m.Plus != nil {
		start := from
		var z S
		for i := from; i < to; {
			_, n := utf8.DecodeRuneInString(text[i:to])
			rz := m.Size(text[i : i+n])
			if i > start && !m.Fits(m.Plus(z, rz)) {
				out = append(out, run[S]{end: i, size: z})
				start, z = i, *new(S)
			}
			z = m.Plus(z, rz)
			i += n
		}
		return append(out, run[S]{end: to, size: z})
	}
	fits := func(end int) bool { return m.Fits(m.Size(text[from:end])) }
	for from < to {
		lo, hi := from, to // the fitting end is in (lo, hi]
		if fits(to) {
			lo = to
		}
		for lo < hi {
			mid := lo + (hi-lo+1)/2
			for mid < hi && !utf8.RuneStart(text[mid]) {
				mid++
			}
			if mid > lo && fits(mid) {
				lo = mid
			} else {
				hi = mid - 1
				for hi > lo && !utf8.RuneStart(text[hi]) {
					hi--
				}
			}
		}
		end := lo
		if end == from { // not even one character fits: send it alone
			_, n := utf8.DecodeRuneInString(text[from:to])
			end = from + n
		}
		out = append(out, run[S]{end: end})
		from = end
	}
	return out
}

// sentences returns the byte ranges of text cut after sentence-ending
// punctuation followed by white space (or CJK full stops), and after line
// breaks; the ranges tile text.
func sentences(text string) [][2]int {
	var out [][2]int
	start := 0
	for i, r := range text {
		next := i + utf8.RuneLen(r)
		end := false
		switch r {
		case '\n', '。', '！', '？':
			end = true
		case '.', '!', '?', ';':
			n, _ := utf8.DecodeRuneInString(text[next:])
			end = next < len(text) && unicode.IsSpace(n)
		}
		if end {
			out = append(out, [2]int{start, next})
			start = next
		}
	}
	if start < len(text) {
		out = append(out, [2]int{start, len(text)})
	}
	return out
}

// words returns the byte ranges of text[from:to] cut before each run of
// white space, which stays with the word after it; the ranges tile
// text[from:to].
func words(text string, from, to int) [][2]int {
	var out [][2]int
	start := from
	prevSpace := true
	for i, r := range text[from:to] {
		i += from
		space := unicode.IsSpace(r)
		if space && !prevSpace && i > start {
			out = append(out, [2]int{start, i})
			start = i
		}
		prevSpace = space
	}
	return append(out, [2]int{start, to})
}
