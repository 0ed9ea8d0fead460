package builtin_test

import (
	"testing"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/embed/builtin"
	"github.com/freshen-io/freshen/embed/embedtest"
)

func TestConformance(t *testing.T) {
	embedtest.Run(t, func(t *testing.T) freshen.Embedder {
		m, err := builtin.Default()
		if err != nil {
			t.Fatalf("load built-in model: %v", err)
		}
		return m
	})
}
