package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func write(t *testing.T, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "freshen.yaml")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadFileAndEnv(t *testing.T) {
	p := write(t, `
source:
  bucket: docs
  prefix: [kb/, docs/]
  include: "*.md"
  endpoint: http://127.0.0.1:7070
  path-style: true
data-dir: state
reconcile-interval: 90s
workers: 3
chunk:
  max-tokens: 500
limits:
  max-object-bytes: 2MiB
`)
	cfg, err := Load(p, []string{"FRESHEN_WORKERS=7", "FRESHEN_SOURCE_EXCLUDE=drafts/**,*.tmp", "FRESHEN_MASS_DELETE_ALLOW=true", "PATH=/bin"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Source.Bucket != "docs" || len(cfg.Source.Prefix) != 2 || cfg.Source.Include[0] != "*.md" || !cfg.Source.PathStyle {
		t.Errorf("source = %+v", cfg.Source)
	}
	if cfg.DataDir != filepath.Join(filepath.Dir(p), "state") {
		t.Errorf("data-dir = %q, want it relative to the file", cfg.DataDir)
	}
	if time.Duration(cfg.ReconcileInterval) != 90*time.Second || cfg.Workers != 7 || cfg.Chunk.MaxTokens != 500 || cfg.Chunk.MinTokens != 64 {
		t.Errorf("cfg = %+v", cfg)
	}
	if cfg.Limits.MaxObjectBytes != 2<<20 || !cfg.MassDelete.Allow || len(cfg.Source.Exclude) != 2 {
		t.Errorf("limits/mass-delete/exclude = %+v %+v %v", cfg.Limits, cfg.MassDelete, cfg.Source.Exclude)
	}
}

func TestMistakesAreExplained(t *testing.T) {
	for _, c := range []struct {
		yaml, env, want string
	}{
		{"source:\n  bukcet: x\n", "", `unknown key "bukcet" (did you mean "bucket"?)`},
		{"source: {bucket: x}\nworkers: -1\n", "", "workers = -1"},
		{"source: {bucket: x}\nworkers: 300\n", "", "workers = 300"},
		{"source: {bucket: x}\nchunk: {min-tokens: 300}\n", "", "min-tokens (300) must be below target-tokens (200)"},
		// What the chunker refuses at start, config check refuses too.
		{"source: {bucket: x}\nchunk: {min-tokens: 64, target-tokens: 300, max-tokens: 400}\n", "", "max-tokens (400) leaves too little room"},
		{"source: {bucket: x}\nretry: {backoff: 1m, max-backoff: 1s}\n", "", "backoff <= max-backoff"},
		{"source: {bucket: x}\nledger: {type: postgress}\n", "", `ledger.type = "postgress": want one of sqlite`},
		{"source: {bucket: x}\nfeeds: [webhook, sqs]\n", "", `feeds.sqs.queue-url "": want the queue's URL`},
		{"source: {bucket: x}\nfeeds: [webhook, mqtt]\n", "", `feeds[1] = "mqtt"`},
		{"source: {bucket: x}\nfeeds: {webhook: {}, nats: {url: 'nats://h:4222'}}\n", "", "feeds.nats needs url, stream and subject"},
		{"source: {bucket: x}\nfeeds: {sqs: {queue-ulr: x}}\n", "", `unknown key "queue-ulr" (did you mean "queue-url"?)`},
		{"source: {bucket: x}\nfeeds: {rabbit: {}}\n", "", `unknown feed "rabbit"`},
		{"source: {bucket: x}\nfeeds: [webhook]\n", "FRESHEN_FEEDS_KAFKA_TOPIC=t", "feeds.kafka has settings but kafka is not among the feeds"},
		{"source: {bucket: x}\nwebhook: {sns-hosts: ['*.com']}\n", "", "sns"},
		{"source: {bucket: x}\n", "FRESHEN_FEEDS=", "feeds is empty"},
		// What `run` used to reject late, or change silently.
		{"source: {bucket: x}\nlisten: not-an-addr\n", "", `listen "not-an-addr": want HOST:PORT`},
		{"source: {bucket: x}\nlisten: 127.0.0.1:99999\n", "", `port "99999" is not 0..65535`},
		{"source: {bucket: x}\nworkers: 2.5\n", "", "workers = 2.5: want a whole number"},
		{"source: {bucket: x}\nchunk: {max-tokens: 400.5}\n", "", "chunk.max-tokens = 400.5"},
		{"source: {bucket: x, endpoint: 'http://'}\n", "", "has no host"},
		{"source: {bucket: x, endpoint: 'http://h:0'}\n", "", "port 0 is not 1..65535"},
		{"source: {bucket: x, region: 'us east 1'}\n", "", "source.region"},
		{"source: {bucket: x}\nreconcile-interval: soon\n", "", "is not a duration"},
		{"source: {bucket: x}\nlimits: {max-object-bytes: lots}\n", "", "is not a size"},
		{"source: {bucket: 'a/b'}\n", "", "put a key prefix in source.prefix"},
		{"source: {bucket: x, endpoint: 'localhost:9000'}\n", "", "must start with http://"},
		{"{}\n", "", "source.bucket is required"},
		{"source: {bucket: x}\n", "FRESHEN_WORKRES=3", "did you mean FRESHEN_WORKERS?"},
		{"source: {bucket: x}\n", "FRESHEN_WORKERS=many", "is not a whole number"},
		// Index keys belong to their type.
		{"source: {bucket: x}\nindex: {type: embedded, dsn: 'postgres://h/db'}\n", "", "index.dsn: only for index.type pgvector (index.type is embedded)"},
		{"source: {bucket: x}\nindex: {type: pgvector, url: 'http://h:8080'}\n", "", "index.url: only for index.type weaviate"},
		{"source: {bucket: x}\nindex: {type: pgvector, table: 'chunks; drop table x'}\n", "", "index.table"},
		{"source: {bucket: x}\nindex: {type: weaviate}\n", "", "index.url \"\": want Weaviate's HTTP address"},
		{"source: {bucket: x}\nindex: {type: weaviate, url: 'http://h:8080', collection: chunks}\n", "", "start with a capital letter"},
		{"source: {bucket: x}\nindex: {type: pgvectr}\n", "", "want one of embedded, pgvector, weaviate"},
	} {
		var env []string
		if c.env != "" {
			env = []string{c.env}
		}
		_, err := Load(write(t, c.yaml), env)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q / %q: err = %v, want it to contain %q", c.yaml, c.env, err, c.want)
		}
	}
}

func TestFilter(t *testing.T) {
	f, err := NewFilter(SourceConfig{Prefix: []string{"kb/", "docs/", "docs/inner/"}, Include: []string{"*.md", "docs/**/*.html"}, Exclude: []string{"**/drafts/**", "*.tmp.md"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.Prefixes(), ","); got != "docs/,kb/" {
		t.Errorf("prefixes = %s", got)
	}
	for key, want := range map[string]bool{
		"kb/a.md": true, "kb/deep/dir/b.md": true, "docs/x/y.html": true, "docs/y.html": true, "kb/y.html": false,
		"other/a.md": false, "kb/drafts/a.md": false, "kb/a.tmp.md": false, "kb/a.MD": false, "kb/with space+plus%.md": true,
	} {
		if got := f.Match(key); got != want {
			t.Errorf("Match(%q) = %v, want %v", key, got, want)
		}
	}
	all, _ := NewFilter(SourceConfig{})
	if !all.Match("anything/at all") || all.Prefixes()[0] != "" {
		t.Error("empty filter should watch the whole bucket")
	}
}

func TestSecretsNeverPrint(t *testing.T) {
	cfg, err := Load(write(t, "source: {bucket: x}\nwebhook-token: hunter2\n"), []string{"FRESHEN_API_TOKEN=swordfish"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.WebhookToken != "hunter2" || cfg.APIToken != "swordfish" {
		t.Fatalf("tokens = %q %q", cfg.WebhookToken, cfg.APIToken)
	}
	if s := fmt.Sprintf("%v %s %+v", cfg.WebhookToken, cfg.APIToken, cfg); strings.Contains(s, "hunter2") || strings.Contains(s, "swordfish") {
		t.Fatalf("secret printed: %s", s)
	}
	out, _ := yaml.Marshal(cfg)
	if strings.Contains(string(out), "hunter2") {
		t.Fatalf("secret in YAML: %s", out)
	}
}

// TestExposure: `run` refuses an address beyond loopback without both
// tokens, unless told that something else authenticates.
func TestExposure(t *testing.T) {
	for _, c := range []struct {
		yaml string
		want string // "" for no error
	}{
		{"listen: 127.0.0.1:8080\n", ""},
		{"listen: localhost:8080\n", ""},
		{"listen: '[::1]:8080'\n", ""},
		{"listen: 0.0.0.0:8080\n", "without api-token and webhook-token"},
		{"listen: ':8080'\n", "every interface"},
		{"listen: 10.1.2.3:8080\napi-token: a\n", "without webhook-token"},
		{"listen: 0.0.0.0:8080\napi-token: a\nwebhook-token: b\n", ""},
		{"listen: 0.0.0.0:8080\nallow-unauthenticated: true\n", ""},
	} {
		cfg, err := Load(write(t, "source: {bucket: x}\n"+c.yaml), nil)
		if err != nil {
			t.Fatalf("%q: %v", c.yaml, err)
		}
		err = cfg.Exposure()
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%q: Exposure() = %v, want %q", c.yaml, err, c.want)
		}
	}
}

func TestBudget(t *testing.T) {
	for _, c := range []struct {
		yaml string
		want int64
	}{
		{"", 0},
		{"budget: {tokens-per-day: 5000}\n", 5000},
		{"embedder: {price-per-million-tokens: 0.02}\nbudget: {usd-per-day: 1}\n", 50_000_000},
		{"embedder: {price-per-million-tokens: 0.02}\nbudget: {usd-per-day: 1, tokens-per-day: 1000}\n", 1000},
	} {
		cfg, err := Load(write(t, "source: {bucket: x}\n"+c.yaml), nil)
		if err != nil {
			t.Fatalf("%q: %v", c.yaml, err)
		}
		if got := cfg.TokensPerDay(); got != c.want || cfg.Pipeline().BudgetTokensPerDay != c.want {
			t.Errorf("%q: TokensPerDay = %d, want %d", c.yaml, got, c.want)
		}
	}
	if _, err := Load(write(t, "source: {bucket: x}\nbudget: {usd-per-day: 1}\n"), nil); err == nil || !strings.Contains(err.Error(), "price-per-million-tokens") {
		t.Fatalf("usd budget without a price: %v", err)
	}
}

func TestDSNPasswordNeverPrints(t *testing.T) {
	for dsn, want := range map[string]string{
		"postgres://app:hunter2@db:5432/rag?sslmode=require": "postgres://app:***@db:5432/rag?sslmode=require",
		"postgres://db/rag?user=app&password=hunter2":        "postgres://db/rag?password=***&user=app",
		"host=db user=app password=hunter2 dbname=rag":       "host=db user=app password=*** dbname=rag",
		"host=db password='hunter 2' dbname=rag":             "host=db password=*** dbname=rag",
		"postgres://app@db/rag":                              "postgres://app@db/rag",
		"":                                                   "",
	} {
		if got := DSN(dsn).String(); got != want || strings.Contains(got, "hunter") {
			t.Errorf("DSN(%q) prints %q, want %q", dsn, got, want)
		}
	}
}

// TestFeedSettings: feeds are a list of names or a mapping to their
// settings, in the file or the environment.
func TestFeedSettings(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f.yaml")
	os.WriteFile(p, []byte("source: {bucket: x}\nfeeds:\n  webhook:\n  sqs:\n    queue-url: https://sqs.us-east-1.amazonaws.com/1/q\n    wait-time: 5s\n  nats: {url: 'nats://a:4222,nats://b:4222', stream: S3, subject: s3.events}\n"), 0o644)
	cfg, err := Load(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := cfg.Feeds
	if fmt.Sprint(f.Names) != "[webhook sqs nats]" || f.SQS.QueueURL != "https://sqs.us-east-1.amazonaws.com/1/q" ||
		f.SQS.WaitTime != Duration(5*time.Second) || f.NATS.URL != "nats://a:4222,nats://b:4222" || f.NATS.Subject != "s3.events" {
		t.Fatalf("feeds = %+v", f)
	}
	os.WriteFile(p, []byte("source: {bucket: x}\n"), 0o644)
	cfg, err = Load(p, []string{"FRESHEN_FEEDS=nats", "FRESHEN_FEEDS_NATS_URL=nats://127.0.0.1:4222", "FRESHEN_FEEDS_NATS_STREAM=S3", "FRESHEN_FEEDS_NATS_SUBJECT=s3.events"})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(cfg.Feeds.Names) != "[nats]" || cfg.Feeds.NATS.Subject != "s3.events" {
		t.Fatalf("feeds from the environment = %+v", cfg.Feeds)
	}
}
