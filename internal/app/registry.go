package app

import (
	"context"
	"log/slog"
	"path/filepath"
	"runtime"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/embed/batch"
	"github.com/freshen-io/freshen/embed/builtin"
	"github.com/freshen-io/freshen/feed/webhook"
	"github.com/freshen-io/freshen/index/embedded"
	"github.com/freshen-io/freshen/internal/config"
	"github.com/freshen-io/freshen/ledger/sqlite"
)

// The built-in implementations, by the name configuration uses for them
// (ledger.type, index.type, embedder.type, feeds). A new adapter is one
// line here, one name in config's lists, and its own package.

var ledgers = map[string]func(ctx context.Context, cfg config.Config) (freshen.Ledger, error){
	"sqlite": func(ctx context.Context, cfg config.Config) (freshen.Ledger, error) {
		return sqlite.Open(ctx, filepath.Join(cfg.DataDir, "ledger.db"))
	},
}

var indexes = map[string]func(ctx context.Context, cfg config.Config, dim int) (freshen.Index, error){
	"embedded": func(ctx context.Context, cfg config.Config, dim int) (freshen.Index, error) {
		return embedded.Open(ctx, filepath.Join(cfg.DataDir, "index.db"), dim)
	},
}

var embedders = map[string]func(ctx context.Context, cfg config.Config) (freshen.Embedder, error){
	"builtin": func(ctx context.Context, cfg config.Config) (freshen.Embedder, error) {
		m, err := builtin.Default()
		if err != nil {
			return nil, err
		}
		// Workers embed a few chunks each; merged into one forward pass
		// the model runs several times faster. One call per core at once.
		b := cfg.Embedder.Batch
		if b.Parallel == 0 {
			b.Parallel = runtime.GOMAXPROCS(0)
		}
		return batch.New(m, batch.Config{MaxTexts: b.MaxTexts, MaxWait: time.Duration(b.MaxWait), Parallel: b.Parallel}), nil
	},
}

var feeds = map[string]func(cfg config.Config, log *slog.Logger) freshen.Feed{
	"webhook": func(cfg config.Config, log *slog.Logger) freshen.Feed {
		return webhook.New(webhook.Config{Token: string(cfg.WebhookToken),
			SNS: webhook.SNSConfig{Verify: cfg.Webhook.SNSVerify, Hosts: cfg.Webhook.SNSHosts, Topics: cfg.Webhook.SNSTopics}}, log)
	},
}

func registered(kind, name string) bool {
	var ok bool
	switch kind {
	case "ledger.type":
		_, ok = ledgers[name]
	case "index.type":
		_, ok = indexes[name]
	case "embedder.type":
		_, ok = embedders[name]
	}
	return ok
}
