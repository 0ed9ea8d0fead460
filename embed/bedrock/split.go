package bedrock

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// windows cuts text into pieces that each fit lim, at sentence
// boundaries where it can, then at word boundaries, then between
// characters (a "word" longer than a window: base64, a minified line).
// Pieces are trimmed of surrounding white space and never empty; a text
// that fits is returned whole, untouched. text must have something
// besides white space.
func windows(text string, lim limits) []string {
	if lim.fits(measure(text)) {
		return []string{text}
	}
	type unit struct {
		s string
		z size
	}
	var units []unit
	for _, sent := range splitSentences(text) {
		if z := measure(sent); lim.fits(z) {
			units = append(units, unit{sent, z})
			continue
		}
		for _, w := range splitWords(sent) {
			if z := measure(w); lim.fits(z) {
				units = append(units, unit{w, z})
				continue
			}
			for _, r := range splitRunes(w, lim) {
				units = append(units, unit{r, measure(r)})
			}
		}
	}
	var out []string
	var cur strings.Builder
	var curSize size
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			out = append(out, s)
		}
		cur.Reset()
		curSize = size{}
	}
	for _, u := range units {
		if cur.Len() > 0 && !lim.fits(curSize.plus(u.z)) {
			flush()
		}
		cur.WriteString(u.s)
		curSize = curSize.plus(u.z)
	}
	flush()
	return out
}

// splitSentences cuts after sentence-ending punctuation followed by white
// space, and after line breaks; the pieces concatenate back to text.
func splitSentences(text string) []string {
	var out []string
	start := 0
	for i, r := range text {
		next := i + utf8.RuneLen(r)
		end := r == '\n'
		if !end && strings.ContainsRune(".!?;。！？", r) && next < len(text) {
			nr, _ := utf8.DecodeRuneInString(text[next:])
			end = unicode.IsSpace(nr) || r >= utf8.RuneSelf
		}
		if end {
			out = append(out, text[start:next])
			start = next
		}
	}
	if start < len(text) {
		out = append(out, text[start:])
	}
	return out
}

// splitWords cuts s before each run of white space, keeping the space
// with the word that follows it; the pieces concatenate back to s.
func splitWords(s string) []string {
	var out []string
	start := 0
	prevSpace := false
	for i, r := range s {
		sp := unicode.IsSpace(r)
		if sp && !prevSpace && i > start {
			out = append(out, s[start:i])
			start = i
		}
		prevSpace = sp
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// splitRunes cuts s into the longest runs of characters that fit lim.
func splitRunes(s string, lim limits) []string {
	var out []string
	start := 0
	var z size
	for i, r := range s {
		rz := runeSize(r)
		if i > start && !lim.fits(z.plus(rz)) {
			out = append(out, s[start:i])
			start, z = i, size{}
		}
		z = z.plus(rz)
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}
