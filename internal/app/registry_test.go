package app

import (
	"maps"
	"slices"
	"testing"

	"github.com/freshen-io/freshen/internal/config"
)

// TestRegistryMatchesConfig: config validates names against its lists,
// Open looks them up here; the two must agree.
func TestRegistryMatchesConfig(t *testing.T) {
	for _, c := range []struct {
		kind       string
		registered []string
		known      []string
	}{
		{"ledger", slices.Sorted(maps.Keys(ledgers)), config.LedgerTypes},
		{"index", slices.Sorted(maps.Keys(indexes)), config.IndexTypes},
		{"embedder", slices.Sorted(maps.Keys(embedders)), config.EmbedderTypes},
		{"feed", slices.Sorted(maps.Keys(feeds)), config.FeedTypes},
	} {
		if known := slices.Sorted(slices.Values(c.known)); !slices.Equal(c.registered, known) {
			t.Errorf("%s: registry has %v, config knows %v", c.kind, c.registered, known)
		}
	}
	for _, name := range []string{"ledger.type", "index.type", "embedder.type"} {
		if registered(name, "nope") {
			t.Errorf("%s: an unknown name counts as registered", name)
		}
	}
}
