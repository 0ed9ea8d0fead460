// Package config loads freshen's configuration: a YAML file with
// kebab-case keys, then FRESHEN_* environment variables (one per key:
// FRESHEN_SOURCE_BUCKET, FRESHEN_CHUNK_MAX_TOKENS...), then defaults. It
// validates without touching the network and explains every mistake it
// finds, all at once.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/freshen-io/freshen/chunk"
	"github.com/freshen-io/freshen/feed/sns"
	"github.com/freshen-io/freshen/internal/pipeline"
)

// Config is the whole configuration.
type Config struct {
	Source SourceConfig `yaml:"source"`
	// DataDir holds the ledger and the embedded index.
	DataDir string `yaml:"data-dir"`
	// ReconcileInterval is how often `freshen run` lists the bucket to
	// catch changes that no event announced.
	ReconcileInterval Duration `yaml:"reconcile-interval"`
	// ReconcileSplit, when set, splits the bucket's reconcile pass into
	// key ranges (first, s1], (s1, s2], ..., (sn, last]: on a shared
	// ledger each range is run by one process, so several processes list
	// a large bucket in parallel.
	ReconcileSplit StringList `yaml:"reconcile-split"`
	// VerifyInterval, when set, makes `freshen run` verify the index
	// against the ledger that often and repair what drifted (under the
	// mass-delete rule); 0 is never.
	VerifyInterval Duration `yaml:"verify-interval"`
	// Workers is how many objects are processed at once.
	Workers int `yaml:"workers"`
	// Listen is the HTTP API's address for `freshen run`.
	Listen string `yaml:"listen"`
	// WebhookToken, if set, is required from event senders (bearer
	// token, X-Freshen-Token header, or ?token= in the webhook URL).
	WebhookToken Secret `yaml:"webhook-token"`
	// APIToken, if set, is required as a bearer token on /v1/ endpoints
	// (and /metrics, unless MetricsPublic).
	APIToken Secret `yaml:"api-token"`
	// AllowUnauthenticated lets `freshen run` listen beyond loopback
	// without api-token and webhook-token.
	AllowUnauthenticated bool `yaml:"allow-unauthenticated"`
	// MetricsPublic serves /metrics without the api-token.
	MetricsPublic bool         `yaml:"metrics-public"`
	Search        SearchConfig `yaml:"search"`
	// Chunk is the chunker's own configuration (package chunk validates
	// it); changing it re-chunks (and re-embeds) every object, visibly,
	// through the chunker version.
	Chunk      chunk.Config     `yaml:"chunk"`
	Limits     LimitsConfig     `yaml:"limits"`
	MassDelete MassDeleteConfig `yaml:"mass-delete"`
	Retry      RetryConfig      `yaml:"retry"`
	Budget     BudgetConfig     `yaml:"budget"`
	// ShutdownTimeout is how long `freshen run` lets in-flight objects
	// finish at shutdown before it cancels them (they are redone later).
	ShutdownTimeout Duration `yaml:"shutdown-timeout"`

	// Ledger, Index and Embedder choose the implementations; their type
	// defaults to the embedded one (sqlite, embedded, builtin).
	Ledger   LedgerConfig   `yaml:"ledger"`
	Index    IndexConfig    `yaml:"index"`
	Embedder EmbedderConfig `yaml:"embedder"`
	// Feeds are the event transports to run (default: webhook), and
	// their settings.
	Feeds   FeedsConfig   `yaml:"feeds"`
	Webhook WebhookConfig `yaml:"webhook"`
}

// LedgerConfig chooses the ledger.
type LedgerConfig struct {
	// Type is "sqlite" (a file in data-dir, one process) or "postgres"
	// (shared by any number of `freshen run` processes).
	Type string `yaml:"type"`
	// DSN is the PostgreSQL ledger's connection string (also
	// FRESHEN_LEDGER_DSN); empty uses the standard PG* variables. Its
	// password never prints.
	DSN DSN `yaml:"dsn"`
	// Schema is the PostgreSQL schema holding the ledger (default
	// freshen): one per deployment.
	Schema string `yaml:"schema"`
}

// IndexConfig chooses the vector index.
type IndexConfig struct {
	// Type is "embedded" (exact search over a SQLite file in data-dir),
	// "pgvector" (a PostgreSQL table with the vector extension) or
	// "weaviate" (a Weaviate collection).
	Type string `yaml:"type"`
	// DSN is pgvector's PostgreSQL connection string (also
	// FRESHEN_INDEX_DSN); empty uses the standard PG* variables. Its
	// password never prints.
	DSN DSN `yaml:"dsn"`
	// Table is pgvector's table (default freshen_chunks), one per model.
	Table string `yaml:"table"`
	// URL is Weaviate's HTTP address, Collection its collection (default
	// FreshenChunks), one per model.
	URL        string `yaml:"url"`
	Collection string `yaml:"collection"`
	// Create makes the table or collection when missing (default true);
	// false only checks that an existing one matches.
	Create bool `yaml:"create"`
}

// EmbedderConfig chooses the embedding model.
type EmbedderConfig struct {
	// Type is "builtin" (Universal Sentence Encoder Lite in pure Go, the
	// default), "openai" (OpenAI and compatible servers: Azure OpenAI,
	// Ollama, vLLM, TEI, LiteLLM) or "bedrock" (Amazon Bedrock: Titan
	// Text Embeddings v2, Cohere Embed v3/v4).
	Type string `yaml:"type"`
	// Model is the provider's model name, e.g. text-embedding-3-small or
	// amazon.titan-embed-text-v2:0.
	Model string `yaml:"model"`
	// BaseURL is the OpenAI-compatible API's base (default OpenAI's).
	BaseURL string `yaml:"base-url"`
	// Dimensions asks the model for shorter vectors (text-embedding-3,
	// Titan v2, Cohere v4); 0 is the model's default.
	Dimensions int `yaml:"dimensions"`
	// Dim and MaxTokens describe a model freshen does not know (a
	// compatible server's): its vector length and context in tokens.
	Dim       int `yaml:"dim"`
	MaxTokens int `yaml:"max-tokens"`
	// Truncate cuts inputs longer than the model's context instead of
	// embedding them as the mean of their windows.
	Truncate bool `yaml:"truncate"`
	// Tokenizer counts tokens for an OpenAI-compatible model:
	// cl100k_base (OpenAI's, the default for its models) or estimate
	// (the default for other model names). Providers' reported usage is
	// what the counters record either way.
	Tokenizer string `yaml:"tokenizer"`
	// APIKeyEnv names the environment variable holding the API key
	// (default OPENAI_API_KEY); the key itself is never in the file.
	APIKeyEnv string `yaml:"api-key-env"`
	// Azure sends the key as Azure OpenAI's api-key header, with
	// APIVersion as the api-version parameter.
	Azure      bool   `yaml:"azure"`
	APIVersion string `yaml:"api-version"`
	// Region and Endpoint locate Bedrock (default: the AWS chain's
	// region and AWS's endpoint).
	Region   string `yaml:"region"`
	Endpoint string `yaml:"endpoint"`
	// Timeout bounds one request to the provider.
	Timeout Duration `yaml:"timeout"`
	// RPM and TPM pace requests and tokens per minute (0: no limit, and
	// the provider's 429s pace it); MaxConcurrency caps requests in
	// flight.
	RPM            int `yaml:"rpm"`
	TPM            int `yaml:"tpm"`
	MaxConcurrency int `yaml:"max-concurrency"`
	// CircuitOpenFor is how long calls to a failing provider pause
	// before a probe (doubling while probes fail, up to 5 minutes).
	CircuitOpenFor Duration `yaml:"circuit-open-for"`
	// PricePerMillionTokens turns tokens into money in status and metrics.
	PricePerMillionTokens float64     `yaml:"price-per-million-tokens"`
	Batch                 BatchConfig `yaml:"batch"`
}

// BatchConfig tunes the micro-batcher that merges the workers' embedding
// calls into larger ones.
type BatchConfig struct {
	// MaxTexts caps one merged call.
	MaxTexts int `yaml:"max-texts"`
	// MaxWait is how long a call waits for company.
	MaxWait Duration `yaml:"max-wait"`
	// Parallel is how many merged calls run at once (0: one per core).
	Parallel int `yaml:"parallel"`
}

// WebhookConfig configures the webhook feed beyond its token.
type WebhookConfig struct {
	// SNSVerify checks the signature of every Amazon SNS message.
	SNSVerify bool `yaml:"sns-verify"`
	// SNSHosts are the host patterns (`*` is one DNS label) SNS
	// certificates and SubscribeURLs may come from (default: AWS's).
	SNSHosts StringList `yaml:"sns-hosts"`
	// SNSTopics, if set, are the only topic ARNs accepted.
	SNSTopics StringList `yaml:"sns-topics"`
}

// BudgetConfig caps what embedding may cost per UTC day; when it is
// spent, changes wait (nothing is parked) until the day rolls over.
type BudgetConfig struct {
	TokensPerDay int64   `yaml:"tokens-per-day"`
	USDPerDay    float64 `yaml:"usd-per-day"`
}

// TokensPerDay is the effective daily token budget (0: none): the lower
// of budget.tokens-per-day and what budget.usd-per-day buys.
func (c Config) TokensPerDay() int64 {
	n := c.Budget.TokensPerDay
	if p := c.Embedder.PricePerMillionTokens; c.Budget.USDPerDay > 0 && p > 0 {
		byUSD := int64(c.Budget.USDPerDay / p * 1e6)
		if n == 0 || byUSD < n {
			n = max(byUSD, 1)
		}
	}
	return n
}

// RetryConfig tunes retries of failing objects and the worker leases.
type RetryConfig struct {
	// Backoff is the delay before the first retry; it doubles per
	// attempt, with jitter, up to MaxBackoff.
	Backoff    Duration `yaml:"backoff"`
	MaxBackoff Duration `yaml:"max-backoff"`
	// LeaseTTL is how long a crashed worker keeps an object from others;
	// live workers extend their leases every third of it.
	LeaseTTL Duration `yaml:"lease-ttl"`
}

// Known implementation names, for validation; internal/app's registry
// lists the same (a test keeps them equal).
var (
	LedgerTypes   = []string{"sqlite", "postgres"}
	IndexTypes    = []string{"embedded", "pgvector", "weaviate"}
	EmbedderTypes = []string{"builtin", "openai", "bedrock"}
	FeedTypes     = []string{"webhook", "sqs", "nats", "kafka"}
)

// SourceConfig says what to watch.
type SourceConfig struct {
	Bucket string `yaml:"bucket"`
	// Prefix is one or several key prefixes; empty watches the bucket.
	Prefix StringList `yaml:"prefix"`
	// Include and Exclude are globs: `*` and `?` stay within a path
	// segment, `**` crosses segments; a pattern without a slash matches
	// the key's last segment. A key is watched if it matches an include
	// (or there are none) and no exclude.
	Include StringList `yaml:"include"`
	Exclude StringList `yaml:"exclude"`
	// Sidecars reads each object's KEY.metadata.json (Amazon Bedrock
	// Knowledge Bases format) as attributes of its chunks (default true).
	Sidecars  bool   `yaml:"sidecars"`
	Endpoint  string `yaml:"endpoint"`
	Region    string `yaml:"region"`
	PathStyle bool   `yaml:"path-style"`
}

// SearchConfig bounds what one search may cost.
type SearchConfig struct {
	// MaxQueryBytes rejects longer queries with 400; queries longer than
	// the model's window are cut to it.
	MaxQueryBytes ByteSize `yaml:"max-query-bytes"`
	// MaxConcurrent searches run at once (0: one per core); others wait
	// their turn or give up with their request.
	MaxConcurrent int `yaml:"max-concurrent"`
}

// LimitsConfig bounds the work one object may cause.
type LimitsConfig struct {
	MaxObjectBytes ByteSize `yaml:"max-object-bytes"`
	// MaxChunksPerObject and MaxTokensPerObject (the chunker's estimate)
	// skip an object, with the reason, before anything of it is embedded.
	MaxChunksPerObject int `yaml:"max-chunks-per-object"`
	MaxTokensPerObject int `yaml:"max-tokens-per-object"`
	// MaxAttempts is how often a failing object is retried before it is
	// parked as failed (a dead letter).
	MaxAttempts int `yaml:"max-attempts"`
}

// MassDeleteConfig is the breaker that stops a bad listing (wrong
// credentials, prefix or endpoint) from emptying the index.
type MassDeleteConfig struct {
	// MaxFraction of the indexed objects one reconcile pass may delete.
	MaxFraction float64 `yaml:"max-fraction"`
	// MinObjects: passes deleting fewer objects than this never trip.
	MinObjects int `yaml:"min-objects"`
	// Allow disables the breaker.
	Allow bool `yaml:"allow"`
}

// Default returns the defaults.
func Default() Config {
	return Config{
		DataDir:           ".freshen",
		ReconcileInterval: Duration(5 * time.Minute),
		Workers:           16,
		Listen:            "127.0.0.1:8080",
		Chunk:             chunk.Config{}.WithDefaults(),
		Limits:            LimitsConfig{MaxObjectBytes: 32 << 20, MaxAttempts: 5, MaxChunksPerObject: 5000, MaxTokensPerObject: 1_000_000},
		Search:            SearchConfig{MaxQueryBytes: 4 << 10},
		MassDelete:        MassDeleteConfig{MaxFraction: 0.5, MinObjects: 100},
		Retry:             RetryConfig{Backoff: Duration(200 * time.Millisecond), MaxBackoff: Duration(5 * time.Minute), LeaseTTL: Duration(5 * time.Minute)},
		ShutdownTimeout:   Duration(10 * time.Second),
		Source:            SourceConfig{Sidecars: true},
		Ledger:            LedgerConfig{Type: "sqlite"},
		Index:             IndexConfig{Type: "embedded", Create: true},
		Embedder: EmbedderConfig{Type: "builtin", APIKeyEnv: "OPENAI_API_KEY", Timeout: Duration(time.Minute), CircuitOpenFor: Duration(30 * time.Second),
			Batch: BatchConfig{MaxTexts: 64, MaxWait: Duration(2 * time.Millisecond)}},
		Feeds:   FeedsConfig{Names: StringList{"webhook"}},
		Webhook: WebhookConfig{SNSVerify: true},
	}
}

// Load reads the file at path (optional: "" means no file), applies the
// environment, and validates.
func Load(file string, environ []string) (Config, error) {
	cfg := Default()
	if file != "" {
		raw, err := os.ReadFile(file)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return cfg, fmt.Errorf("config: %s: %s", file, explainYAML(err))
		}
		if err := wholeNumbers(raw, &cfg); err != nil {
			return cfg, fmt.Errorf("config: %s: %w", file, err)
		}
		if cfg.DataDir != "" && !strings.HasPrefix(cfg.DataDir, "/") {
			// A relative data-dir is relative to the config file, so
			// the same file works from any working directory.
			cfg.DataDir = path.Join(path.Dir(file), cfg.DataDir)
		}
	}
	if err := applyEnv(&cfg, environ); err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

var fieldNotFound = regexp.MustCompile(`field (\S+) not found in type (\S+)`)

// explainYAML turns yaml.v3's messages about unknown keys into advice.
func explainYAML(err error) string {
	msg := err.Error()
	return fieldNotFound.ReplaceAllStringFunc(msg, func(m string) string {
		sub := fieldNotFound.FindStringSubmatch(m)
		key := sub[1]
		if s := suggest(key, knownKeys()); s != "" {
			return fmt.Sprintf("unknown key %q (did you mean %q?)", key, s)
		}
		return fmt.Sprintf("unknown key %q", key)
	})
}

// Validate checks everything that can be checked offline and reports all
// problems together.
func (c Config) Validate() error {
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if c.Source.Bucket == "" {
		add("source.bucket is required (set it in the file or FRESHEN_SOURCE_BUCKET)")
	} else if strings.ContainsAny(c.Source.Bucket, "/ ") {
		add("source.bucket %q: a bucket name has no slashes or spaces; put a key prefix in source.prefix", c.Source.Bucket)
	}
	if e := c.Source.Endpoint; e != "" {
		u, err := url.Parse(e)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https"):
			add("source.endpoint %q must start with http:// or https://", e)
		case u.Host == "" || u.Hostname() == "":
			add("source.endpoint %q has no host (want e.g. http://127.0.0.1:9000)", e)
		case u.Port() != "" && !validPort(u.Port(), false):
			add("source.endpoint %q: port %s is not 1..65535", e, u.Port())
		}
	}
	if r := c.Source.Region; r != "" && !regionRE.MatchString(r) {
		add("source.region %q: want letters, digits, '-' and '_' only (e.g. us-east-1)", r)
	}
	if host, port, err := net.SplitHostPort(c.Listen); err != nil {
		add("listen %q: want HOST:PORT, e.g. 127.0.0.1:8080 (%v)", c.Listen, err)
	} else if !validPort(port, true) {
		add("listen %q: port %q is not 0..65535", c.Listen, port)
	} else if host != "" && host != "localhost" && net.ParseIP(host) == nil && !hostnameRE.MatchString(host) {
		add("listen %q: %q is not an IP address or host name", c.Listen, host)
	}
	for _, p := range append(append([]string{}, c.Source.Include...), c.Source.Exclude...) {
		if _, err := compileGlob(p); err != nil {
			add("glob %q: %v", p, err)
		}
	}
	if c.DataDir == "" {
		add("data-dir must not be empty")
	}
	if c.VerifyInterval < 0 || c.VerifyInterval != 0 && c.VerifyInterval < Duration(time.Second) {
		add("verify-interval = %s: want 0 (never) or at least 1s (a pass reads the whole index: hours suit large ones)", c.VerifyInterval)
	}
	for i, k := range c.ReconcileSplit {
		if k == "" || (i > 0 && k <= c.ReconcileSplit[i-1]) {
			add("reconcile-split: want keys in ascending order, none empty (got %q)", []string(c.ReconcileSplit))
			break
		}
	}
	if c.ReconcileInterval < Duration(time.Second) {
		add("reconcile-interval = %s: want at least 1s", c.ReconcileInterval)
	}
	// Each component validates its own configuration: what it rejects
	// at start is rejected here.
	for _, err := range []error{c.Chunk.Validate(), c.Pipeline().Validate(),
		sns.Config{Verify: c.Webhook.SNSVerify, AllowedHosts: c.Webhook.SNSHosts}.Validate()} {
		for _, e := range splitJoined(err) {
			add("%v", e)
		}
	}
	oneOf := func(key, v string, known []string) {
		if !slices.Contains(known, v) {
			add("%s = %q: want one of %s", key, v, strings.Join(known, ", "))
		}
	}
	oneOf("ledger.type", c.Ledger.Type, LedgerTypes)
	oneOf("index.type", c.Index.Type, IndexTypes)
	oneOf("embedder.type", c.Embedder.Type, EmbedderTypes)
	c.checkIndex(add)
	if l := c.Ledger; l.Type != "postgres" && (l.DSN != "" || l.Schema != "") {
		add("ledger.dsn and ledger.schema: only for ledger.type postgres (ledger.type is %s)", l.Type)
	}
	if s := c.Ledger.Schema; s != "" && !schemaRE.MatchString(s) {
		add("ledger.schema %q: want lower-case letters, digits and _ (at most 41)", s)
	}
	c.Feeds.check(add)
	if len(c.Feeds.Names) == 0 {
		add("feeds is empty: list at least one of %s (the reconciler alone would only catch changes every reconcile-interval)", strings.Join(FeedTypes, ", "))
	}
	for i, f := range c.Feeds.Names {
		oneOf(fmt.Sprintf("feeds[%d]", i), f, FeedTypes)
		if slices.Contains(c.Feeds.Names[:i], f) {
			add("feeds lists %q twice", f)
		}
	}
	if e := c.Embedder; e.Type != "builtin" && e.Type != "" {
		if e.Model == "" {
			add("embedder.model is required for embedder.type %s (e.g. %s)", e.Type, map[string]string{"openai": "text-embedding-3-small", "bedrock": "amazon.titan-embed-text-v2:0"}[e.Type])
		}
		if e.Dimensions < 0 || e.Dim < 0 || e.MaxTokens < 0 || e.RPM < 0 || e.TPM < 0 || e.MaxConcurrency < 0 || e.PricePerMillionTokens < 0 {
			add("embedder: dimensions, dim, max-tokens, rpm, tpm, max-concurrency and price-per-million-tokens must not be negative")
		}
		if u := e.BaseURL; u != "" && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			add("embedder.base-url %q must start with http:// or https://", u)
		}
		if e.Timeout < Duration(time.Second) {
			add("embedder.timeout = %s: want at least 1s", e.Timeout)
		}
		if t := e.Tokenizer; t != "" && (e.Type != "openai" || (t != "cl100k_base" && t != "estimate")) {
			add("embedder.tokenizer %q: want cl100k_base or estimate, for embedder.type openai only", t)
		}
		if e.CircuitOpenFor != 0 && (e.CircuitOpenFor < Duration(100*time.Millisecond) || e.CircuitOpenFor > Duration(5*time.Minute)) {
			add("embedder.circuit-open-for = %s: want 100ms to 5m", e.CircuitOpenFor)
		}
	}
	if c.Budget.TokensPerDay < 0 || c.Budget.USDPerDay < 0 {
		add("budget: tokens-per-day and usd-per-day must not be negative")
	}
	if c.Budget.USDPerDay > 0 && c.Embedder.PricePerMillionTokens <= 0 {
		add("budget.usd-per-day needs embedder.price-per-million-tokens to turn tokens into money")
	}
	if b := c.Embedder.Batch; b.MaxTexts < 1 || b.MaxTexts > 4096 || b.MaxWait < 0 || b.MaxWait > Duration(time.Second) || b.Parallel < 0 {
		add("embedder.batch: want max-texts 1..4096, max-wait 0..1s, parallel >= 0 (0: one per core); got %d, %s, %d", b.MaxTexts, b.MaxWait, b.Parallel)
	}
	if f := c.MassDelete.MaxFraction; f <= 0 || f > 1 {
		add("mass-delete.max-fraction = %v: want a fraction in (0, 1]", f)
	}
	if c.MassDelete.MinObjects < 0 {
		add("mass-delete.min-objects must not be negative")
	}
	if len(errs) > 0 {
		return fmt.Errorf("config: %d problem(s):\n  - %s", len(errs), strings.Join(errs, "\n  - "))
	}
	return nil
}

var (
	regionRE   = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`)
)

func validPort(p string, zeroOK bool) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n <= 65535 && (n > 0 || (zeroOK && n == 0))
}

// Exposure reports why `freshen run` must not start as configured: an
// address beyond loopback without api-token and webhook-token would serve
// search, status and the webhook to the network unauthenticated.
func (c Config) Exposure() error {
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil || c.AllowUnauthenticated || (c.APIToken != "" && c.WebhookToken != "") {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	var missing []string
	if c.APIToken == "" {
		missing = append(missing, "api-token")
	}
	if c.WebhookToken == "" {
		missing = append(missing, "webhook-token")
	}
	where := host
	if where == "" || where == "0.0.0.0" || where == "::" {
		where = "every interface"
	}
	return fmt.Errorf("config: listen %q serves %s without %s: anyone who can reach it could search, read status and "+
		"queue events. Set %s, or listen on 127.0.0.1, or set allow-unauthenticated: true if something in front "+
		"authenticates for freshen", c.Listen, where, strings.Join(missing, " and "), strings.Join(missing, " and "))
}

// wholeNumbers rejects a fraction where a setting is a whole number:
// YAML decoding would silently truncate `workers: 2.5` to 2.
func wholeNumbers(raw []byte, cfg *Config) error {
	var tree map[string]any
	if err := yaml.Unmarshal(raw, &tree); err != nil || tree == nil {
		return nil // the typed decode already reported real syntax errors
	}
	var errs []string
	walk(reflect.ValueOf(cfg).Elem(), "", func(key string, v reflect.Value) {
		if v.Kind() != reflect.Int {
			return
		}
		var node any = tree
		for _, part := range strings.Split(key, ".") {
			m, ok := node.(map[string]any)
			if !ok {
				return
			}
			if node, ok = m[part]; !ok {
				return
			}
		}
		if f, ok := node.(float64); ok {
			errs = append(errs, fmt.Sprintf("%s = %v: want a whole number", key, f))
		}
	})
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// Pipeline is the worker pool's configuration.
func (c Config) Pipeline() pipeline.Config {
	return pipeline.Config{
		Bucket:             c.Source.Bucket,
		Workers:            c.Workers,
		MaxObjectBytes:     int64(c.Limits.MaxObjectBytes),
		MaxChunks:          c.Limits.MaxChunksPerObject,
		MaxTokens:          c.Limits.MaxTokensPerObject,
		MaxAttempts:        c.Limits.MaxAttempts,
		LeaseTTL:           time.Duration(c.Retry.LeaseTTL),
		Backoff:            time.Duration(c.Retry.Backoff),
		MaxBackoff:         time.Duration(c.Retry.MaxBackoff),
		ShutdownTimeout:    time.Duration(c.ShutdownTimeout),
		BudgetTokensPerDay: c.TokensPerDay(),
		Sidecars:           c.Source.Sidecars,
	}
}

// splitJoined returns the errors an errors.Join made, or err alone.
func splitJoined(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// Duration is a time.Duration written as "90s", "5m", "1h30m".
type Duration time.Duration

func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error { return d.set(n.Value) }

func (d *Duration) set(s string) error {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("%q is not a duration (try 30s, 5m, 1h)", s)
	}
	*d = Duration(v)
	return nil
}

// ByteSize is a size written as a number of bytes or with a unit: 512KiB,
// 32MiB, 1GB.
type ByteSize int64

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error { return b.set(n.Value) }

var sizeRE = regexp.MustCompile(`^(\d+(?:\.\d+)?)\s*([KMGT]I?B?|B)?$`)

func (b *ByteSize) set(s string) error {
	m := sizeRE.FindStringSubmatch(strings.TrimSpace(strings.ToUpper(s)))
	if m == nil {
		return fmt.Errorf("%q is not a size (try 1048576, 512KiB, 32MiB)", s)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	unit := strings.TrimSuffix(strings.TrimSuffix(m[2], "B"), "I")
	mult := map[string]float64{"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[unit]
	*b = ByteSize(v * mult)
	return nil
}

// StringList is a list written either as a YAML list or as one string
// (comma-separated in environment variables).
type StringList []string

// UnmarshalYAML implements yaml.Unmarshaler.
func (l *StringList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*l = StringList{n.Value}
		if n.Value == "" {
			*l = nil
		}
		return nil
	case yaml.SequenceNode:
		var s []string
		if err := n.Decode(&s); err != nil {
			return err
		}
		*l = s
		return nil
	}
	return fmt.Errorf("line %d: want a string or a list of strings", n.Line)
}

// applyEnv sets every key that has a FRESHEN_* variable.
func applyEnv(cfg *Config, environ []string) error {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "FRESHEN_") {
			env[k] = v
		}
	}
	var errs []string
	known := map[string]bool{}
	walk(reflect.ValueOf(cfg).Elem(), "", func(key string, v reflect.Value) {
		name := EnvName(key)
		known[name] = true
		s, ok := env[name]
		if !ok {
			return
		}
		if err := setFromString(v, s); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", name, err))
		}
	})
	for name := range env {
		if !known[name] && !ignoredEnv[name] {
			var keys []string
			for k := range known {
				keys = append(keys, k)
			}
			if s := suggest(name, keys); s != "" {
				errs = append(errs, fmt.Sprintf("%s is not a setting (did you mean %s?)", name, s))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("config: environment:\n  - %s", strings.Join(errs, "\n  - "))
	}
	return nil
}

// ignoredEnv are FRESHEN_ variables that are not settings.
var ignoredEnv = map[string]bool{"FRESHEN_CACHE": true, "FRESHEN_CONFIG": true}

// EnvName is the environment variable of a dotted key:
// "chunk.max-tokens" is FRESHEN_CHUNK_MAX_TOKENS.
func EnvName(key string) string {
	return "FRESHEN_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(key))
}

// walk visits every leaf setting with its dotted key.
func walk(v reflect.Value, prefix string, fn func(string, reflect.Value)) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		key := tag
		if prefix != "" {
			key = prefix + "." + tag
		}
		fv := v.Field(i)
		if fl, ok := fv.Addr().Interface().(*FeedsConfig); ok {
			// "feeds" is the list of names (FRESHEN_FEEDS=webhook,sqs)
			// as well as a section per feed.
			fn(key, reflect.ValueOf(&fl.Names).Elem())
		}
		if fv.Kind() == reflect.Struct {
			walk(fv, key, fn)
			continue
		}
		fn(key, fv)
	}
}

// Keys lists every setting's dotted key, for docs and `config check`.
func Keys() []string { return knownKeys() }

func knownKeys() []string {
	var keys []string
	c := Default()
	walk(reflect.ValueOf(&c).Elem(), "", func(k string, _ reflect.Value) { keys = append(keys, k) })
	return keys
}

func setFromString(v reflect.Value, s string) error {
	switch p := v.Addr().Interface().(type) {
	case *Duration:
		return p.set(s)
	case *ByteSize:
		return p.set(s)
	case *StringList:
		*p = nil
		for _, part := range strings.Split(s, ",") {
			if part = strings.TrimSpace(part); part != "" {
				*p = append(*p, part)
			}
		}
		return nil
	case *string:
		*p = s
		return nil
	case *Secret:
		*p = Secret(s)
		return nil
	case *DSN:
		*p = DSN(s)
		return nil
	case *bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not true or false", s)
		}
		*p = b
		return nil
	case *int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", s)
		}
		*p = n
		return nil
	case *float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", s)
		}
		*p = f
		return nil
	}
	return fmt.Errorf("unsupported setting type %s", v.Type())
}

// suggest returns the candidate closest to s if it is close enough.
func suggest(s string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		last := c[strings.LastIndex(c, ".")+1:]
		for _, form := range []string{c, last} {
			if d := levenshtein(strings.ToLower(s), strings.ToLower(form)); d < bestD {
				best, bestD = form, d
			}
		}
	}
	if bestD <= 3 && bestD < len(s)/2+1 {
		return best
	}
	return ""
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// MarshalYAML writes durations as "5m0s".
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalYAML writes sizes in bytes.
func (b ByteSize) MarshalYAML() (any, error) { return int64(b), nil }

// Secret is a string that never prints: logs, `config check` and errors
// show "***".
type Secret string

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "***"
}

// MarshalYAML hides the value.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// DSN is a database connection string whose password never prints.
type DSN string

var dsnPassword = regexp.MustCompile(`(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

func (d DSN) String() string {
	s := string(d)
	if u, err := url.Parse(s); err == nil && u.Scheme != "" && u.Host != "" {
		if u.User != nil {
			if _, ok := u.User.Password(); ok {
				u.User = url.UserPassword(u.User.Username(), "xxx")
			}
		}
		if q := u.Query(); q.Has("password") {
			q.Set("password", "xxx")
			u.RawQuery = q.Encode()
		}
		return strings.NewReplacer(":xxx@", ":***@", "password=xxx", "password=***").Replace(u.String())
	}
	return dsnPassword.ReplaceAllString(s, "${1}***")
}

// MarshalYAML hides the password.
func (d DSN) MarshalYAML() (any, error) { return d.String(), nil }

var (
	schemaRE     = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,40}$`)
	tableRE      = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]{0,50}\.)?[A-Za-z_][A-Za-z0-9_]{0,50}$`)
	collectionRE = regexp.MustCompile(`^[A-Z][A-Za-z0-9_]{0,100}$`)
)

// checkIndex checks the keys of the chosen index and that no other
// index's keys are set (a typo'd type would silently ignore them).
func (c Config) checkIndex(add func(string, ...any)) {
	ix := c.Index
	forType := map[string][]string{"pgvector": nil, "weaviate": nil}
	if ix.DSN != "" {
		forType["pgvector"] = append(forType["pgvector"], "index.dsn")
	}
	if ix.Table != "" {
		forType["pgvector"] = append(forType["pgvector"], "index.table")
	}
	if ix.URL != "" {
		forType["weaviate"] = append(forType["weaviate"], "index.url")
	}
	if ix.Collection != "" {
		forType["weaviate"] = append(forType["weaviate"], "index.collection")
	}
	for typ, keys := range forType {
		if typ != ix.Type && len(keys) > 0 {
			add("%s: only for index.type %s (index.type is %s)", strings.Join(keys, ", "), typ, ix.Type)
		}
	}
	switch ix.Type {
	case "pgvector":
		if ix.Table != "" && !tableRE.MatchString(ix.Table) {
			add("index.table %q: want letters, digits and _ (at most 50), optionally schema.table", ix.Table)
		}
	case "weaviate":
		if u, err := url.Parse(ix.URL); ix.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("index.url %q: want Weaviate's HTTP address, e.g. http://127.0.0.1:8080", ix.URL)
		}
		if ix.Collection != "" && !collectionRE.MatchString(ix.Collection) {
			add("index.collection %q: Weaviate collection names start with a capital letter, then letters, digits and _", ix.Collection)
		}
	}
}

// KeyRange is a range of a bucket's keys: After < key <= Through ("" is
// unbounded).
type KeyRange struct{ After, Through string }

func (r KeyRange) String() string {
	if r.After == "" && r.Through == "" {
		return "all keys"
	}
	return fmt.Sprintf("(%q, %q]", r.After, r.Through)
}

// Job names the reconcile of this range of bucket, for leadership.
func (r KeyRange) Job(bucket string) string {
	if r.After == "" && r.Through == "" {
		return "reconcile " + bucket
	}
	return fmt.Sprintf("reconcile %s %s", bucket, r)
}

// ReconcileRanges are the ranges reconcile-split makes (one range, the
// whole bucket, without it).
func (c Config) ReconcileRanges() []KeyRange {
	out := []KeyRange{}
	after := ""
	for _, k := range c.ReconcileSplit {
		out = append(out, KeyRange{After: after, Through: k})
		after = k
	}
	return append(out, KeyRange{After: after})
}
