package openai_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/embed/openai"
	"github.com/freshen-io/freshen/embed/openai/openaitest"
)

func TestDefaults(t *testing.T) {
	for _, c := range []struct {
		cfg  openai.Config
		want freshen.ModelInfo
	}{
		{openai.Config{APIKey: "k", Model: "text-embedding-3-small"}, freshen.ModelInfo{Name: "openai/text-embedding-3-small", Dim: 1536, MaxTokens: 8191}},
		{openai.Config{APIKey: "k", Model: "text-embedding-3-large"}, freshen.ModelInfo{Name: "openai/text-embedding-3-large", Dim: 3072, MaxTokens: 8191}},
		{openai.Config{APIKey: "k", Model: "text-embedding-ada-002"}, freshen.ModelInfo{Name: "openai/text-embedding-ada-002", Dim: 1536, MaxTokens: 8191}},
		{openai.Config{APIKey: "k", Model: "text-embedding-3-large", Dimensions: 1024}, freshen.ModelInfo{Name: "openai/text-embedding-3-large@1024", Dim: 1024, MaxTokens: 8191}},
		{openai.Config{BaseURL: "http://localhost:11434/v1", Model: "nomic-embed-text", Dim: 768, MaxTokens: 2048}, freshen.ModelInfo{Name: "openai/nomic-embed-text", Dim: 768, MaxTokens: 2048}},
		{openai.Config{BaseURL: "http://tei:8080/v1", Model: "bge", Dim: 384, MaxTokens: 512, Name: "tei/bge-small-en-v1.5"}, freshen.ModelInfo{Name: "tei/bge-small-en-v1.5", Dim: 384, MaxTokens: 512}},
	} {
		e, err := openai.New(c.cfg)
		if err != nil {
			t.Errorf("New(%+v): %v", c.cfg, err)
			continue
		}
		if got := e.Model(); got != c.want {
			t.Errorf("New(%+v).Model() = %+v, want %+v", c.cfg, got, c.want)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := openai.Config{BaseURL: "http://127.0.0.1:8080/v1", Model: "m", Dim: 8, MaxTokens: 512}
	with := func(f func(*openai.Config)) openai.Config { c := ok; f(&c); return c }
	if err := ok.Validate(); err != nil {
		t.Fatalf("Validate(%+v) = %v", ok, err)
	}
	for _, c := range []struct {
		cfg  openai.Config
		want []string
	}{
		{openai.Config{}, []string{"Model is required", "APIKey is required for https://api.openai.com/v1"}},
		{openai.Config{APIKey: "k", Model: "my-model"}, []string{`Dim is required for model "my-model"`, `MaxTokens is required for model "my-model"`}},
		{openai.Config{APIKey: "k", Model: "text-embedding-ada-002", Dimensions: 256}, []string{"does not accept dimensions"}},
		{openai.Config{APIKey: "k", Model: "text-embedding-3-small", Dimensions: 2000}, []string{"Dimensions 2000 exceeds text-embedding-3-small's 1536"}},
		{openai.Config{APIKey: "k", Model: "text-embedding-3-small", Dim: 768}, []string{"Dim 768 disagrees with text-embedding-3-small's 1536"}},
		{openai.Config{APIKey: "k", Model: "text-embedding-3-small", Dimensions: 256, Dim: 1536}, []string{"Dim 1536 disagrees with Dimensions 256"}},
		{with(func(c *openai.Config) { c.BaseURL = "ftp://host/v1" }), []string{`BaseURL "ftp://host/v1": want http(s)`}},
		{with(func(c *openai.Config) { c.BaseURL = "http://u:p@host/v1" }), []string{"credentials in APIKey"}},
		{with(func(c *openai.Config) { c.BaseURL = "http://host/v1?api-version=1" }), []string{"set APIVersion"}},
		{with(func(c *openai.Config) { c.MaxRequestTokens = 100 }), []string{"MaxRequestTokens 100 is below MaxTokens 512"}},
		{with(func(c *openai.Config) { c.EncodingFormat = "hex" }), []string{`EncodingFormat "hex"`}},
		{with(func(c *openai.Config) { c.Parallel = 100 }), []string{"Parallel 100"}},
		{with(func(c *openai.Config) { c.Timeout = -time.Second }), []string{"Timeout -1s is negative"}},
		{with(func(c *openai.Config) { c.MaxInputs = -1 }), []string{"MaxInputs -1 is negative"}},
		{with(func(c *openai.Config) { c.APIKeyHeader = "api key" }), []string{`APIKeyHeader "api key"`}},
	} {
		err := c.cfg.Validate()
		if err == nil {
			t.Errorf("Validate(%+v) = nil, want %q", c.cfg, c.want)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Validate(%+v) = %q, want it to say %q", c.cfg, err, w)
			}
		}
		if !strings.HasPrefix(err.Error(), "openai: ") {
			t.Errorf("Validate error %q lacks the openai: prefix", err)
		}
		if _, err := openai.New(c.cfg); err == nil {
			t.Errorf("New(%+v) accepted an invalid config", c.cfg)
		}
	}
}

func TestKeyNeverPrinted(t *testing.T) {
	const key = "sk-proj-SECRETSECRET42"
	cfg := openai.Config{APIKey: key, Model: "m", Dim: 64, MaxTokens: 100}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "cfg", cfg, "key", cfg.APIKey)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "cfg", cfg, "ptr", &cfg)
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{
		"fmt":  fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg),
		"ptr":  fmt.Sprintf("%v %+v", &cfg, &cfg),
		"key":  fmt.Sprintf("%v %s %q %x %X %d %#v", cfg.APIKey, cfg.APIKey, cfg.APIKey, cfg.APIKey, cfg.APIKey, cfg.APIKey, cfg.APIKey),
		"slog": logged.String(),
		"json": string(js),
	} {
		if strings.Contains(s, key) || strings.Contains(s, "SECRET") {
			t.Errorf("%s shows the key: %s", name, s)
		}
		if !strings.Contains(s, "***") {
			t.Errorf("%s does not show the key as ***: %s", name, s)
		}
	}

	// A key with a line break is rejected without being quoted.
	bad := cfg
	bad.APIKey = key + "\n"
	if err := bad.Validate(); err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("Validate(key with newline) = %v", err)
	}

	// Servers may echo the key in error messages: it is cut out.
	e, srv := setup(t, openai.Config{APIKey: key}, openaitest.Options{APIKey: key})
	srv.Inject(openaitest.Fault{Status: 401, Code: "invalid_api_key", Message: "Incorrect API key provided: " + key + "."})
	_, err = e.Embed(context.Background(), []string{"text"})
	if err == nil || strings.Contains(err.Error(), "SECRET") || !strings.Contains(err.Error(), "Incorrect API key provided: ***") {
		t.Errorf("error %q: want the server's message with the key cut out", err)
	}
	if !freshen.IsPermanent(err) {
		t.Errorf("401: %v is not permanent", err)
	}
	// A wrong key is refused by the server, permanently.
	wrong, _ := setup(t, openai.Config{APIKey: "sk-wrong"}, openaitest.Options{APIKey: key})
	if _, err := wrong.Embed(context.Background(), []string{"text"}); !freshen.IsPermanent(err) || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong key: %v, want a permanent 401", err)
	}
}
