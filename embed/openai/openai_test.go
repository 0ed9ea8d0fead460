package openai_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/embed/builtin"
	"github.com/freshen-io/freshen/embed/embedtest"
	"github.com/freshen-io/freshen/embed/openai"
	"github.com/freshen-io/freshen/embed/openai/openaitest"
)

const testKey = "sk-test-0123456789abcdef"

// Servers close, hanging handlers end and connections go with them: no
// test leaves a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// setup starts a fake server with opts and an Embedder for it with cfg;
// unset fields of cfg get what the server needs (its URL, key, a model,
// the Hash dimension, a context).
func setup(t *testing.T, cfg openai.Config, opts openaitest.Options) (*openai.Embedder, *openaitest.Server) {
	t.Helper()
	if opts.APIKey == "" {
		opts.APIKey = testKey
	}
	opts.Record = true
	srv := openaitest.New(t, opts)
	if cfg.BaseURL == "" {
		cfg.BaseURL = srv.URL()
	}
	if cfg.APIKey == "" {
		cfg.APIKey = testKey
	}
	if cfg.Model == "" {
		cfg.Model = "test-embed"
	}
	if cfg.Dim == 0 && cfg.Dimensions == 0 && !strings.HasPrefix(cfg.Model, "text-embedding-") {
		cfg.Dim = 64
		if opts.Embedder != nil {
			cfg.Dim = opts.Embedder.Model().Dim
		}
	}
	if cfg.MaxTokens == 0 {
		cfg.MaxTokens = 8191
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = srv.Client()
	}
	e, err := openai.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e, srv
}

func embed(t *testing.T, e freshen.Embedder, texts ...string) [][]float32 {
	t.Helper()
	vecs, err := e.Embed(context.Background(), texts)
	if err != nil {
		t.Fatalf("Embed(%d texts): %v", len(texts), err)
	}
	if len(vecs) != len(texts) {
		t.Fatalf("Embed(%d texts) = %d vectors", len(texts), len(vecs))
	}
	return vecs
}

func TestConformance(t *testing.T) {
	m, err := builtin.Default()
	if err != nil {
		t.Fatalf("load built-in model: %v", err)
	}
	for name, c := range map[string]struct {
		cfg  openai.Config
		opts openaitest.Options
	}{
		"Hash":       {},
		"HashFloat":  {cfg: openai.Config{EncodingFormat: "float"}},
		"Dimensions": {cfg: openai.Config{Dimensions: 32}},
		// Servers that do not normalize.
		"Unnormalized": {opts: openaitest.Options{Unnormalized: true}},
		// One input a request, three requests in flight.
		"Parallel": {cfg: openai.Config{MaxInputs: 1, Parallel: 3}},
		// Real vectors: the built-in model behind the wire format.
		"Builtin": {opts: openaitest.Options{Embedder: m}},
	} {
		t.Run(name, func(t *testing.T) {
			embedtest.Run(t, func(t *testing.T) freshen.Embedder {
				e, _ := setup(t, c.cfg, c.opts)
				return e
			})
		})
	}
}

func TestWireFormat(t *testing.T) {
	e, srv := setup(t, openai.Config{Model: "text-embedding-3-small"}, openaitest.Options{Embedder: openaitest.Hash{Dim: 1536}})
	if got, want := e.Model(), (freshen.ModelInfo{Name: "openai/text-embedding-3-small", Dim: 1536, MaxTokens: 8191}); got != want {
		t.Errorf("Model() = %+v, want %+v", got, want)
	}
	embed(t, e, "first text", "second text")
	embed(t, e, "alone")
	reqs := srv.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	for i, want := range [][]string{{"first text", "second text"}, {"alone"}} {
		r := reqs[i]
		if r.Path != "/v1/embeddings" {
			t.Errorf("request %d: path %q", i, r.Path)
		}
		if got := r.Header.Get("Authorization"); got != "Bearer "+testKey {
			t.Errorf("request %d: Authorization %q", i, got)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("request %d: Content-Type %q", i, ct)
		}
		var body map[string]any
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatalf("request %d: %v: %s", i, err, r.Body)
		}
		keys := make([]string, 0, len(body))
		for k := range body {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		// No dimensions when unset; input an array even for one text.
		if want := []string{"encoding_format", "input", "model"}; !slices.Equal(keys, want) {
			t.Errorf("request %d: fields %v, want %v: %s", i, keys, want, r.Body)
		}
		if body["model"] != "text-embedding-3-small" || body["encoding_format"] != "base64" {
			t.Errorf("request %d: %s", i, r.Body)
		}
		in, ok := body["input"].([]any)
		if !ok || len(in) != len(want) {
			t.Fatalf("request %d: input %#v, want the array %q", i, body["input"], want)
		}
		for j := range want {
			if in[j] != want[j] {
				t.Errorf("request %d: input[%d] = %v, want %q", i, j, in[j], want[j])
			}
		}
	}

	t.Run("Dimensions", func(t *testing.T) {
		e, srv := setup(t, openai.Config{Model: "text-embedding-3-large", Dimensions: 256, EncodingFormat: "float"}, openaitest.Options{Embedder: openaitest.Hash{Dim: 3072}})
		if got, want := e.Model(), (freshen.ModelInfo{Name: "openai/text-embedding-3-large@256", Dim: 256, MaxTokens: 8191}); got != want {
			t.Errorf("Model() = %+v, want %+v", got, want)
		}
		v := embed(t, e, "short vectors")
		if len(v[0]) != 256 {
			t.Errorf("vector of %d values, want 256", len(v[0]))
		}
		var body map[string]any
		if err := json.Unmarshal(srv.Requests()[0].Body, &body); err != nil {
			t.Fatal(err)
		}
		if body["dimensions"] != 256.0 || body["encoding_format"] != "float" {
			t.Errorf("request %s: want dimensions 256 and encoding_format float", srv.Requests()[0].Body)
		}
	})

	t.Run("Azure", func(t *testing.T) {
		srv := openaitest.New(t, openaitest.Options{APIKey: testKey, Record: true})
		e, err := openai.New(openai.Config{
			BaseURL:      strings.TrimSuffix(srv.URL(), "/v1") + "/openai/deployments/my-embed",
			APIKey:       testKey,
			APIKeyHeader: "api-key",
			APIVersion:   "2024-10-21",
			Headers:      map[string]string{"X-Gateway-Route": "blue"},
			Model:        "my-embed",
			Dim:          64,
			MaxTokens:    8191,
			HTTPClient:   srv.Client(),
		})
		if err != nil {
			t.Fatal(err)
		}
		embed(t, e, "azure")
		r := srv.Requests()[0]
		if r.Path != "/openai/deployments/my-embed/embeddings" || r.RawQuery != "api-version=2024-10-21" {
			t.Errorf("request to %s?%s", r.Path, r.RawQuery)
		}
		if r.Header.Get("Api-Key") != testKey || r.Header.Get("Authorization") != "" {
			t.Errorf("api-key %q, Authorization %q: want the key in api-key only", r.Header.Get("Api-Key"), r.Header.Get("Authorization"))
		}
		if r.Header.Get("X-Gateway-Route") != "blue" {
			t.Errorf("extra header missing: %v", r.Header)
		}
	})

	t.Run("NoKey", func(t *testing.T) {
		// Local servers (Ollama, vLLM) need no key: none is sent.
		srv := openaitest.New(t, openaitest.Options{Record: true})
		e, err := openai.New(openai.Config{BaseURL: srv.URL(), Model: "nomic-embed-text", Dim: 64, MaxTokens: 2048, HTTPClient: srv.Client()})
		if err != nil {
			t.Fatal(err)
		}
		embed(t, e, "no key")
		if h := srv.Requests()[0].Header.Get("Authorization"); h != "" {
			t.Errorf("Authorization %q sent without a key", h)
		}
	})
}

func TestEncodings(t *testing.T) {
	srv := openaitest.New(t, openaitest.Options{Record: true})
	texts := []string{"one", "two three", "Überprüfung 42 €"}
	var got [2][][]float32
	for i, format := range []string{"base64", "float"} {
		e, err := openai.New(openai.Config{BaseURL: srv.URL(), Model: "m", Dim: 64, MaxTokens: 100, EncodingFormat: format, HTTPClient: srv.Client()})
		if err != nil {
			t.Fatal(err)
		}
		got[i] = embed(t, e, texts...)
		if f := srv.Requests()[i].EncodingFormat; f != format {
			t.Errorf("encoding_format %q sent, want %q", f, format)
		}
	}
	for i, text := range texts {
		want := openaitest.HashVector(text, 64)
		for j, format := range []string{"base64", "float"} {
			if d := embedtest.MaxDiff(got[j][i], want); d > 1e-6 {
				t.Errorf("%s: text %d differs from the server's vector by %g", format, i, d)
			}
		}
	}
}

func TestBatching(t *testing.T) {
	texts := make([]string, 10)
	for i := range texts {
		texts[i] = strings.Repeat(string(rune('a'+i)), 30) // 10 tokens by the estimate
	}
	for _, c := range []struct {
		name  string
		cfg   openai.Config
		sizes []int
	}{
		{"MaxInputs", openai.Config{MaxInputs: 3}, []int{3, 3, 3, 1}},
		{"MaxRequestTokens", openai.Config{MaxTokens: 25, MaxRequestTokens: 25}, []int{2, 2, 2, 2, 2}},
		{"Both", openai.Config{MaxInputs: 4, MaxTokens: 10, MaxRequestTokens: 35}, []int{3, 3, 3, 1}},
		{"Parallel", openai.Config{MaxInputs: 2, Parallel: 3}, []int{2, 2, 2, 2, 2}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, srv := setup(t, c.cfg, openaitest.Options{})
			vecs := embed(t, e, texts...)
			var sizes []int
			var sent []string
			for _, r := range srv.Requests() {
				sizes = append(sizes, len(r.Input))
				sent = append(sent, r.Input...)
			}
			if c.cfg.Parallel <= 1 {
				if !slices.Equal(sizes, c.sizes) || !slices.Equal(sent, texts) {
					t.Errorf("requests of %v inputs, want %v (inputs in order: %v)", sizes, c.sizes, slices.Equal(sent, texts))
				}
			} else {
				slices.Sort(sent)
				if len(sizes) != len(c.sizes) || !slices.Equal(sent, texts) {
					t.Errorf("requests of %v inputs, want %v", sizes, c.sizes)
				}
			}
			for i, text := range texts {
				if d := embedtest.MaxDiff(vecs[i], openaitest.HashVector(text, 64)); d > 1e-6 {
					t.Errorf("text %d: not its own vector (differs by %g)", i, d)
				}
			}
		})
	}

	t.Run("DuplicatesSentOnce", func(t *testing.T) {
		e, srv := setup(t, openai.Config{}, openaitest.Options{})
		vecs := embed(t, e, "x", "y", "x")
		if in := srv.Requests()[0].Input; !slices.Equal(in, []string{"x", "y"}) {
			t.Errorf("sent %q, want each text once", in)
		}
		if !slices.Equal(vecs[0], vecs[2]) {
			t.Error("the same text got different vectors")
		}
		vecs[0][0] = 42
		if vecs[2][0] == 42 {
			t.Error("two results share memory")
		}
	})
}

// sentences is a long text of distinct sentences.
func sentences(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("Sentence number ")
		b.WriteString(strings.Repeat("x", i%7+1))
		b.WriteString(" talks about topic ")
		b.WriteString(string(rune('A' + i%26)))
		b.WriteString(". ")
	}
	return b.String()
}

func TestLongInputs(t *testing.T) {
	const limit = 30 // tokens by the estimate: about 90 bytes
	long := sentences(20)
	base := openai.Config{MaxTokens: limit, MaxRequestTokens: 1000}
	e, srv := setup(t, base, openaitest.Options{})
	if n := e.CountTokens(long); n <= limit {
		t.Fatalf("test text has %d tokens, want more than %d", n, limit)
	}

	t.Run("WeightedMeanOfWindows", func(t *testing.T) {
		got := embed(t, e, long)[0]
		reqs := srv.Requests()
		wins := reqs[len(reqs)-1].Input
		if len(wins) < 2 {
			t.Fatalf("sent %d windows", len(wins))
		}
		checkWindows(t, long, wins, limit, e.CountTokens)
		// Each window embedded alone, weighted by its tokens.
		want := make([]float64, 64)
		for _, w := range wins {
			v := embed(t, e, w)[0]
			for d, x := range v {
				want[d] += float64(e.CountTokens(w)) * float64(x)
			}
		}
		if d := embedtest.MaxDiff(got, unit(want)); d > 1e-6 {
			t.Errorf("long text's vector differs from the weighted mean of its windows by %g", d)
		}
		if n := embedtest.Norm(got); math.Abs(n-1) > 1e-5 {
			t.Errorf("norm %v", n)
		}
	})

	t.Run("Truncate", func(t *testing.T) {
		cfg := base
		cfg.Truncate = true
		te, tsrv := setup(t, cfg, openaitest.Options{})
		got := embed(t, te, long)[0]
		reqs := tsrv.Requests()
		if len(reqs) != 1 || len(reqs[0].Input) != 1 {
			t.Fatalf("Truncate: %d requests, want one of one input", len(reqs))
		}
		first := reqs[0].Input[0]
		if !strings.HasPrefix(long, first) || te.CountTokens(first) > limit || te.CountTokens(first) < limit/2 {
			t.Errorf("Truncate sent %q (%d tokens): want a prefix of the text cut near %d tokens", first, te.CountTokens(first), limit)
		}
		if d := embedtest.MaxDiff(got, openaitest.HashVector(first, 64)); d > 1e-6 {
			t.Errorf("Truncate: vector is not the first window's (differs by %g)", d)
		}
	})

	t.Run("QueryIsCut", func(t *testing.T) {
		before := len(srv.Requests())
		q, err := e.EmbedQuery(context.Background(), long)
		if err != nil {
			t.Fatal(err)
		}
		reqs := srv.Requests()[before:]
		if len(reqs) != 1 || len(reqs[0].Input) != 1 || !strings.HasPrefix(long, reqs[0].Input[0]) || e.CountTokens(reqs[0].Input[0]) > limit {
			t.Fatalf("EmbedQuery of a long text sent %v", reqs)
		}
		if d := embedtest.MaxDiff(q, openaitest.HashVector(reqs[0].Input[0], 64)); d > 1e-6 {
			t.Errorf("query vector differs by %g", d)
		}
		short, err := e.EmbedQuery(context.Background(), "short query")
		if err != nil {
			t.Fatal(err)
		}
		if d := embedtest.MaxDiff(short, embed(t, e, "short query")[0]); d != 0 {
			t.Errorf("EmbedQuery and Embed differ by %g for a short query", d)
		}
		if _, err := e.EmbedQuery(context.Background(), " "); !errors.Is(err, freshen.ErrEmptyInput) || !freshen.IsPermanent(err) {
			t.Errorf("EmbedQuery(blank) = %v, want a permanent ErrEmptyInput", err)
		}
	})

	t.Run("NoSentenceBoundaries", func(t *testing.T) {
		// Distinct windows: identical ones would be sent once.
		var b, g strings.Builder
		for i := range 150 {
			fmt.Fprintf(&b, "word%d ", i) // one sentence
			fmt.Fprintf(&g, "%d", i)      // one word
		}
		words, giant := b.String(), g.String()
		for _, text := range []string{words, giant, words + giant + " " + words} {
			before := len(srv.Requests())
			embed(t, e, text)
			var wins []string
			for _, r := range srv.Requests()[before:] {
				wins = append(wins, r.Input...)
			}
			checkWindows(t, text, wins, limit, e.CountTokens)
		}
	})

	t.Run("ServerRejectsWindow", func(t *testing.T) {
		// The server's tokens run higher than the client's estimate: the
		// window fails visibly, as too large.
		ue, _ := setup(t, base, openaitest.Options{MaxInputTokens: 3})
		_, err := ue.Embed(context.Background(), []string{"four words right here"})
		if !errors.Is(err, freshen.ErrBatchTooLarge) || !freshen.IsPermanent(err) {
			t.Errorf("Embed = %v, want a permanent ErrBatchTooLarge", err)
		}
	})
}

// checkWindows checks that wins fit in limit tokens and cover text: the
// same words, in order.
func checkWindows(t *testing.T, text string, wins []string, limit int, count func(string) int) {
	t.Helper()
	for i, w := range wins {
		if n := count(w); n > limit {
			t.Errorf("window %d has %d tokens, over %d", i, n, limit)
		}
		if w != strings.TrimSpace(w) || w == "" || !strings.Contains(text, w) {
			t.Errorf("window %d (%q) is not a trimmed piece of the text", i, w)
		}
	}
	if got := strings.Join(wins, ""); strings.Join(strings.Fields(got), "") != strings.Join(strings.Fields(text), "") {
		t.Errorf("windows do not cover the text:\n%q\nvs\n%q", got, text)
	}
}

func TestEmptyInputSendsNothing(t *testing.T) {
	e, srv := setup(t, openai.Config{}, openaitest.Options{})
	for _, in := range [][]string{{""}, {"ok", " \n\t"}} {
		_, err := e.Embed(context.Background(), in)
		if !errors.Is(err, freshen.ErrEmptyInput) || !freshen.IsPermanent(err) || !strings.HasPrefix(err.Error(), "openai: ") {
			t.Errorf("Embed(%q) = %v, want a permanent openai: … ErrEmptyInput", in, err)
		}
	}
	if n := srv.Stats().Requests; n != 0 {
		t.Errorf("%d requests sent for empty inputs", n)
	}
}

func TestErrorClasses(t *testing.T) {
	httpDate := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	header := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	type want struct {
		permanent bool
		is        []error
		isNot     []error
		after     time.Duration // 0: none
		slack     time.Duration
		message   string
	}
	for _, c := range []struct {
		name  string
		fault openaitest.Fault
		want  want
	}{
		{"429RetryAfter", openaitest.RateLimit(2 * time.Second), want{is: []error{freshen.ErrRateLimited}, after: 2 * time.Second}},
		{"429RetryAfterSeconds", openaitest.Fault{Status: 429, Header: header("Retry-After", "7")}, want{is: []error{freshen.ErrRateLimited}, after: 7 * time.Second}},
		{"429RetryAfterMs", openaitest.Fault{Status: 429, Header: header("Retry-After-Ms", "20", "Retry-After", "1")}, want{is: []error{freshen.ErrRateLimited}, after: 20 * time.Millisecond}},
		{"429RetryAfterDate", openaitest.Fault{Status: 429, Header: header("Retry-After", httpDate)}, want{is: []error{freshen.ErrRateLimited}, after: time.Hour, slack: 5 * time.Second}},
		{"429ResetTokens", openaitest.Fault{Status: 429, Code: "rate_limit_exceeded", Header: header(
			"X-Ratelimit-Remaining-Requests", "99", "X-Ratelimit-Reset-Requests", "1s",
			"X-Ratelimit-Remaining-Tokens", "0", "X-Ratelimit-Reset-Tokens", "6m0s")},
			want{is: []error{freshen.ErrRateLimited}, after: 6 * time.Minute}},
		{"429ResetRequests", openaitest.Fault{Status: 429, Header: header("X-Ratelimit-Reset-Requests", "20ms")}, want{is: []error{freshen.ErrRateLimited}, after: 20 * time.Millisecond}},
		{"429NoHint", openaitest.Fault{Status: 429}, want{is: []error{freshen.ErrRateLimited}}},
		{"429Quota", openaitest.Error(429, "insufficient_quota"), want{is: []error{freshen.ErrRateLimited, freshen.ErrUnavailable}}},
		{"500", openaitest.Error(500, ""), want{isNot: []error{freshen.ErrRateLimited, freshen.ErrUnavailable}}},
		{"502", openaitest.Error(502, ""), want{}},
		{"503", openaitest.Error(503, ""), want{is: []error{freshen.ErrUnavailable}}},
		{"503RetryAfter", openaitest.Fault{Status: 503, Header: header("Retry-After", "3")}, want{is: []error{freshen.ErrUnavailable}, after: 3 * time.Second}},
		{"504", openaitest.Error(504, ""), want{}},
		{"Reset", openaitest.Reset(), want{}},
		{"Timeout", openaitest.Hang(), want{isNot: []error{context.DeadlineExceeded}, message: "no answer within"}},
		{"Malformed", openaitest.Malformed(), want{}},
		{"FewerVectors", openaitest.WrongCount(-1), want{permanent: true, message: "1 vectors for 2 inputs", isNot: []error{freshen.ErrDimension}}},
		{"MoreVectors", openaitest.WrongCount(1), want{permanent: true, message: "3 vectors for 2 inputs"}},
		{"WrongDim", openaitest.WrongDim(10), want{permanent: true, is: []error{freshen.ErrDimension}}},
		{"ContextLength", openaitest.Error(400, "context_length_exceeded"), want{permanent: true, is: []error{freshen.ErrBatchTooLarge}}},
		{"TooManyTokens", openaitest.Error(400, "max_tokens_per_request"), want{permanent: true, is: []error{freshen.ErrBatchTooLarge}}},
		{"413", openaitest.Error(413, ""), want{permanent: true, is: []error{freshen.ErrBatchTooLarge}}},
		{"400", openaitest.Fault{Status: 400, Param: "input", Message: "'$.input' is invalid."}, want{permanent: true, isNot: []error{freshen.ErrBatchTooLarge}}},
		{"401", openaitest.Error(401, "invalid_api_key"), want{permanent: true}},
		{"403", openaitest.Error(403, ""), want{permanent: true}},
		{"404", openaitest.Error(404, "model_not_found"), want{permanent: true, message: "model_not_found"}},
		{"422", openaitest.Error(422, ""), want{permanent: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var cfg openai.Config
			if c.fault.Hang {
				// Short, to keep the test fast; only the hanging request
				// needs it.
				cfg.Timeout = 50 * time.Millisecond
			}
			e, srv := setup(t, cfg, openaitest.Options{})
			srv.Inject(c.fault)
			_, err := e.Embed(context.Background(), []string{"first", "second"})
			if err == nil {
				t.Fatal("Embed succeeded despite the fault")
			}
			if !strings.HasPrefix(err.Error(), "openai: ") || !strings.Contains(err.Error(), c.want.message) {
				t.Errorf("error %q: want the prefix \"openai: \" and %q", err, c.want.message)
			}
			if got := freshen.IsPermanent(err); got != c.want.permanent {
				t.Errorf("IsPermanent(%v) = %v, want %v", err, got, c.want.permanent)
			}
			for _, target := range c.want.is {
				if !errors.Is(err, target) {
					t.Errorf("%v does not wrap %v", err, target)
				}
			}
			for _, target := range c.want.isNot {
				if errors.Is(err, target) {
					t.Errorf("%v wraps %v", err, target)
				}
			}
			after, ok := freshen.RetryAfter(err)
			if ok != (c.want.after > 0) || after < c.want.after-c.want.slack || after > c.want.after {
				t.Errorf("RetryAfter = %v, %v; want %v (-%v)", after, ok, c.want.after, c.want.slack)
			}
			// Nothing sticks: the next call works.
			if !c.fault.Hang {
				embed(t, e, "first", "second")
			}
		})
	}
}

func TestServerLimits(t *testing.T) {
	t.Run("MaxInputs", func(t *testing.T) {
		// The server allows fewer inputs than the client was told.
		e, _ := setup(t, openai.Config{}, openaitest.Options{MaxInputs: 2})
		_, err := e.Embed(context.Background(), []string{"a", "b", "c"})
		if !errors.Is(err, freshen.ErrBatchTooLarge) || !freshen.IsPermanent(err) {
			t.Errorf("Embed = %v, want a permanent ErrBatchTooLarge", err)
		}
	})
	t.Run("RPM", func(t *testing.T) {
		now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		var clock atomic.Pointer[time.Time]
		clock.Store(&now)
		e, _ := setup(t, openai.Config{}, openaitest.Options{RPM: 2, Now: func() time.Time { return *clock.Load() }})
		embed(t, e, "one")
		later := now.Add(15 * time.Second)
		clock.Store(&later)
		embed(t, e, "two")
		_, err := e.Embed(context.Background(), []string{"three"})
		after, ok := freshen.RetryAfter(err)
		if !errors.Is(err, freshen.ErrRateLimited) || !ok || after != 45*time.Second {
			t.Errorf("third request in a minute: %v (retry after %v), want ErrRateLimited after 45s", err, after)
		}
		end := now.Add(time.Minute)
		clock.Store(&end)
		embed(t, e, "three")
	})
	t.Run("TPM", func(t *testing.T) {
		now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		e, _ := setup(t, openai.Config{}, openaitest.Options{TPM: 10, Now: func() time.Time { return now }})
		embed(t, e, "one two three four five six")
		_, err := e.Embed(context.Background(), []string{"seven eight nine ten eleven"})
		if after, ok := freshen.RetryAfter(err); !errors.Is(err, freshen.ErrRateLimited) || !ok || after != time.Minute {
			t.Errorf("over TPM: %v (retry after %v), want ErrRateLimited after 1m", err, after)
		}
		_, err = e.Embed(context.Background(), []string{strings.Repeat("word ", 11)})
		if !errors.Is(err, freshen.ErrBatchTooLarge) {
			t.Errorf("a request over TPM by itself: %v, want ErrBatchTooLarge", err)
		}
	})
}

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e, srv := setup(t, openai.Config{}, openaitest.Options{OnRequest: func(openaitest.Request) { cancel() }})
	srv.Inject(openaitest.Hang())
	_, err := e.Embed(ctx, []string{"never answered"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Embed = %v, want context.Canceled", err)
	}
	if _, ok := freshen.RetryAfter(err); ok || freshen.IsPermanent(err) {
		t.Errorf("a cancelled call was classified: %v", err)
	}
}

func TestParallelFailure(t *testing.T) {
	e, srv := setup(t, openai.Config{MaxInputs: 1, Parallel: 4}, openaitest.Options{})
	srv.Inject(openaitest.Error(500, ""))
	texts := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	_, err := e.Embed(context.Background(), texts)
	if err == nil || freshen.IsPermanent(err) || errors.Is(err, context.Canceled) {
		t.Fatalf("Embed = %v, want the 500's retryable error", err)
	}
	embed(t, e, texts...)
}

func TestUsage(t *testing.T) {
	e, srv := setup(t, openai.Config{MaxTokens: 30, MaxInputs: 3}, openaitest.Options{})
	var m freshen.Meter
	ctx := freshen.WithMeter(context.Background(), &m)
	for _, texts := range [][]string{{"a few words here", "and some more words", "x", "y", "z"}, {sentences(12)}} {
		if _, err := e.Embed(ctx, texts); err != nil {
			t.Fatal(err)
		}
	}
	// A rejected answer still used tokens.
	srv.Inject(openaitest.WrongDim(3))
	if _, err := e.Embed(ctx, []string{"billed anyway"}); !errors.Is(err, freshen.ErrDimension) {
		t.Fatalf("Embed = %v, want ErrDimension", err)
	}
	st := srv.Stats()
	if st.Tokens == 0 || e.Usage() != st.Tokens {
		t.Errorf("Usage() = %d, server served %d tokens", e.Usage(), st.Tokens)
	}
	// The calls' meter saw the same tokens, answer by answer.
	if got, ok := m.Tokens(); !ok || got != st.Tokens {
		t.Errorf("meter = %d (reported %v), server served %d tokens", got, ok, st.Tokens)
	}
	// The server counts words, the client estimates bytes/3: Usage is
	// the server's.
	var estimate int64
	for _, r := range srv.Requests() {
		for _, in := range r.Input {
			estimate += int64(e.CountTokens(in))
		}
	}
	if estimate == st.Tokens {
		t.Errorf("test does not tell the estimate (%d) from the server's count", estimate)
	}
}

func TestNormalizes(t *testing.T) {
	e, _ := setup(t, openai.Config{}, openaitest.Options{Unnormalized: true})
	for i, v := range embed(t, e, "not", "unit", "vectors") {
		if n := embedtest.Norm(v); math.Abs(n-1) > 1e-6 {
			t.Errorf("vector %d has norm %v", i, n)
		}
	}
}

func unit(v []float64) []float32 {
	var ss float64
	for _, x := range v {
		ss += x * x
	}
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x / math.Sqrt(ss))
	}
	return out
}

func TestIndexNotOrder(t *testing.T) {
	e, srv := setup(t, openai.Config{}, openaitest.Options{})
	srv.Inject(openaitest.Fault{Reverse: true})
	texts := []string{"first", "second", "third"}
	for i, v := range embed(t, e, texts...) {
		if d := embedtest.MaxDiff(v, openaitest.HashVector(texts[i], 64)); d > 1e-6 {
			t.Errorf("text %d got another text's vector", i)
		}
	}
}

// TestIgnoresEnvironment checks that the OPENAI_* variables the SDK's
// client would read change nothing: settings come from Config only.
func TestIgnoresEnvironment(t *testing.T) {
	t.Setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
	t.Setenv("OPENAI_API_KEY", "sk-from-environment")
	t.Setenv("OPENAI_CUSTOM_HEADERS", "X-From-Env: 1")
	e, srv := setup(t, openai.Config{}, openaitest.Options{})
	embed(t, e, "text")
	r := srv.Requests()[0]
	if r.Header.Get("Authorization") != "Bearer "+testKey || r.Header.Get("X-From-Env") != "" {
		t.Errorf("request headers %v: the environment leaked in", r.Header)
	}
}

// TestTokenizer: OpenAI's models are counted with cl100k_base, as OpenAI
// counts them; other model names with the estimate unless configured.
func TestTokenizer(t *testing.T) {
	for _, c := range []struct {
		cfg  openai.Config
		text string
		want int
	}{
		// tiktoken's own examples for cl100k_base.
		{openai.Config{Model: "text-embedding-3-small"}, "hello world", 2},
		{openai.Config{Model: "text-embedding-ada-002"}, "tiktoken is great!", 6},
		{openai.Config{Model: "my-deployment", Dim: 8, MaxTokens: 100, Tokenizer: openai.TokenizerCL100k}, "hello world", 2},
		// The estimate: ceil(bytes/3).
		{openai.Config{Model: "nomic-embed-text", Dim: 8, MaxTokens: 100}, "hello world", 4},
		{openai.Config{Model: "text-embedding-3-large", Tokenizer: openai.TokenizerEstimate}, "hello world", 4},
	} {
		c.cfg.APIKey, c.cfg.BaseURL = testKey, "http://127.0.0.1:1/v1"
		e, err := openai.New(c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.CountTokens(c.text); got != c.want {
			t.Errorf("%s (tokenizer %q): CountTokens(%q) = %d, want %d", c.cfg.Model, c.cfg.Tokenizer, c.text, got, c.want)
		}
	}
	if _, err := openai.New(openai.Config{Model: "text-embedding-3-small", APIKey: testKey, Tokenizer: "gpt2"}); err == nil || !strings.Contains(err.Error(), "Tokenizer") {
		t.Errorf("an unknown tokenizer: %v", err)
	}
}
