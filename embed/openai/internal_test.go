package openai

import (
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		header []string
		want   time.Duration
	}{
		{nil, 0},
		{[]string{"Retry-After", "3"}, 3 * time.Second},
		{[]string{"Retry-After", "0.5"}, 500 * time.Millisecond},
		{[]string{"Retry-After", now.Add(90 * time.Second).Format(http.TimeFormat)}, 90 * time.Second},
		{[]string{"Retry-After", now.Add(-time.Minute).Format(http.TimeFormat)}, 0},
		{[]string{"Retry-After", "soon"}, 0},
		{[]string{"Retry-After-Ms", "250", "Retry-After", "1"}, 250 * time.Millisecond},
		{[]string{"Retry-After-Ms", "junk", "Retry-After", "1"}, time.Second},
		{[]string{"Retry-After", "99999999999"}, maxRetryAfter},
		{[]string{"Retry-After-Ms", "1e300"}, maxRetryAfter},
		{[]string{"X-Ratelimit-Reset-Requests", "20ms"}, 20 * time.Millisecond},
		{[]string{"X-Ratelimit-Reset-Tokens", "6m0s"}, 6 * time.Minute},
		{[]string{"X-Ratelimit-Reset-Requests", "1s", "X-Ratelimit-Reset-Tokens", "6m0s"}, 6 * time.Minute},
		{[]string{"X-Ratelimit-Reset-Requests", "1s", "X-Ratelimit-Reset-Tokens", "6m0s", "X-Ratelimit-Remaining-Requests", "0", "X-Ratelimit-Remaining-Tokens", "5000"}, time.Second},
		{[]string{"X-Ratelimit-Reset-Requests", "1s", "X-Ratelimit-Reset-Tokens", "1m30.5s", "X-Ratelimit-Remaining-Tokens", "0"}, 90500 * time.Millisecond},
		{[]string{"X-Ratelimit-Reset-Requests", "bogus"}, 0},
	} {
		h := http.Header{}
		for i := 0; i < len(c.header); i += 2 {
			h.Set(c.header[i], c.header[i+1])
		}
		if got := retryAfter(h, now); got != c.want {
			t.Errorf("retryAfter(%v) = %v, want %v", c.header, got, c.want)
		}
	}
}

func TestEstimateTokens(t *testing.T) {
	for text, want := range map[string]int{"": 0, "a": 1, "abc": 1, "abcd": 2, "Überprüfung": 5, "日本語": 3} {
		if got := estimateTokens(text); got != want {
			t.Errorf("estimateTokens(%q) = %d, want %d", text, got, want)
		}
	}
}

func TestWindows(t *testing.T) {
	words := func(s string) int { return len(strings.Fields(s)) }
	for _, c := range []struct {
		text  string
		limit int
		count func(string) int
		want  []string
	}{
		{"One two. Three four. Five six.", 4, words, []string{"One two. Three four.", "Five six."}},
		{"One two three four five six seven", 3, words, []string{"One two three", "four five six", "seven"}},
		{"first line\nsecond line\nthird", 4, words, []string{"first line\nsecond line", "third"}},
		{"一二三。四五六。七", 8, estimateTokens, []string{"一二三。四五六。", "七"}},
		{"abcdefghij", 2, estimateTokens, []string{"abcdef", "ghij"}},
		{"ééééé", 1, estimateTokens, []string{"é", "é", "é", "é", "é"}}, // 2 bytes: 1 token each
		{"   ", 5, words, nil},
		{"  padded.   Text  ", 1, words, []string{"padded.", "Text"}},
		{"e.g. this is. not", 10, words, []string{"e.g. this is. not"}},
	} {
		got := windows(c.text, c.limit, c.count)
		if !slices.Equal(got, c.want) {
			t.Errorf("windows(%q, %d) = %q, want %q", c.text, c.limit, got, c.want)
		}
	}
	if got := firstWindow("One two. Three four. Five six.", 4, words); got != "One two. Three four." {
		t.Errorf("firstWindow = %q", got)
	}
	if got := firstWindow(" short ", 4, words); got != "short" {
		t.Errorf("firstWindow(short) = %q", got)
	}
}

// TestWindowsRandom checks, on random texts, that every window fits,
// is valid UTF-8, and that the windows keep every non-space character
// in order.
func TestWindowsRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "b", "é", "日", "🙂", " ", " ", ".", ". ", "\n", "!", "word ", "longerword"}
	for round := range 300 {
		var b strings.Builder
		for range rng.IntN(400) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		text := b.String()
		limit := 1 + rng.IntN(40)
		wins := windows(text, limit, estimateTokens)
		for i, w := range wins {
			if estimateTokens(w) > limit && utf8.RuneCountInString(w) > 1 {
				t.Fatalf("round %d: window %d (%q) has %d tokens, limit %d", round, i, w, estimateTokens(w), limit)
			}
			if !utf8.ValidString(w) || strings.TrimSpace(w) != w || w == "" {
				t.Fatalf("round %d: window %d (%q) is not valid, trimmed, non-empty", round, i, w)
			}
		}
		strip := func(s string) string { return strings.Join(strings.Fields(s), "") }
		if strip(strings.Join(wins, "")) != strip(text) {
			t.Fatalf("round %d: windows %q lose text of %q", round, wins, text)
		}
	}
}
