package openai

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/freshen-io/freshen"
	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// Embedder embeds texts through an OpenAI-compatible /embeddings
// endpoint. It is safe for concurrent use.
type Embedder struct {
	cfg   Config // with defaults
	info  freshen.ModelInfo
	svc   oai.EmbeddingService
	count func(string) int
	usage atomic.Int64
}

var (
	_ freshen.Embedder      = (*Embedder)(nil)
	_ freshen.TokenCounter  = (*Embedder)(nil)
	_ freshen.QueryEmbedder = (*Embedder)(nil)
)

// New validates cfg and builds an Embedder. It does no I/O: a wrong key
// or URL shows in the first Embed.
func New(cfg Config) (*Embedder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	client := cfg.HTTPClient
	if client == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = max(t.MaxIdleConnsPerHost, 2*cfg.Parallel)
		client = &http.Client{Transport: t}
	}
	// The embedding service alone, not oai.NewClient: the client reads
	// OPENAI_* variables, and this package takes its settings from cfg
	// only.
	opts := []option.RequestOption{
		option.WithHTTPClient(client),
		option.WithBaseURL(cfg.BaseURL),
		// Retries are a decorator's job (and must see every failure).
		option.WithMaxRetries(0),
	}
	for k, v := range cfg.Headers {
		opts = append(opts, option.WithHeader(k, v))
	}
	if cfg.APIKey != "" {
		if cfg.APIKeyHeader != "" {
			opts = append(opts, option.WithHeader(cfg.APIKeyHeader, string(cfg.APIKey)))
		} else {
			opts = append(opts, option.WithAPIKey(string(cfg.APIKey)))
		}
	}
	if cfg.APIVersion != "" {
		opts = append(opts, option.WithQuery("api-version", cfg.APIVersion))
	}
	e := &Embedder{
		cfg:   cfg,
		info:  freshen.ModelInfo{Name: cfg.Name, Dim: cfg.Dim, MaxTokens: cfg.MaxTokens},
		svc:   oai.NewEmbeddingService(opts...),
		count: cfg.CountTokens,
	}
	if e.count == nil {
		e.count = tokenizerFor(cfg.Tokenizer, cfg.Model)
	}
	return e, nil
}

// Model describes the model. Its Name is "openai/"+Model (with
// "@"+Dimensions when set) unless Config.Name overrides it.
func (e *Embedder) Model() freshen.ModelInfo { return e.info }

// CountTokens counts with Config.CountTokens if set, else with the
// configured Tokenizer: OpenAI's cl100k_base for its own models, else an
// estimate (ceil of the UTF-8 bytes over three, which errs high so that
// batches and windows stay under the server's caps). What the provider
// actually counted (and bills) is in Usage, and reaches freshen's
// counters through freshen.ReportUsage.
func (e *Embedder) CountTokens(text string) int { return e.count(text) }

// Usage is the number of tokens the server reported using
// (usage.total_tokens) over the Embedder's life, for every answer that
// carried vectors, including answers then rejected as malformed. Servers
// that report no usage leave it at zero.
func (e *Embedder) Usage() int64 { return e.usage.Load() }

// Embed returns one unit vector per text, in order. Texts are sent in
// requests of at most MaxInputs inputs and MaxRequestTokens tokens;
// identical texts of one call are sent once. A text longer than MaxTokens
// is cut into windows at sentence, then word, then character boundaries
// and embedded as the token-weighted mean of its windows, normalized; or,
// with Truncate, as its first window.
//
// Errors are classified for the retry decorator (see freshen.IsPermanent,
// freshen.RetryAfter): an empty text fails with freshen.ErrEmptyInput
// before any request; 429 is retryable with freshen.ErrRateLimited and the
// server's wait; 5xx, timeouts and broken connections are retryable (503
// with freshen.ErrUnavailable); a request too large is permanent with
// freshen.ErrBatchTooLarge; other 4xx, a wrong number of vectors and
// freshen.ErrDimension are permanent. Embed never retries by itself. When
// ctx is done it returns an error wrapping ctx.Err().
func (e *Embedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if len(texts) == 0 {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// inputs are the distinct strings sent; parts[i] lists text i's
	// inputs (its windows), weights[i] their token counts.
	var inputs []string
	seen := make(map[string]int)
	parts := make([][]int, len(texts))
	weights := make([][]float64, len(texts))
	addInput := func(i int, s string) {
		j, ok := seen[s]
		if !ok {
			j = len(inputs)
			seen[s] = j
			inputs = append(inputs, s)
		}
		parts[i] = append(parts[i], j)
		weights[i] = append(weights[i], float64(max(e.count(s), 1)))
	}
	for i, t := range texts {
		if strings.TrimSpace(t) == "" {
			return nil, freshen.Permanent(fmt.Errorf("openai: embed text %d: %w", i, freshen.ErrEmptyInput))
		}
		switch {
		case e.count(t) <= e.cfg.MaxTokens:
			addInput(i, t)
		case e.cfg.Truncate:
			addInput(i, firstWindow(t, e.cfg.MaxTokens, e.count))
		default:
			for _, w := range windows(t, e.cfg.MaxTokens, e.count) {
				addInput(i, w)
			}
		}
	}
	vecs, err := e.embedInputs(ctx, inputs)
	if err != nil {
		return nil, err
	}
	out := make([][]float32, len(texts))
	for i := range texts {
		if len(parts[i]) == 1 {
			// A copy: identical texts share one input, and every result
			// belongs to its caller.
			out[i] = slices.Clone(vecs[parts[i][0]])
			continue
		}
		out[i] = weightedMean(vecs, parts[i], weights[i], e.cfg.Dim)
	}
	return out, nil
}

// EmbedQuery embeds one query cut to MaxTokens (OpenAI's models embed
// queries and documents alike). Errors are those of Embed.
func (e *Embedder) EmbedQuery(ctx context.Context, query string) ([]float32, error) {
	if strings.TrimSpace(query) == "" {
		return nil, freshen.Permanent(fmt.Errorf("openai: embed query: %w", freshen.ErrEmptyInput))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if e.count(query) > e.cfg.MaxTokens {
		query = firstWindow(query, e.cfg.MaxTokens, e.count)
	}
	vecs, err := e.embedInputs(ctx, []string{query})
	if err != nil {
		return nil, err
	}
	return vecs[0], nil
}

// embedInputs embeds inputs, each within MaxTokens, in as few requests as
// the caps allow, Parallel at a time; the first failure cancels the rest.
func (e *Embedder) embedInputs(ctx context.Context, inputs []string) ([][]float32, error) {
	type batch struct{ from, to, tokens int }
	var batches []batch
	for i, s := range inputs {
		n := e.count(s)
		if last := len(batches) - 1; last >= 0 && batches[last].to-batches[last].from < e.cfg.MaxInputs && batches[last].tokens+n <= e.cfg.MaxRequestTokens {
			batches[last].to++
			batches[last].tokens += n
			continue
		}
		batches = append(batches, batch{i, i + 1, n})
	}
	vecs := make([][]float32, len(inputs))
	run := func(ctx context.Context, k int) error {
		b := batches[k]
		op := "embed " + inputsOf(b.to-b.from)
		if len(batches) > 1 {
			op = fmt.Sprintf("embed request %d/%d (%s)", k+1, len(batches), inputsOf(b.to-b.from))
		}
		return e.request(ctx, op, inputs[b.from:b.to], vecs[b.from:b.to])
	}
	if e.cfg.Parallel == 1 || len(batches) == 1 {
		for k := range batches {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if err := run(ctx, k); err != nil {
				return nil, err
			}
		}
		return vecs, nil
	}
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	slots := make(chan struct{}, e.cfg.Parallel)
	for k := range batches {
		select {
		case slots <- struct{}{}:
		case <-gctx.Done():
		}
		if gctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			if err := run(gctx, k); err != nil {
				once.Do(func() { firstErr = err; cancel() })
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return vecs, nil
}

// request sends one /embeddings request and writes the answer's vectors,
// normalized, into out (len(out) == len(inputs)).
func (e *Embedder) request(ctx context.Context, op string, inputs []string, out [][]float32) error {
	rctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	params := oai.EmbeddingNewParams{
		Model:          e.cfg.Model,
		Input:          oai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: inputs},
		EncodingFormat: oai.EmbeddingNewParamsEncodingFormat(e.cfg.EncodingFormat),
	}
	if e.cfg.Dimensions > 0 {
		params.Dimensions = oai.Int(int64(e.cfg.Dimensions))
	}
	res, err := e.svc.New(rctx, params)
	if err != nil {
		return e.classify(ctx, op, err)
	}
	used := res.Usage.TotalTokens
	if used == 0 {
		used = res.Usage.PromptTokens
	}
	if used > 0 {
		e.usage.Add(used)
		freshen.ReportUsage(ctx, used)
	}
	if len(res.Data) != len(inputs) {
		return freshen.Permanent(fmt.Errorf("openai: %s: server returned %d vectors for %s", op, len(res.Data), inputsOf(len(inputs))))
	}
	for _, d := range res.Data {
		i := d.Index
		if i < 0 || i >= int64(len(inputs)) || out[i] != nil {
			return freshen.Permanent(fmt.Errorf("openai: %s: server returned a vector with index %d (out of range or repeated) for %s", op, i, inputsOf(len(inputs))))
		}
		v, err := normalize(d.Embedding, e.cfg.Dim)
		if err != nil {
			return freshen.Permanent(fmt.Errorf("openai: %s: vector %d: %w", op, i, err))
		}
		out[i] = v
	}
	return nil
}

// normalize returns v as a unit float32 vector of length dim: compatible
// servers do not all normalize, OpenAI does.
func normalize(v []float64, dim int) ([]float32, error) {
	var ss float64
	for _, x := range v {
		ss += x * x
	}
	out := make([]float32, len(v))
	if err := freshen.CheckDim(out, dim); err != nil {
		return nil, err
	}
	if ss == 0 || math.IsNaN(ss) || math.IsInf(ss, 0) {
		return nil, fmt.Errorf("not a direction (norm %v)", math.Sqrt(ss))
	}
	inv := 1 / math.Sqrt(ss)
	for i, x := range v {
		out[i] = float32(x * inv)
	}
	return out, nil
}

// weightedMean is the unit vector along the weighted sum of vecs[idx[k]]
// by weights[k].
func weightedMean(vecs [][]float32, idx []int, weights []float64, dim int) []float32 {
	sum := make([]float64, dim)
	for k, j := range idx {
		for d, x := range vecs[j] {
			sum[d] += weights[k] * float64(x)
		}
	}
	var ss float64
	for _, x := range sum {
		ss += x * x
	}
	inv := 1 / math.Sqrt(max(ss, 1e-24))
	out := make([]float32, dim)
	for d, x := range sum {
		out[d] = float32(x * inv)
	}
	return out
}

func inputsOf(n int) string {
	if n == 1 {
		return "1 input"
	}
	return fmt.Sprintf("%d inputs", n)
}
