package fake

import (
	"testing"

	"github.com/freshen-io/freshen"
)

// WantForwards checks that decorator e reports inner's model and counts
// text's tokens as inner does: want.
func WantForwards(t testing.TB, e freshen.Embedder, inner *Embedder, text string, want int) {
	t.Helper()
	if e.Model() != inner.Model() {
		t.Errorf("Model() = %+v, want the inner %+v", e.Model(), inner.Model())
	}
	if got := freshen.CountTokens(e, text); got != want {
		t.Errorf("CountTokens = %d, want the inner embedder's %d", got, want)
	}
}

// WantValidate checks that a decorator's zero Config, its defaults, is
// valid, and that each of bad is not.
func WantValidate[C interface{ Validate() error }](t testing.TB, bad ...C) {
	t.Helper()
	var defaults C
	if err := defaults.Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	for _, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}
