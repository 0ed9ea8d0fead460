package openai

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults. The request caps are OpenAI's documented limits for
// /v1/embeddings (2048 inputs, 300,000 tokens summed over the inputs of
// one request); compatible servers usually allow less, so set them.
const (
	DefaultBaseURL          = "https://api.openai.com/v1"
	DefaultMaxInputs        = 2048
	DefaultMaxRequestTokens = 300_000
	DefaultTimeout          = 60 * time.Second
	// DefaultMaxTokens is the context of OpenAI's embedding models (its
	// documentation says 8192; 8191 is what the models accept).
	DefaultMaxTokens = 8191
)

// knownModels are OpenAI's embedding models: their native vector length
// and whether they accept a smaller "dimensions".
var knownModels = map[string]struct {
	dim     int
	shorten bool
}{
	"text-embedding-3-small": {1536, true},
	"text-embedding-3-large": {3072, true},
	"text-embedding-ada-002": {1536, false},
}

// Config configures an Embedder. The zero value of every optional field
// means its default.
type Config struct {
	// BaseURL is the API root that "/embeddings" is appended to (default
	// DefaultBaseURL). For Ollama "http://localhost:11434/v1", vLLM and
	// TEI "http://host:port/v1", Azure OpenAI
	// "https://RESOURCE.openai.azure.com/openai/v1" (or a deployment URL
	// ".../openai/deployments/NAME" together with APIVersion).
	BaseURL string
	// APIKey is sent as "Authorization: Bearer KEY" (or in APIKeyHeader).
	// The caller reads it from OPENAI_API_KEY or wherever it is
	// configured; this package never reads the environment. Required for
	// api.openai.com; local servers may need none.
	APIKey Secret
	// APIKeyHeader, when set, carries the key in this header instead of
	// Authorization: "api-key" for Azure OpenAI keys.
	APIKeyHeader string
	// APIVersion, when set, is sent as the api-version query parameter
	// (Azure OpenAI deployment URLs need it).
	APIVersion string
	// Headers are extra request headers (OpenAI-Project, a gateway's
	// routing header). They are not secret: put keys in APIKey.
	Headers map[string]string

	// Model is the model (or Azure deployment) name. Required.
	Model string
	// Dimensions, when > 0, asks a text-embedding-3 model for shorter
	// vectors; it is sent only then, and becomes part of the model's name
	// in caches.
	Dimensions int
	// Dim is the length of the vectors the server returns: required
	// unless Model is a known OpenAI model or Dimensions is set.
	Dim int
	// MaxTokens is the model's context in tokens (by CountTokens): longer
	// inputs are windowed or, with Truncate, cut. Default DefaultMaxTokens
	// for known OpenAI models, required otherwise.
	MaxTokens int
	// Truncate cuts inputs longer than MaxTokens to their first window
	// instead of embedding all windows and averaging them.
	Truncate bool
	// Name overrides the model's identity in caches (default
	// "openai/"+Model, plus "@"+Dimensions when set). Set it when servers
	// serve different weights under one model name.
	Name string

	// MaxInputs caps the inputs of one request (default 2048).
	MaxInputs int
	// MaxRequestTokens caps the estimated tokens of one request (default
	// 300,000); it must be at least MaxTokens.
	MaxRequestTokens int
	// Parallel is how many requests one Embed call may have in flight
	// (default 1: sequential). Rate limits belong to a decorator.
	Parallel int
	// Timeout bounds each request (default 60s). A request that takes
	// longer fails with a retryable error.
	Timeout time.Duration
	// EncodingFormat is "base64" (the default, as in OpenAI's Python
	// SDK: a quarter of the bytes of decimal floats, exact float32s) or
	// "float". Servers that ignore it and answer floats work either way.
	EncodingFormat string

	// Tokenizer names how tokens are counted for batching, windowing,
	// rate limits and estimates: TokenizerCL100k (OpenAI's tokenizer for
	// its embedding models, the default for them) or TokenizerEstimate
	// (bytes/3, which errs high; the default for any other model name, so
	// set cl100k_base for an Azure deployment of an OpenAI model).
	Tokenizer string
	// CountTokens, if set, is the model's tokenizer and overrides
	// Tokenizer.
	CountTokens func(text string) int `json:"-"`
	// HTTPClient sends the requests (default: a client of its own with
	// http.DefaultTransport's settings). Its Timeout should be zero:
	// Timeout above bounds each request.
	HTTPClient *http.Client `json:"-"`
}

// LogValue logs the settings that matter, the key as "***".
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("base_url", c.BaseURL),
		slog.String("api_key", c.APIKey.String()),
		slog.String("model", c.Model),
		slog.Int("dimensions", c.Dimensions),
		slog.Int("dim", c.Dim),
		slog.Int("max_tokens", c.MaxTokens),
		slog.Bool("truncate", c.Truncate),
		slog.Int("max_inputs", c.MaxInputs),
		slog.Int("max_request_tokens", c.MaxRequestTokens),
		slog.Int("parallel", c.Parallel),
		slog.Duration("timeout", c.Timeout),
	)
}

// Secret is a string that never prints: fmt, slog, JSON and YAML show
// "***" (and "" for an empty one, so that a missing key is visible).
type Secret string

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "***"
}

// GoString hides the value from %#v.
func (s Secret) GoString() string { return fmt.Sprintf("%q", s.String()) }

// Format hides the value from every verb, %x and %d included.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, s.GoString())
		return
	}
	fmt.Fprint(f, s.String())
}

// LogValue hides the value from slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText hides the value from encoding/json and YAML encoders.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// withDefaults returns c with every unset optional field at its default.
// Dim and MaxTokens stay zero for an unknown model.
func (c Config) withDefaults() Config {
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	if c.MaxInputs == 0 {
		c.MaxInputs = DefaultMaxInputs
	}
	if c.MaxRequestTokens == 0 {
		c.MaxRequestTokens = DefaultMaxRequestTokens
	}
	if c.Parallel == 0 {
		c.Parallel = 1
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.EncodingFormat == "" {
		c.EncodingFormat = "base64"
	}
	known, isKnown := knownModels[c.Model]
	if c.Dim == 0 {
		switch {
		case c.Dimensions > 0:
			c.Dim = c.Dimensions
		case isKnown:
			c.Dim = known.dim
		}
	}
	if c.MaxTokens == 0 && isKnown {
		c.MaxTokens = DefaultMaxTokens
	}
	if c.Name == "" {
		c.Name = "openai/" + c.Model
		if c.Dimensions > 0 {
			c.Name += fmt.Sprintf("@%d", c.Dimensions)
		}
	}
	return c
}

// Validate reports every mistake in c at once, without any I/O. Zero
// optional fields are fine: New fills in their defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("openai: config: "+format, args...))
	}
	u, err := url.Parse(c.BaseURL)
	switch {
	case err != nil:
		add("BaseURL %q is not a URL", c.BaseURL)
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		add("BaseURL %q: want http(s)://host[/path]", c.BaseURL)
	case u.User != nil:
		add("BaseURL: put credentials in APIKey, not in the URL")
	case u.RawQuery != "":
		add("BaseURL %q: no query allowed (set APIVersion for api-version)", c.BaseURL)
	}
	if c.APIKey == "" && err == nil && strings.EqualFold(u.Hostname(), "api.openai.com") {
		add("APIKey is required for %s (read it from OPENAI_API_KEY)", c.BaseURL)
	}
	if strings.ContainsAny(string(c.APIKey), "\r\n\t ") {
		add("APIKey contains white space (a trailing newline from a file?)")
	}
	if c.APIKeyHeader != "" && !validHeaderName(c.APIKeyHeader) {
		add("APIKeyHeader %q is not a header name", c.APIKeyHeader)
	}
	for k, v := range c.Headers {
		if !validHeaderName(k) || strings.ContainsAny(v, "\r\n") {
			add("Headers: %q is not a valid header", k)
		}
	}
	known, isKnown := knownModels[c.Model]
	if c.Model == "" {
		add("Model is required (e.g. text-embedding-3-small, or the model name the server knows)")
	}
	switch {
	case c.Dimensions < 0:
		add("Dimensions %d is negative", c.Dimensions)
	case c.Dimensions > 0 && isKnown && !known.shorten:
		add("Dimensions: %s does not accept dimensions (only text-embedding-3 models do)", c.Model)
	case c.Dimensions > 0 && isKnown && c.Dimensions > known.dim:
		add("Dimensions %d exceeds %s's %d", c.Dimensions, c.Model, known.dim)
	}
	switch {
	case c.Dim < 0:
		add("Dim %d is negative", c.Dim)
	case c.Dim == 0 && c.Model != "":
		add("Dim is required for model %q (not a known OpenAI model): set it to the length of the server's vectors", c.Model)
	case c.Dimensions > 0 && c.Dim != c.Dimensions:
		add("Dim %d disagrees with Dimensions %d (leave Dim unset)", c.Dim, c.Dimensions)
	case c.Dimensions == 0 && isKnown && c.Dim != known.dim:
		add("Dim %d disagrees with %s's %d", c.Dim, c.Model, known.dim)
	}
	switch {
	case c.MaxTokens < 0:
		add("MaxTokens %d is negative", c.MaxTokens)
	case c.MaxTokens == 0 && c.Model != "":
		add("MaxTokens is required for model %q (not a known OpenAI model): set it to the model's context in tokens", c.Model)
	}
	if c.MaxInputs < 0 {
		add("MaxInputs %d is negative", c.MaxInputs)
	}
	if c.MaxRequestTokens < 0 {
		add("MaxRequestTokens %d is negative", c.MaxRequestTokens)
	} else if c.MaxTokens > c.MaxRequestTokens {
		add("MaxRequestTokens %d is below MaxTokens %d: a full window could never be sent", c.MaxRequestTokens, c.MaxTokens)
	}
	if c.Parallel < 0 || c.Parallel > 64 {
		add("Parallel %d: want 1..64", c.Parallel)
	}
	if c.Timeout < 0 {
		add("Timeout %s is negative", c.Timeout)
	}
	if c.EncodingFormat != "float" && c.EncodingFormat != "base64" {
		add("EncodingFormat %q: want float or base64", c.EncodingFormat)
	}
	if c.Tokenizer != "" && c.Tokenizer != TokenizerCL100k && c.Tokenizer != TokenizerEstimate {
		add("Tokenizer %q: want %s or %s", c.Tokenizer, TokenizerCL100k, TokenizerEstimate)
	}
	if c.HTTPClient != nil && c.HTTPClient.Timeout != 0 && c.HTTPClient.Timeout < c.Timeout {
		add("HTTPClient.Timeout %s is below Timeout %s: leave it zero", c.HTTPClient.Timeout, c.Timeout)
	}
	return errors.Join(errs...)
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}
