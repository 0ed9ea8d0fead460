package app

import (
	"maps"
	"slices"
	"strings"
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

// TestCheckValidatesEachFeed: config check (Check) asks each feed's
// package about its settings, offline.
func TestCheckValidatesEachFeed(t *testing.T) {
	for _, c := range []struct {
		edit func(*config.FeedsConfig)
		want string
	}{
		{func(f *config.FeedsConfig) {
			f.Names, f.Kafka = config.StringList{"kafka"}, config.KafkaFeedConfig{Brokers: config.StringList{"kafka://h:9092"}, Topic: "s3"}
		}, "feeds.kafka"},
		{func(f *config.FeedsConfig) {
			f.Names, f.NATS = config.StringList{"nats"}, config.NATSFeedConfig{URL: "http://h:4222", Stream: "S3", Subject: "s3.events"}
		}, "feeds.nats"},
		{func(f *config.FeedsConfig) {
			f.Names, f.SQS = config.StringList{"sqs"}, config.SQSFeedConfig{QueueURL: "arn:aws:sqs:us-east-1:123456789012:q"}
		}, "feeds.sqs"},
	} {
		cfg := config.Default()
		cfg.Source.Bucket, cfg.DataDir = "docs", t.TempDir()
		c.edit(&cfg.Feeds)
		if err := Check(cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: Check = %v, want %q", cfg.Feeds, err, c.want)
		}
	}
}
