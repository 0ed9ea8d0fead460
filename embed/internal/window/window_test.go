package window

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// counted measures by a count that need not add up, trimmed (openai's).
func counted(limit int, count func(string) int) Measure[int] {
	return Measure[int]{Size: count, Fits: func(n int) bool { return n <= limit }, Trim: true}
}

// summed measures by bytes, which add up (bedrock's kind).
func summed(limit int) Measure[int] {
	return Measure[int]{
		Size: func(s string) int { return len(s) },
		Fits: func(n int) bool { return n <= limit },
		Plus: func(a, b int) int { return a + b },
	}
}

func words3(s string) int { return len(strings.Fields(s)) }

func TestCut(t *testing.T) {
	for _, c := range []struct {
		name string
		text string
		m    Measure[int]
		want []string
	}{
		{"sentences", "One two. Three four. Five six.", counted(4, words3), []string{"One two. Three four.", "Five six."}},
		{"words", "One two three four five six seven", counted(3, words3), []string{"One two three", "four five six", "seven"}},
		{"lines", "first line\nsecond line\nthird", counted(4, words3), []string{"first line\nsecond line", "third"}},
		{"blank", "   ", counted(5, words3), nil},
		{"padded", "  padded.   Text  ", counted(1, words3), []string{"padded.", "Text"}},
		{"abbreviation", "e.g. this is. not", counted(10, words3), []string{"e.g. this is. not"}},
		{"CJK full stop", "一二三。四五六。七", counted(8, utf8.RuneCountInString), []string{"一二三。四五六。", "七"}},
		// Counted words are measured trimmed: " bbb" fits 3 bytes.
		{"trimmed", "aaa bbb", counted(3, func(s string) int { return len(s) }), []string{"aaa", "bbb"}},
		// Summed ones with their white space: it does not.
		{"untrimmed", "aaa bbb", summed(3), []string{"aaa", "bb", "b"}},
		{"summed words", "aa bb cc", summed(3), []string{"aa", "bb", "cc"}},
		{"summed sentences", "Ab. Cd. Ef.", summed(8), []string{"Ab. Cd.", "Ef."}},
		// Characters: the longest prefix that fits, both ways; a
		// character that does not fit alone is a window by itself.
		{"counted runes", "abcdefghij", counted(4, func(s string) int { return len(s) }), []string{"abcd", "efgh", "ij"}},
		{"summed runes", "abcdefghij", summed(4), []string{"abcd", "efgh", "ij"}},
		{"counted wide runes", "ééé", counted(1, func(s string) int { return len(s) }), []string{"é", "é", "é"}},
		{"summed wide runes", "ééé", summed(1), []string{"é", "é", "é"}},
		{"summed mixed runes", "aéaéa", summed(3), []string{"aé", "aé", "a"}},
	} {
		if got := Cut(c.text, c.m); !slices.Equal(got, c.want) {
			t.Errorf("%s: Cut(%q) = %q, want %q", c.name, c.text, got, c.want)
		}
	}
}

// The pieces of a word too long are measured as they are, white space
// included, even when windows are measured trimmed.
func TestRunsUntrimmed(t *testing.T) {
	bytes := func(s string) int { return len(s) }
	got := Cut("ab cdefgh", counted(3, bytes))
	if want := []string{"ab", "cd", "efg", "h"}; !slices.Equal(got, want) {
		t.Errorf("Cut = %q, want %q (\" cd\" is the first piece of \" cdefgh\")", got, want)
	}
}

func TestTrimWithPlusPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Cut with Trim and Plus did not panic")
		}
	}()
	m := summed(3)
	m.Trim = true
	Cut("some text", m)
}

// TestCutRandom checks, on random texts and both kinds of measure, that
// every window fits (or is one character), is valid UTF-8, trimmed and
// not empty, that the windows keep every non-space character in order,
// and that for a measure that adds up and is counted as it is sent the
// two kinds cut alike.
func TestCutRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pieces := strings.Fields("a b é 日 🙂 . ! 。 word longerword")
	pieces = append(pieces, " ", " ", ". ", "\n", "word ")
	for round := range 500 {
		text := ""
		for n := rng.IntN(400); n > 0; n-- {
			text += pieces[rng.IntN(len(pieces))]
		}
		limit := 1 + rng.IntN(40)
		byBytes := counted(limit, func(s string) int { return len(s) })
		byBytes.Trim = false
		c, s := Cut(text, byBytes), Cut(text, summed(limit))
		if !slices.Equal(c, s) {
			t.Fatalf("round %d: counted %q, summed %q", round, c, s)
		}
		if err := check(text, c, limit); err != "" {
			t.Fatalf("round %d: limit %d: %s", round, limit, err)
		}
	}
}

// check says what is wrong with wins as the windows of text within
// limit bytes, or "".
func check(text string, wins []string, limit int) string {
	for _, w := range wins {
		switch {
		case len(w) > limit && utf8.RuneCountInString(w) > 1:
			return fmt.Sprintf("window %q is over the limit", w)
		case !utf8.ValidString(w), strings.TrimSpace(w) != w, w == "":
			return fmt.Sprintf("window %q is not valid, trimmed and non-empty", w)
		}
	}
	if nonSpace(strings.Join(wins, "")) != nonSpace(text) {
		return fmt.Sprintf("windows %q lose text of %q", wins, text)
	}
	return ""
}

func nonSpace(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
}
