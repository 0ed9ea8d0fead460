package bedrock_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/embed/bedrock"
	"github.com/freshen-io/freshen/embed/bedrock/bedrocktest"
	"github.com/freshen-io/freshen/embed/builtin"
	"github.com/freshen-io/freshen/embed/embedtest"
)

var models = []string{bedrock.TitanV2, bedrock.CohereEnglishV3, bedrock.CohereV4}

type testBundle struct {
	srv *bedrocktest.Server
}

// setup starts a fake Bedrock and an embedder on it; cfg.Model defaults
// to Titan and the endpoint is always the fake's.
func setup(t *testing.T, cfg bedrock.Config, o bedrocktest.Options) (*bedrock.Embedder, *testBundle) {
	t.Helper()
	srv := bedrocktest.Start(t, o)
	if cfg.Model == "" {
		cfg.Model = bedrock.TitanV2
	}
	cfg.Endpoint = srv.URL
	cfg.Region = "us-east-1"
	e, err := bedrock.New(context.Background(), cfg, bedrocktest.Credentials())
	if err != nil {
		t.Fatal(err)
	}
	return e, &testBundle{srv: srv}
}

func TestConformance(t *testing.T) {
	for _, model := range models {
		t.Run(model, func(t *testing.T) {
			embedtest.Run(t, func(t *testing.T) freshen.Embedder {
				e, _ := setup(t, bedrock.Config{Model: model}, bedrocktest.Options{})
				return e
			})
		})
	}
	// Real semantics behind the fake: the built-in model's vectors.
	m, err := builtin.Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, model := range []string{bedrock.TitanV2, bedrock.CohereMultilingual} {
		t.Run(model+"/builtin", func(t *testing.T) {
			embedtest.Run(t, func(t *testing.T) freshen.Embedder {
				e, _ := setup(t, bedrock.Config{Model: model, Dimensions: 1024}, bedrocktest.Options{Embedder: m})
				return e
			})
		})
	}
}

func TestModel(t *testing.T) {
	for _, c := range []struct {
		cfg       bedrock.Config
		name      string
		dim, maxT int
	}{
		{bedrock.Config{Model: bedrock.TitanV2}, "bedrock/amazon.titan-embed-text-v2:0", 1024, 8192},
		{bedrock.Config{Model: bedrock.TitanV2, Dimensions: 256}, "bedrock/amazon.titan-embed-text-v2:0@256", 256, 8192},
		{bedrock.Config{Model: bedrock.CohereEnglishV3}, "bedrock/cohere.embed-english-v3", 1024, 512},
		{bedrock.Config{Model: bedrock.CohereV4}, "bedrock/cohere.embed-v4:0", 1536, 128000},
		{bedrock.Config{Model: bedrock.CohereV4, Dimensions: 512}, "bedrock/cohere.embed-v4:0@512", 512, 128000},
		{bedrock.Config{Model: "us.cohere.embed-v4:0"}, "bedrock/us.cohere.embed-v4:0", 1536, 128000},
	} {
		e, _ := setup(t, c.cfg, bedrocktest.Options{})
		want := freshen.ModelInfo{Name: c.name, Dim: c.dim, MaxTokens: c.maxT}
		if got := e.Model(); got != want {
			t.Errorf("%+v: Model() = %+v, want %+v", c.cfg, got, want)
		}
		vecs, err := e.Embed(context.Background(), []string{"hello"})
		if err != nil {
			t.Fatal(err)
		}
		if len(vecs[0]) != c.dim {
			t.Errorf("%+v: %d values, want %d", c.cfg, len(vecs[0]), c.dim)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		cfg bedrock.Config
		ok  bool
	}{
		{bedrock.Config{Model: bedrock.TitanV2}, true},
		{bedrock.Config{Model: bedrock.TitanV2, Dimensions: 512, Timeout: time.Second, Concurrency: 8, Endpoint: "https://vpce-1.bedrock-runtime.us-east-1.vpce.amazonaws.com"}, true},
		{bedrock.Config{Model: "arn:aws:bedrock:us-east-1::foundation-model/cohere.embed-english-v3"}, true},
		{bedrock.Config{}, false},
		{bedrock.Config{Model: "amazon.titan-embed-text-v1"}, false},
		{bedrock.Config{Model: bedrock.TitanV2, Dimensions: 1536}, false},
		{bedrock.Config{Model: bedrock.CohereEnglishV3, Dimensions: 512}, false},
		{bedrock.Config{Model: bedrock.CohereV4, Dimensions: 768}, false},
		{bedrock.Config{Model: bedrock.TitanV2, Endpoint: "localhost:4566"}, false},
		{bedrock.Config{Model: bedrock.TitanV2, Timeout: -time.Second}, false},
		{bedrock.Config{Model: bedrock.TitanV2, Concurrency: -1}, false},
	} {
		if err := c.cfg.Validate(); (err == nil) != c.ok {
			t.Errorf("Validate(%+v) = %v, want ok=%v", c.cfg, err, c.ok)
		}
	}
	if _, err := bedrock.New(context.Background(), bedrock.Config{}); err == nil || !strings.HasPrefix(err.Error(), "bedrock: ") {
		t.Errorf("New(empty config) = %v, want a bedrock: error", err)
	}
}

func TestCountTokens(t *testing.T) {
	e, b := setup(t, bedrock.Config{}, bedrocktest.Options{})
	for text, want := range map[string]int{
		"":                  0,
		"hello world":       3, // 11 ASCII characters
		"Über":              2, // 3 ASCII + 1 other
		"東京都":               3,
		"a dog runs, a cat": 5,
	} {
		if got := e.CountTokens(text); got != want {
			t.Errorf("CountTokens(%q) = %d, want %d", text, got, want)
		}
	}
	if got := freshen.CountTokens(e, "hello world"); got != 3 {
		t.Errorf("freshen.CountTokens = %d, want the embedder's own 3", got)
	}
	if b.srv.Calls() != 0 {
		t.Errorf("counting tokens sent %d requests", b.srv.Calls())
	}
}

// decode parses a captured body into generic JSON, for exact comparison.
func decode(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("request body %q: %v", body, err)
	}
	return m
}

func jsonOf(t *testing.T, s string) map[string]any {
	t.Helper()
	return decode(t, []byte(s))
}

func TestRequestBodies(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		cfg   bedrock.Config
		query bool
		want  string
	}{
		{bedrock.Config{Model: bedrock.TitanV2}, false,
			`{"inputText": "A dog runs.", "dimensions": 1024, "normalize": true}`},
		{bedrock.Config{Model: bedrock.TitanV2, Dimensions: 256}, true,
			`{"inputText": "A dog runs.", "dimensions": 256, "normalize": true}`},
		{bedrock.Config{Model: bedrock.CohereEnglishV3}, false,
			`{"texts": ["A dog runs."], "input_type": "search_document", "truncate": "END"}`},
		{bedrock.Config{Model: bedrock.CohereMultilingual}, true,
			`{"texts": ["A dog runs."], "input_type": "search_query", "truncate": "END"}`},
		{bedrock.Config{Model: bedrock.CohereV4}, false,
			`{"texts": ["A dog runs."], "input_type": "search_document", "truncate": "END", "embedding_types": ["float"]}`},
		{bedrock.Config{Model: bedrock.CohereV4, Dimensions: 512}, true,
			`{"texts": ["A dog runs."], "input_type": "search_query", "truncate": "END", "embedding_types": ["float"], "output_dimension": 512}`},
	} {
		e, b := setup(t, c.cfg, bedrocktest.Options{})
		var err error
		if c.query {
			_, err = e.EmbedQuery(ctx, "A dog runs.")
		} else {
			_, err = e.Embed(ctx, []string{"A dog runs."})
		}
		if err != nil {
			t.Fatal(err)
		}
		reqs := b.srv.Requests()
		if len(reqs) != 1 {
			t.Fatalf("%+v: %d requests, want 1", c.cfg, len(reqs))
		}
		r := reqs[0]
		if got, want := decode(t, r.Body), jsonOf(t, c.want); !reflect.DeepEqual(got, want) {
			t.Errorf("%+v query=%v: body %s, want %s", c.cfg, c.query, r.Body, c.want)
		}
		if r.Model != c.cfg.Model {
			t.Errorf("request for model %q, want %q", r.Model, c.cfg.Model)
		}
		if ct, acc := r.Header.Get("Content-Type"), r.Header.Get("Accept"); ct != "application/json" || acc != "application/json" {
			t.Errorf("Content-Type %q, Accept %q; want application/json", ct, acc)
		}
		if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
			t.Errorf("Authorization %q: not SigV4", r.Header.Get("Authorization"))
		}
	}
}

func TestCohereBatches(t *testing.T) {
	for _, model := range []string{bedrock.CohereEnglishV3, bedrock.CohereV4} {
		e, b := setup(t, bedrock.Config{Model: model}, bedrocktest.Options{})
		texts := make([]string, 250)
		for i := range texts {
			texts[i] = fmt.Sprintf("text number %d", i)
		}
		vecs, err := e.Embed(context.Background(), texts)
		if err != nil {
			t.Fatal(err)
		}
		var sizes []int
		var sent []string
		for _, r := range b.srv.Requests() {
			var body struct{ Texts []string }
			json.Unmarshal(r.Body, &body)
			sizes = append(sizes, len(body.Texts))
			sent = append(sent, body.Texts...)
		}
		slices.Sort(sizes)
		if want := []int{58, 96, 96}; !slices.Equal(sizes, want) {
			t.Errorf("%s: requests of %v texts, want %v", model, sizes, want)
		}
		slices.Sort(sent)
		want := slices.Clone(texts)
		slices.Sort(want)
		if !slices.Equal(sent, want) {
			t.Errorf("%s: the requests did not carry each text once", model)
		}
		// In input order: each vector is its own text's.
		for _, i := range []int{0, 95, 96, 191, 192, 249} {
			alone, err := e.Embed(context.Background(), texts[i:i+1])
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(alone[0], vecs[i]) {
				t.Errorf("%s: vector %d is not text %d's", model, i, i)
			}
		}
	}
}

func TestTitanConcurrency(t *testing.T) {
	e, b := setup(t, bedrock.Config{Concurrency: 3}, bedrocktest.Options{})
	texts := make([]string, 20)
	for i := range texts {
		texts[i] = fmt.Sprintf("sentence %d", i)
	}
	if _, err := e.Embed(context.Background(), texts); err != nil {
		t.Fatal(err)
	}
	if n := b.srv.Calls(); n != 20 {
		t.Errorf("%d requests for 20 texts, want one each", n)
	}
	if m := b.srv.MaxInFlight(); m > 3 {
		t.Errorf("%d requests in flight at once, want <= Concurrency (3)", m)
	}
}

func TestInputType(t *testing.T) {
	for _, model := range []string{bedrock.CohereEnglishV3, bedrock.CohereV4} {
		e, b := setup(t, bedrock.Config{Model: model}, bedrocktest.Options{})
		ctx := context.Background()
		if _, err := e.Embed(ctx, []string{"doc one", "doc two"}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.EmbedQuery(ctx, "a query"); err != nil {
			t.Fatal(err)
		}
		reqs := b.srv.Requests()
		var types []string
		for _, r := range reqs {
			types = append(types, decode(t, r.Body)["input_type"].(string))
		}
		if want := []string{"search_document", "search_query"}; !slices.Equal(types, want) {
			t.Errorf("%s: input types %v, want %v", model, types, want)
		}
	}
}

func TestEmbedQuery(t *testing.T) {
	e, b := setup(t, bedrock.Config{}, bedrocktest.Options{})
	ctx := context.Background()
	q, err := e.EmbedQuery(ctx, "where is the dog?")
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.Embed(ctx, []string{"where is the dog?"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(q, d[0]) {
		t.Error("Titan: a query and the same document differ")
	}
	if _, err := e.EmbedQuery(ctx, "  "); !errors.Is(err, freshen.ErrEmptyInput) || !freshen.IsPermanent(err) {
		t.Errorf("EmbedQuery(blank) = %v, want permanent ErrEmptyInput", err)
	}
	// A query longer than a window is cut to its first window: one
	// request, no pooling.
	long := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 2000)
	before := b.srv.Calls()
	if _, err := e.EmbedQuery(ctx, long); err != nil {
		t.Fatal(err)
	}
	if n := b.srv.Calls() - before; n != 1 {
		t.Errorf("a long query took %d requests, want 1", n)
	}
}

func TestEmptyInputSendsNothing(t *testing.T) {
	for _, model := range models {
		e, b := setup(t, bedrock.Config{Model: model}, bedrocktest.Options{})
		_, err := e.Embed(context.Background(), []string{"fine", " \n\t"})
		if !errors.Is(err, freshen.ErrEmptyInput) || !freshen.IsPermanent(err) {
			t.Errorf("%s: Embed(blank) = %v, want permanent ErrEmptyInput", model, err)
		}
		if n := b.srv.Calls(); n != 0 {
			t.Errorf("%s: %d requests sent for a batch with a blank text", model, n)
		}
	}
}

// longText is about 60,000 characters of prose: over one Titan window
// (4,096 estimated tokens) and over Titan's 50,000-character limit.
func longText() string {
	var sb strings.Builder
	for i := 0; sb.Len() < 60000; i++ {
		fmt.Fprintf(&sb, "Sentence %d tells of a dog that runs in park number %d. ", i, i%7)
		if i%10 == 9 {
			sb.WriteString("\n")
		}
	}
	return sb.String()
}

func TestTitanWindowing(t *testing.T) {
	e, b := setup(t, bedrock.Config{}, bedrocktest.Options{})
	ctx := context.Background()
	text := longText()
	vecs, err := e.Embed(ctx, []string{text, "short"})
	if err != nil {
		t.Fatal(err)
	}
	var wins []string
	for _, r := range b.srv.Requests() {
		var body struct{ InputText string }
		json.Unmarshal(r.Body, &body)
		if body.InputText != "short" {
			wins = append(wins, body.InputText)
		}
	}
	if len(wins) < 4 {
		t.Fatalf("%d windows for %d characters, want >= 4", len(wins), len(text))
	}
	// Every window is within the limits, ends a sentence, and together
	// they are the text (requests may arrive in any order).
	for _, w := range wins {
		if e.CountTokens(w) > 4096 || utf8.RuneCountInString(w) > bedrocktest.TitanMaxChars {
			t.Errorf("window of %d characters, %d estimated tokens: over the limits", len(w), e.CountTokens(w))
		}
		if !strings.HasSuffix(w, ".") {
			t.Errorf("window does not end a sentence: ...%q", w[len(w)-20:])
		}
	}
	if got, want := strings.Join(strings.Fields(strings.Join(ordered(text, wins), " ")), " "), strings.Join(strings.Fields(text), " "); got != want {
		t.Error("the windows do not cover the text exactly once")
	}
	// The vector is the mean of the windows' vectors weighted by the
	// tokens Titan reported, normalized.
	sum := make([]float64, 1024)
	for _, w := range wins {
		alone, err := e.Embed(ctx, []string{w})
		if err != nil {
			t.Fatal(err)
		}
		weight := float64(b.srv.CountTokens(w))
		for d, v := range alone[0] {
			sum[d] += weight * float64(v)
		}
	}
	var ss float64
	for _, v := range sum {
		ss += v * v
	}
	for d := range sum {
		if want := sum[d] / math.Sqrt(ss); math.Abs(want-float64(vecs[0][d])) > 1e-6 {
			t.Fatalf("value %d = %v, want the token-weighted mean %v", d, vecs[0][d], want)
		}
	}
	if e.Usage() != b.srv.Tokens() {
		t.Errorf("Usage() = %d, the server reported %d tokens", e.Usage(), b.srv.Tokens())
	}
}

// ordered sorts windows by where they start in text.
func ordered(text string, wins []string) []string {
	out := slices.Clone(wins)
	slices.SortFunc(out, func(a, b string) int { return strings.Index(text, a) - strings.Index(text, b) })
	return out
}

func TestWindowingWithoutSpaces(t *testing.T) {
	// One enormous "word" (say, base64) is cut between characters.
	e, b := setup(t, bedrock.Config{Model: bedrock.CohereEnglishV3}, bedrocktest.Options{})
	word := strings.Repeat("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo", 200) // 7,000 characters
	if _, err := e.Embed(context.Background(), []string{word}); err != nil {
		t.Fatal(err)
	}
	reqs := b.srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want the windows in one", len(reqs))
	}
	var body struct{ Texts []string }
	json.Unmarshal(reqs[0].Body, &body)
	if len(body.Texts) != 4 || strings.Join(body.Texts, "") != word {
		t.Errorf("windows of %d texts, want 4 that rebuild the word", len(body.Texts))
	}
	for _, w := range body.Texts {
		if len(w) > 2048 {
			t.Errorf("window of %d characters, over Cohere v3's 2,048", len(w))
		}
	}
}

func TestUsage(t *testing.T) {
	for _, model := range models {
		e, b := setup(t, bedrock.Config{Model: model}, bedrocktest.Options{})
		var m freshen.Meter
		ctx := freshen.WithMeter(context.Background(), &m)
		if _, err := e.Embed(ctx, []string{"A dog runs in the park.", "Quarterly tax filing", longText()[:9000]}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.EmbedQuery(ctx, "where is the dog?"); err != nil {
			t.Fatal(err)
		}
		// A failed request bills nothing.
		b.srv.Fail(bedrocktest.Throttle, 1)
		e.Embed(ctx, []string{"throttled"})
		if got, want := e.Usage(), b.srv.Tokens(); got != want || got == 0 {
			t.Errorf("%s: Usage() = %d, the server reported %d tokens", model, got, want)
		}
		// The calls' meter (how the pipeline's counters learn it) too.
		if got, ok := m.Tokens(); !ok || got != b.srv.Tokens() {
			t.Errorf("%s: meter = %d (reported %v), the server reported %d tokens", model, got, ok, b.srv.Tokens())
		}
	}
}

// TestFaults checks that each fault the fake injects reaches the caller
// in the right class, through the real SDK's typed errors.
func TestFaults(t *testing.T) {
	type check struct {
		permanent, rateLimited, unavailable, dimension bool
		typed                                          any // *types.X the SDK must produce
	}
	checks := map[bedrocktest.Fault]check{
		bedrocktest.Throttle:      {rateLimited: true, typed: new(*types.ThrottlingException)},
		bedrocktest.QuotaExceeded: {rateLimited: true, typed: new(*types.ServiceQuotaExceededException)},
		bedrocktest.ModelNotReady: {unavailable: true, typed: new(*types.ModelNotReadyException)},
		bedrocktest.Unavailable:   {unavailable: true, typed: new(*types.ServiceUnavailableException)},
		bedrocktest.InternalError: {typed: new(*types.InternalServerException)},
		bedrocktest.ModelTimeout:  {typed: new(*types.ModelTimeoutException)},
		bedrocktest.ModelError:    {typed: new(*types.ModelErrorException)},
		bedrocktest.Invalid:       {permanent: true, typed: new(*types.ValidationException)},
		bedrocktest.AccessDenied:  {permanent: true, typed: new(*types.AccessDeniedException)},
		bedrocktest.NotFound:      {permanent: true, typed: new(*types.ResourceNotFoundException)},
		bedrocktest.BadGateway:    {},
		bedrocktest.Slow:          {},
		bedrocktest.Reset:         {},
		bedrocktest.Malformed:     {},
		bedrocktest.WrongCount:    {permanent: true},
		bedrocktest.WrongDim:      {permanent: true, dimension: true},
	}
	if len(checks) != len(bedrocktest.Faults()) {
		t.Fatalf("%d faults checked, the fake has %d", len(checks), len(bedrocktest.Faults()))
	}
	for _, model := range models {
		for _, f := range bedrocktest.Faults() {
			t.Run(model+"/"+f.String(), func(t *testing.T) {
				c := checks[f]
				e, b := setup(t, bedrock.Config{Model: model, Timeout: 300 * time.Millisecond}, bedrocktest.Options{})
				b.srv.Fail(f, 1)
				_, err := e.Embed(context.Background(), []string{"A dog runs.", "A cat sleeps."})
				if err == nil {
					t.Fatal("no error")
				}
				if !strings.HasPrefix(err.Error(), "bedrock: ") {
					t.Errorf("error %q lacks the bedrock: prefix", err)
				}
				if got := freshen.IsPermanent(err); got != c.permanent {
					t.Errorf("IsPermanent = %v, want %v: %v", got, c.permanent, err)
				}
				if got := errors.Is(err, freshen.ErrRateLimited); got != c.rateLimited {
					t.Errorf("errors.Is(ErrRateLimited) = %v, want %v: %v", got, c.rateLimited, err)
				}
				if got := errors.Is(err, freshen.ErrUnavailable); got != c.unavailable {
					t.Errorf("errors.Is(ErrUnavailable) = %v, want %v: %v", got, c.unavailable, err)
				}
				if got := errors.Is(err, freshen.ErrDimension); got != c.dimension {
					t.Errorf("errors.Is(ErrDimension) = %v, want %v: %v", got, c.dimension, err)
				}
				if errors.Is(err, freshen.ErrBatchTooLarge) || errors.Is(err, freshen.ErrNotFound) {
					t.Errorf("%v: a small request is not too large, a model is not an object", err)
				}
				if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("%v: reads as the caller's ctx ending", err)
				}
				if c.typed != nil && !errors.As(err, c.typed) {
					t.Errorf("%v: not a %T", err, c.typed)
				}
				// No retries inside the client: Titan sends one request a
				// text, Cohere one for both.
				if want := int64(map[bool]int{true: 2, false: 1}[model == bedrock.TitanV2]); b.srv.Calls() > want {
					t.Errorf("%d requests, want at most %d (no retries)", b.srv.Calls(), want)
				}
				// The embedder works once the fault is gone.
				if _, err := e.Embed(context.Background(), []string{"A dog runs."}); err != nil {
					t.Errorf("after the fault: %v", err)
				}
			})
		}
	}
}

// The SDK never retries, whatever the environment asks for.
func TestNoClientRetries(t *testing.T) {
	t.Setenv("AWS_MAX_ATTEMPTS", "5")
	t.Setenv("AWS_RETRY_MODE", "adaptive")
	for _, model := range models {
		e, b := setup(t, bedrock.Config{Model: model}, bedrocktest.Options{})
		for _, f := range []bedrocktest.Fault{bedrocktest.Throttle, bedrocktest.InternalError, bedrocktest.Reset} {
			before := b.srv.Calls()
			b.srv.Fail(f, 0)
			if _, err := e.Embed(context.Background(), []string{"x"}); err == nil {
				t.Fatalf("%s %v: no error", model, f)
			}
			b.srv.Heal()
			if n := b.srv.Calls() - before; n != 1 {
				t.Errorf("%s %v: %d requests, want 1", model, f, n)
			}
		}
	}
}

func TestRetryAfter(t *testing.T) {
	e, b := setup(t, bedrock.Config{}, bedrocktest.Options{RetryAfter: 7 * time.Second})
	for _, f := range []bedrocktest.Fault{bedrocktest.Throttle, bedrocktest.Unavailable} {
		b.srv.Fail(f, 1)
		_, err := e.Embed(context.Background(), []string{"x"})
		if d, ok := freshen.RetryAfter(err); !ok || d != 7*time.Second {
			t.Errorf("%v: RetryAfter = %v, %v; want 7s", f, d, ok)
		}
	}
}

func TestUnavailableIsNotAnAttempt(t *testing.T) {
	e, b := setup(t, bedrock.Config{Model: bedrock.CohereV4}, bedrocktest.Options{})
	b.srv.Fail(bedrocktest.Unavailable, 0)
	for range 3 {
		_, err := e.Embed(context.Background(), []string{"x"})
		if !freshen.IsNotAttempt(err) {
			t.Fatalf("%v: an unavailable provider must not count against the key", err)
		}
	}
	b.srv.Heal()
	if _, err := e.Embed(context.Background(), []string{"x"}); err != nil {
		t.Fatal(err)
	}
}

func TestCancelDuringRequest(t *testing.T) {
	for _, model := range models {
		arrived := make(chan struct{}, 16)
		e, b := setup(t, bedrock.Config{Model: model}, bedrocktest.Options{OnRequest: func(string) { arrived <- struct{}{} }})
		b.srv.Fail(bedrocktest.Slow, 0)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := e.Embed(ctx, []string{"held", "also held"})
			done <- err
		}()
		<-arrived
		cancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("%s: Embed = %v, want context.Canceled as it is", model, err)
		}
		// The caller's deadline, shorter than Config.Timeout, is reported
		// as the caller's.
		ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
		_, err := e.Embed(ctx, []string{"held"})
		cancel()
		if err != context.DeadlineExceeded {
			t.Errorf("%s: Embed = %v, want context.DeadlineExceeded as it is", model, err)
		}
	}
}
