package openai

import (
	"strings"
	"unicode"
	"unicode/utf8"
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
func windows(text string, limit int, count func(string) int) []string {
	var out []string
	// The current window is text[start:end]: units are contiguous, so a
	// candidate window is a substring and counting it allocates nothing.
	start, end := 0, 0
	flush := func() {
		if w := strings.TrimSpace(text[start:end]); w != "" {
			out = append(out, w)
		}
		start = end
	}
	add := func(uEnd int) {
		if end > start && count(strings.TrimSpace(text[start:uEnd])) > limit {
			flush()
		}
		end = uEnd
	}
	for _, s := range splitSentences(text) {
		if count(strings.TrimSpace(text[s[0]:s[1]])) <= limit {
			add(s[1])
			continue
		}
		for _, w := range splitWords(text, s[0], s[1]) {
			if count(strings.TrimSpace(text[w[0]:w[1]])) <= limit {
				add(w[1])
				continue
			}
			for _, r := range splitRunes(text, w[0], w[1], limit, count) {
				add(r[1])
			}
		}
	}
	flush()
	return out
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

// splitSentences returns the byte ranges of text cut after
// sentence-ending punctuation followed by white space (or CJK full stops),
// and after line breaks; the ranges tile text.
func splitSentences(text string) [][2]int {
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

// splitWords returns the byte ranges of text[from:to] cut before each run
// of white space, which stays with the word after it.
func splitWords(text string, from, to int) [][2]int {
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

// splitRunes cuts text[from:to] at character boundaries into the fewest
// pieces of at most limit tokens, each found by binary search for the
// longest prefix that fits.
func splitRunes(text string, from, to, limit int, count func(string) int) [][2]int {
	var out [][2]int
	for from < to {
		lo, hi := from, to // the fitting end is in (lo, hi]
		if count(text[from:to]) <= limit {
			lo = to
		}
		for lo < hi {
			mid := lo + (hi-lo+1)/2
			for mid < hi && !utf8.RuneStart(text[mid]) {
				mid++
			}
			if mid > lo && count(text[from:mid]) <= limit {
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
		out = append(out, [2]int{from, end})
		from = end
	}
	return out
}
