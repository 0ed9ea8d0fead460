package bedrock

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/internal/awsconf"
)

// Supported model IDs (an inference profile ID or ARN naming one of them
// works too).
const (
	TitanV2            = "amazon.titan-embed-text-v2:0"
	CohereEnglishV3    = "cohere.embed-english-v3"
	CohereMultilingual = "cohere.embed-multilingual-v3"
	CohereV4           = "cohere.embed-v4:0"
)

// Defaults.
const (
	DefaultTimeout     = 30 * time.Second
	DefaultConcurrency = 4
)

// Config says which model to call and how to reach it. Credentials are
// not part of it: they come from the standard AWS chain (environment,
// shared config and credentials files, SSO, IMDS...).
type Config struct {
	// Region defaults to the AWS chain's region, else us-east-1.
	Region string `yaml:"region" json:"region,omitempty"`
	// Endpoint overrides the Bedrock runtime URL (a VPC interface
	// endpoint, a local fake); empty for AWS's own.
	Endpoint string `yaml:"endpoint" json:"endpoint,omitempty"`
	// Model is the model ID, e.g. amazon.titan-embed-text-v2:0,
	// cohere.embed-english-v3, cohere.embed-multilingual-v3 or
	// cohere.embed-v4:0. Required.
	Model string `yaml:"model" json:"model"`
	// Dimensions of the vectors: Titan v2 256, 512 or 1024 (default
	// 1024); Cohere v4 256, 512, 1024 or 1536 (default 1536); Cohere v3
	// 1024 only. 0 means the model's default. A set value is part of the
	// model's name in caches.
	Dimensions int `yaml:"dimensions" json:"dimensions,omitempty"`
	// Timeout bounds each InvokeModel request (default 30s). A request
	// that runs out of it fails as retryable, not as a ctx error.
	Timeout time.Duration `yaml:"timeout" json:"timeout,omitempty"`
	// Concurrency is how many requests one Embed call may have in flight
	// (default 4): Titan takes one text a request. Caps across calls are
	// a decorator's business.
	Concurrency int `yaml:"concurrency" json:"concurrency,omitempty"`
}

// Validate checks the configuration without network access.
func (c Config) Validate() error {
	if c.Model == "" {
		return errors.New("embedder.model is required (e.g. " + TitanV2 + ")")
	}
	f := familyOf(c.Model)
	if f == nil {
		return fmt.Errorf("embedder.model %q is not supported: use %s, %s, %s or %s (or an inference profile naming one)",
			c.Model, TitanV2, CohereEnglishV3, CohereMultilingual, CohereV4)
	}
	if !f.fitsDim(c.Dimensions) {
		return fmt.Errorf("embedder.dimensions %d: %s accepts %s", c.Dimensions, c.Model, joinInts(f.dims))
	}
	if c.Endpoint != "" && !strings.HasPrefix(c.Endpoint, "http://") && !strings.HasPrefix(c.Endpoint, "https://") {
		return fmt.Errorf("embedder.endpoint %q must start with http:// or https://", c.Endpoint)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("embedder.timeout %s is negative", c.Timeout)
	}
	if c.Concurrency < 0 {
		return fmt.Errorf("embedder.concurrency %d is negative", c.Concurrency)
	}
	return nil
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}

// Embedder implements freshen.Embedder on one Bedrock model. It is safe
// for concurrent use.
type Embedder struct {
	client *bedrockruntime.Client
	cfg    Config
	fam    *family
	info   freshen.ModelInfo
	usage  atomic.Int64
}

var (
	_ freshen.Embedder      = (*Embedder)(nil)
	_ freshen.TokenCounter  = (*Embedder)(nil)
	_ freshen.QueryEmbedder = (*Embedder)(nil)
)

// New builds an Embedder. opts adjust the AWS configuration (tests use
// them for static credentials). It makes no request.
func New(ctx context.Context, cfg Config, opts ...func(*awsconfig.LoadOptions) error) (*Embedder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bedrock: %w", err)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	awsCfg, err := awsconf.Load(ctx, cfg.Region, opts...)
	if err != nil {
		return nil, fmt.Errorf("bedrock: load AWS configuration: %w", err)
	}
	client := bedrockruntime.NewFromConfig(awsCfg, func(o *bedrockruntime.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		// One attempt per request, whatever AWS_MAX_ATTEMPTS says: the
		// retry decorator decides, from this package's classification.
		o.Retryer = aws.NopRetryer{}
		o.RetryMaxAttempts = 1
		o.HTTPClient = readOnlyBodies{o.HTTPClient}
	})
	f := familyOf(cfg.Model)
	name := "bedrock/" + cfg.Model
	dim := f.defaultDim
	if cfg.Dimensions != 0 {
		name += "@" + strconv.Itoa(cfg.Dimensions)
		dim = cfg.Dimensions
	}
	return &Embedder{
		client: client,
		cfg:    cfg,
		fam:    f,
		info:   freshen.ModelInfo{Name: name, Dim: dim, MaxTokens: f.maxTokens},
	}, nil
}

// Model implements freshen.Embedder: Name is "bedrock/" and the model ID,
// plus "@" and the dimension when Config.Dimensions is set.
func (e *Embedder) Model() freshen.ModelInfo { return e.info }

// Client exposes the SDK client.
func (e *Embedder) Client() *bedrockruntime.Client { return e.client }

// Usage is the number of input tokens Bedrock reported in the answers
// this embedder received since it was built, including answers it then
// rejected (a wrong count of vectors): what is billed. Titan reports
// them in its body (inputTextTokenCount), every model in the
// X-Amzn-Bedrock-Input-Token-Count header.
func (e *Embedder) Usage() int64 { return e.usage.Load() }

// CountTokens implements freshen.TokenCounter with an estimate, since
// Bedrock's tokenizers are not available offline: four ASCII characters
// a token and one token for every other character. On English prose it
// is within about 20% of Titan's and Cohere's counts (and high rather
// than low); it sizes batches and windows, while Usage reports what was
// billed.
func (e *Embedder) CountTokens(text string) int { return measure(text).tokens() }

// piece is one text sent: a whole input or one window of it.
type piece struct {
	input  int // index of the input text
	text   string
	weight float64 // tokens, for pooling windows
	vec    []float32
}

// Embed implements freshen.Embedder: one unit vector per text, Cohere's
// as "search_document". A text longer than one request takes is
// embedded as the token-weighted mean of its windows (see windows),
// normalized. An empty or blank text fails with freshen.ErrEmptyInput
// before anything is sent. Errors are classified (see classify); once
// ctx is done, Embed returns ctx.Err().
func (e *Embedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if len(texts) == 0 {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var pieces []piece
	nwin := make([]int, len(texts))
	for i, t := range texts {
		if strings.TrimSpace(t) == "" {
			return nil, freshen.Permanent(fmt.Errorf("bedrock: embed text %d: %w", i, freshen.ErrEmptyInput))
		}
		for _, w := range windows(t, e.fam.window) {
			pieces = append(pieces, piece{input: i, text: w})
			nwin[i]++
		}
	}
	if err := e.embedPieces(ctx, pieces, searchDocument); err != nil {
		return nil, err
	}
	out := make([][]float32, len(texts))
	sums := make([][]float64, len(texts))
	for _, p := range pieces {
		if nwin[p.input] == 1 {
			out[p.input] = p.vec
			continue
		}
		s := sums[p.input]
		if s == nil {
			s = make([]float64, e.info.Dim)
			sums[p.input] = s
		}
		for d, v := range p.vec {
			s[d] += p.weight * float64(v)
		}
	}
	for i, s := range sums {
		if s != nil {
			out[i] = unit(s)
		}
	}
	return out, nil
}

// EmbedQuery implements freshen.QueryEmbedder: Cohere embeds the query as
// "search_query"; Titan as any text. A query longer than one window is
// cut to its first window.
func (e *Embedder) EmbedQuery(ctx context.Context, query string) ([]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if strings.TrimSpace(query) == "" {
		return nil, freshen.Permanent(fmt.Errorf("bedrock: embed query: %w", freshen.ErrEmptyInput))
	}
	pieces := []piece{{text: windows(query, e.fam.window)[0]}}
	if err := e.embedPieces(ctx, pieces, searchQuery); err != nil {
		return nil, err
	}
	return pieces[0].vec, nil
}

// embedPieces fills in every piece's vector and weight, with up to
// Concurrency requests in flight. The first failure cancels the other
// requests and is returned (ctx.Err() if ctx is done).
func (e *Embedder) embedPieces(ctx context.Context, pieces []piece, inputType string) error {
	var calls [][]piece
	for start := 0; start < len(pieces); {
		end, tokens := start, 0
		for end < len(pieces) && end-start < e.fam.perCall {
			t := measure(pieces[end].text).tokens()
			if end > start && e.fam.callTokens > 0 && tokens+t > e.fam.callTokens {
				break
			}
			tokens += t
			end++
		}
		calls = append(calls, pieces[start:end])
		start = end
	}
	if len(calls) == 1 {
		return e.call(ctx, calls[0], inputType)
	}
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
		next  atomic.Int64
	)
	for range min(e.cfg.Concurrency, len(calls)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(calls) || gctx.Err() != nil {
					return
				}
				if err := e.call(gctx, calls[i], inputType); err != nil {
					mu.Lock()
					if first == nil {
						first = err
						cancel()
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	return first
}

// errTimeout is the cause of a request that ran out of Config.Timeout.
// It does not wrap context.DeadlineExceeded: callers read that as their
// own ctx expiring.
var errTimeout = errors.New("no answer within the request timeout")

// call sends one request for pieces and fills in their vectors.
func (e *Embedder) call(ctx context.Context, pieces []piece, inputType string) error {
	texts := make([]string, len(pieces))
	for i, p := range pieces {
		texts[i] = p.text
	}
	body, err := e.fam.body(texts, inputType, e.info.Dim, e.cfg.Dimensions)
	if err != nil {
		return freshen.Permanent(fmt.Errorf("bedrock: encode request: %w", err))
	}
	callCtx, cancel := context.WithTimeoutCause(ctx, e.cfg.Timeout, errTimeout)
	defer cancel()
	out, err := e.client.InvokeModel(callCtx, &bedrockruntime.InvokeModelInput{
		ModelId:     aws.String(e.cfg.Model),
		Body:        body,
		ContentType: aws.String("application/json"),
		Accept:      aws.String("application/json"),
	})
	if err != nil {
		return e.classify(ctx, callCtx, err, texts)
	}
	op := "bedrock: invoke " + e.cfg.Model
	vecs, tokens, err := e.fam.parse(out.Body)
	if err != nil {
		if errors.Is(err, errShape) {
			return freshen.Permanent(fmt.Errorf("%s: %w", op, err))
		}
		// A garbled body says nothing about the input.
		return fmt.Errorf("%s: decode response: %w", op, err)
	}
	if tokens == 0 {
		tokens = headerTokens(out.ResultMetadata)
	}
	if tokens > 0 {
		e.usage.Add(int64(tokens))
		freshen.ReportUsage(ctx, int64(tokens))
	}
	if len(vecs) != len(pieces) {
		return freshen.Permanent(fmt.Errorf("%s: %w: %d vectors for %d texts", op, errShape, len(vecs), len(pieces)))
	}
	for i, v := range vecs {
		if err := freshen.CheckDim(v, e.info.Dim); err != nil {
			return freshen.Permanent(fmt.Errorf("%s: vector %d: %w", op, i, err))
		}
		if !normalize(v) {
			return freshen.Permanent(fmt.Errorf("%s: %w: vector %d is zero or not finite", op, errShape, i))
		}
		pieces[i].vec = v
		pieces[i].weight = float64(measure(pieces[i].text).tokens())
	}
	if !e.fam.cohere && tokens > 0 {
		// Titan: the model's own count weighs the window. (Cohere's
		// header counts a whole request, so its windows keep the
		// estimate.)
		pieces[0].weight = float64(tokens)
	}
	return nil
}

// readOnlyBodies hides the io.WriterTo of request bodies from net/http.
//
// The SDK wraps a request body in a closer whose WriteTo returns io.EOF
// once closed, and closes it as soon as the response headers arrive.
// net/http's writer, which probes the body for extra bytes with io.Copy
// after sending it, then sees io.EOF as a write error and closes the
// connection under the response still being read: the request fails
// with "use of closed network connection" although the answer came. A
// fast server (a VPC endpoint, the local fake) loses that race now and
// then. Through Read alone, a closed body is a clean end of input.
type readOnlyBodies struct {
	bedrockruntime.HTTPClient
}

func (c readOnlyBodies) Do(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = readCloser{r.Body}
	}
	return c.HTTPClient.Do(r)
}

// readCloser exposes only Read and Close.
type readCloser struct{ io.ReadCloser }

// headerTokens reads X-Amzn-Bedrock-Input-Token-Count, or 0.
func headerTokens(md middleware.Metadata) int {
	resp, ok := awsmiddleware.GetRawResponse(md).(*smithyhttp.Response)
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(resp.Header.Get("X-Amzn-Bedrock-Input-Token-Count"))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// normalize scales v to unit length in place; false if it cannot.
func normalize(v []float32) bool {
	var ss float64
	for _, x := range v {
		ss += float64(x) * float64(x)
	}
	if ss == 0 || math.IsInf(ss, 0) || math.IsNaN(ss) {
		return false
	}
	inv := 1 / math.Sqrt(ss)
	for i := range v {
		v[i] = float32(float64(v[i]) * inv)
	}
	return true
}

// unit returns s scaled to unit length, as float32.
func unit(s []float64) []float32 {
	var ss float64
	for _, x := range s {
		ss += x * x
	}
	inv := 1 / math.Sqrt(max(ss, 1e-24))
	v := make([]float32, len(s))
	for i, x := range s {
		v[i] = float32(x * inv)
	}
	return v
}
