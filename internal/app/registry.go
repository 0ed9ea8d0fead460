package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/embed/batch"
	"github.com/freshen-io/freshen/embed/bedrock"
	"github.com/freshen-io/freshen/embed/breaker"
	"github.com/freshen-io/freshen/embed/builtin"
	"github.com/freshen-io/freshen/embed/limit"
	"github.com/freshen-io/freshen/embed/openai"
	"github.com/freshen-io/freshen/embed/retry"
	kafkafeed "github.com/freshen-io/freshen/feed/kafka"
	natsfeed "github.com/freshen-io/freshen/feed/nats"
	sqsfeed "github.com/freshen-io/freshen/feed/sqs"
	"github.com/freshen-io/freshen/feed/webhook"
	"github.com/freshen-io/freshen/index/embedded"
	"github.com/freshen-io/freshen/index/pgvector"
	"github.com/freshen-io/freshen/index/weaviate"
	"github.com/freshen-io/freshen/internal/config"
	"github.com/freshen-io/freshen/ledger/postgres"
	"github.com/freshen-io/freshen/ledger/sqlite"
)

// The built-in implementations, by the name configuration uses for them
// (ledger.type, index.type, embedder.type, feeds). A new adapter is one
// line here, one name in config's lists, and its own package.

var ledgers = map[string]func(ctx context.Context, cfg config.Config) (freshen.Ledger, error){
	"sqlite": func(ctx context.Context, cfg config.Config) (freshen.Ledger, error) {
		return sqlite.Open(ctx, filepath.Join(cfg.DataDir, "ledger.db"))
	},
	"postgres": func(ctx context.Context, cfg config.Config) (freshen.Ledger, error) {
		return postgres.Open(ctx, postgres.Config{DSN: string(cfg.Ledger.DSN), Schema: cfg.Ledger.Schema})
	},
}

var indexes = map[string]func(ctx context.Context, cfg config.Config, dim int) (freshen.Index, error){
	"embedded": func(ctx context.Context, cfg config.Config, dim int) (freshen.Index, error) {
		return embedded.Open(ctx, filepath.Join(cfg.DataDir, "index.db"), dim)
	},
	"pgvector": func(ctx context.Context, cfg config.Config, dim int) (freshen.Index, error) {
		return pgvector.Open(ctx, pgvector.Config{DSN: string(cfg.Index.DSN), Table: cfg.Index.Table, Dim: dim, NoCreate: !cfg.Index.Create})
	},
	"weaviate": func(ctx context.Context, cfg config.Config, dim int) (freshen.Index, error) {
		collection := cfg.Index.Collection
		if collection == "" {
			collection = "FreshenChunks"
		}
		return weaviate.Open(ctx, weaviate.Config{URL: cfg.Index.URL, Collection: collection, Dim: dim, Create: cfg.Index.Create})
	},
}

var embedders = map[string]func(ctx context.Context, cfg config.Config) (freshen.Embedder, error){
	"openai": func(ctx context.Context, cfg config.Config) (freshen.Embedder, error) {
		oc, err := openaiConfig(cfg)
		if err != nil {
			return nil, err
		}
		p, err := openai.New(oc)
		if err != nil {
			return nil, err
		}
		return provider(p, cfg), nil
	},
	"bedrock": func(ctx context.Context, cfg config.Config) (freshen.Embedder, error) {
		p, err := bedrock.New(ctx, bedrockConfig(cfg))
		if err != nil {
			return nil, err
		}
		return provider(p, cfg), nil
	},
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

var feeds = map[string]func(ctx context.Context, cfg config.Config, log *slog.Logger) (freshen.Feed, error){
	"webhook": func(ctx context.Context, cfg config.Config, log *slog.Logger) (freshen.Feed, error) {
		return webhook.New(webhook.Config{Token: string(cfg.WebhookToken),
			SNS: webhook.SNSConfig{Verify: cfg.Webhook.SNSVerify, Hosts: cfg.Webhook.SNSHosts, Topics: cfg.Webhook.SNSTopics}}, log), nil
	},
	"sqs": func(ctx context.Context, cfg config.Config, log *slog.Logger) (freshen.Feed, error) {
		return sqsfeed.New(ctx, sqsConfig(cfg), log)
	},
	"nats": func(ctx context.Context, cfg config.Config, log *slog.Logger) (freshen.Feed, error) {
		return natsfeed.New(natsConfig(cfg), log)
	},
	"kafka": func(ctx context.Context, cfg config.Config, log *slog.Logger) (freshen.Feed, error) {
		return kafkafeed.New(kafkaConfig(cfg), log)
	},
}

func kafkaConfig(cfg config.Config) kafkafeed.Config {
	k := cfg.Feeds.Kafka
	return kafkafeed.Config{Brokers: k.Brokers, Topic: k.Topic, Group: k.Group}
}

func sqsConfig(cfg config.Config) sqsfeed.Config {
	q := cfg.Feeds.SQS
	return sqsfeed.Config{QueueURL: q.QueueURL, Region: q.Region, Endpoint: q.Endpoint,
		WaitTime: time.Duration(q.WaitTime), Visibility: time.Duration(q.Visibility)}
}

func natsConfig(cfg config.Config) natsfeed.Config {
	n := cfg.Feeds.NATS
	return natsfeed.Config{URL: n.URL, Stream: n.Stream, Subject: n.Subject, Durable: n.Durable}
}

// checkFeed validates a feed's settings as its package does, offline.
func checkFeed(name string, cfg config.Config) error {
	switch name {
	case "sqs":
		return sqsConfig(cfg).Validate()
	case "nats":
		return natsConfig(cfg).Validate()
	case "kafka":
		return kafkaConfig(cfg).Validate()
	}
	return nil
}

// openaiConfig is the OpenAI client's configuration; the key comes from
// the environment variable the configuration names, never from the file.
func openaiConfig(cfg config.Config) (openai.Config, error) {
	e := cfg.Embedder
	oc := openai.Config{BaseURL: e.BaseURL, APIKey: openai.Secret(os.Getenv(e.APIKeyEnv)), APIVersion: e.APIVersion,
		Model: e.Model, Dimensions: e.Dimensions, Dim: e.Dim, MaxTokens: e.MaxTokens, Truncate: e.Truncate,
		Tokenizer: e.Tokenizer, Timeout: time.Duration(e.Timeout)}
	if e.Azure {
		oc.APIKeyHeader = "api-key"
	}
	if oc.APIKey == "" && (e.BaseURL == "" || strings.Contains(e.BaseURL, "api.openai.com") || e.Azure) {
		return oc, fmt.Errorf("embedder: $%s is empty: export the API key there (or name another variable in embedder.api-key-env)", e.APIKeyEnv)
	}
	if err := oc.Validate(); err != nil {
		return oc, fmt.Errorf("%w\n  (in the configuration: Model is embedder.model, Dim embedder.dim, MaxTokens embedder.max-tokens, "+
			"Dimensions embedder.dimensions, BaseURL embedder.base-url, Tokenizer embedder.tokenizer)", err)
	}
	return oc, nil
}

func bedrockConfig(cfg config.Config) bedrock.Config {
	e := cfg.Embedder
	return bedrock.Config{Region: e.Region, Endpoint: e.Endpoint, Model: e.Model, Dimensions: e.Dimensions, Timeout: time.Duration(e.Timeout)}
}

// provider stacks the decorators in front of a provider's client, each
// with one job: the micro-batcher merges the workers' calls; retry backs
// off (and splits what is too large); the breaker stops calling a
// provider that is down (work waits, nothing is parked); the limiter
// paces requests and tokens per minute and adapts to 429s.
func provider(p freshen.Embedder, cfg config.Config) freshen.Embedder {
	e := cfg.Embedder
	// Providers count their limits in any sliding minute. A bucket with
	// a burst of B lets rate×60s + B through in a minute, so keep two
	// seconds' worth as burst (room for a full batch) and take it off
	// the rate: never over the provider's limit, within 4% of it.
	lc := limit.Config{MaxConcurrency: e.MaxConcurrency}
	if e.RPM > 0 {
		lc.RequestBurst = max(e.RPM/30, 1)
		lc.RequestsPerMinute = max(e.RPM-lc.RequestBurst, 1)
	}
	if e.TPM > 0 {
		lc.TokenBurst = max(e.TPM/30, 1)
		lc.TokensPerMinute = max(e.TPM-lc.TokenBurst, 1)
	}
	limited := limit.New(p, lc)
	guarded := breaker.New(limited, breaker.Config{OpenFor: time.Duration(e.CircuitOpenFor)})
	retried := retry.New(guarded, retry.Config{})
	b := e.Batch
	parallel := b.Parallel
	if parallel == 0 {
		parallel = max(e.MaxConcurrency, 4)
	}
	return &providerStack{Embedder: batch.New(retried, batch.Config{MaxTexts: b.MaxTexts, MaxWait: time.Duration(b.MaxWait), Parallel: parallel}),
		breaker: guarded}
}

// providerStack is a provider behind its decorators; it reports the
// circuit breaker's state (ProviderHealth) for readiness and status.
type providerStack struct {
	*batch.Embedder
	breaker *breaker.Embedder
}

// ProviderHealth returns why the provider is not being called now (its
// circuit is open after sustained failures), or nil.
func (s *providerStack) ProviderHealth() error {
	switch st, since := s.breaker.State(); st {
	case breaker.Open, breaker.HalfOpen:
		return fmt.Errorf("the embedding provider (%s) is failing: calls paused since %s, probing; changes wait in the queue",
			s.Model().Name, since.UTC().Format(time.RFC3339))
	}
	return nil
}

// checkEmbedder validates a provider's configuration without I/O.
func checkEmbedder(cfg config.Config) error {
	switch cfg.Embedder.Type {
	case "openai":
		_, err := openaiConfig(cfg)
		return err
	case "bedrock":
		return bedrockConfig(cfg).Validate()
	}
	return nil
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
