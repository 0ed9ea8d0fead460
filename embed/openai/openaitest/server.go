package openaitest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/freshen-io/freshen"
)

// Options configures a Server. Zero values are defaults.
type Options struct {
	// Embedder makes the vectors (default Hash{}: 64 values).
	Embedder freshen.Embedder
	// CountTokens is the server's token measure, for usage, limits and
	// Stats (default: the Embedder's own, freshen.CountTokens). A token
	// array input counts one token per id.
	CountTokens func(text string) int
	// APIKey, if set, must come as "Authorization: Bearer KEY" or
	// "api-key: KEY" (Azure); otherwise the answer is 401.
	APIKey string
	// Model, if set, is the only model served; others get 404.
	Model string

	// Per-request caps, answered with 400 and OpenAI's structured codes:
	// MaxInputs (default 2048; code array_above_max_length),
	// MaxInputTokens per input (default 8192; context_length_exceeded),
	// MaxRequestTokens (default 300,000; max_tokens_per_request).
	// Negative: no cap.
	MaxInputs, MaxInputTokens, MaxRequestTokens int
	// Unnormalized scales every vector by 3, as servers that do not
	// normalize would answer.
	Unnormalized bool

	// Addr, if set, is the address to listen on (default: a free
	// loopback port).
	Addr string
	// RPM and TPM, if set, limit requests and tokens in any sliding
	// minute: past them the answer is 429 with Retry-After,
	// retry-after-ms and x-ratelimit-* headers (also sent on success). A
	// request of more tokens than TPM gets 413.
	RPM, TPM int
	// Now is the clock of the RPM/TPM window (default time.Now).
	Now func() time.Time
	// Latency delays every answer by Latency + LatencyPerToken × tokens.
	Latency, LatencyPerToken time.Duration

	// FaultRate is the probability that a request (with no fault queued
	// by Inject) gets a fault drawn from Faults (default DefaultFaults),
	// with a RNG seeded with Seed.
	FaultRate float64
	Faults    []Fault
	Seed      uint64

	// Record keeps every request for Requests.
	Record bool
	// OnRequest, if set, is called with each request (on the handler's
	// goroutine) before it is answered: a signal for tests.
	OnRequest func(Request)
}

// Request is a request as the server received it.
type Request struct {
	Path, RawQuery string
	Header         http.Header
	Body           []byte
	// Decoded from Body (zero when it is not valid JSON).
	Model string
	// Input holds the inputs; a token array becomes "tokens:ID ID ...".
	Input []string
	// InputForm is "string", "strings", "tokens" or "token arrays".
	InputForm string
	// Dimensions is nil when not sent.
	Dimensions *int
	// EncodingFormat is "" when not sent.
	EncodingFormat string
}

// Stats counts what the server did.
type Stats struct {
	// Requests is every request to an embeddings path.
	Requests int64
	// Faults is how many requests got a fault (injected or random).
	Faults int64
	// Served is how many got 200 with a well-formed body (vectors and
	// usage, even if a fault made the vectors wrong); Inputs and Tokens
	// add up their inputs and the usage they reported.
	Served, Inputs, Tokens int64
	// RateLimited is how many got 429 from the RPM/TPM limits.
	RateLimited int64
}

// Server is a fake /v1/embeddings endpoint. It is safe for concurrent
// use.
type Server struct {
	opts    Options
	ts      *httptest.Server
	closing chan struct{}
	once    sync.Once

	mu    sync.Mutex
	queue []Fault
	// down, until downUntil, is every request's fault (DownFor).
	down      Fault
	downUntil time.Time
	rng       *rand.Rand
	stats     Stats
	requests  []Request
	limits    limiter
}

// New starts a server for a test and closes it when the test ends.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Start starts a server on 127.0.0.1 (for programs, benchmarks); Close
// stops it.
func Start(opts Options) (*Server, error) {
	if opts.Embedder == nil {
		opts.Embedder = Hash{}
	}
	if opts.Embedder.Model().Dim <= 0 {
		return nil, fmt.Errorf("openaitest: embedder %q has no dimension", opts.Embedder.Model().Name)
	}
	if opts.CountTokens == nil {
		e := opts.Embedder
		opts.CountTokens = func(s string) int { return freshen.CountTokens(e, s) }
	}
	if opts.FaultRate < 0 || opts.FaultRate > 1 {
		return nil, fmt.Errorf("openaitest: FaultRate %v: want 0..1", opts.FaultRate)
	}
	if opts.FaultRate > 0 && len(opts.Faults) == 0 {
		opts.Faults = DefaultFaults()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	defaults := map[*int]int{&opts.MaxInputs: 2048, &opts.MaxInputTokens: 8192, &opts.MaxRequestTokens: 300_000}
	for p, d := range defaults {
		if *p == 0 {
			*p = d
		}
	}
	s := &Server{
		opts:    opts,
		closing: make(chan struct{}),
		rng:     rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		limits:  limiter{rpm: opts.RPM, tpm: opts.TPM},
	}
	if opts.Addr == "" {
		s.ts = httptest.NewServer(http.HandlerFunc(s.serve))
		return s, nil
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("openaitest: %w", err)
	}
	s.ts = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.ts.Listener.Close()
	s.ts.Listener = ln
	s.ts.Start()
	return s, nil
}

// URL is the base URL for clients: it ends in /v1, and the server
// answers POST to any path ending in /embeddings (Azure's deployment
// paths included).
func (s *Server) URL() string { return s.ts.URL + "/v1" }

// Client is an HTTP client for the server.
func (s *Server) Client() *http.Client { return s.ts.Client() }

// Close stops the server, ending hanging requests; it waits for the
// handlers. A second Close does nothing.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.closing)
		s.ts.CloseClientConnections()
		s.ts.Close()
	})
}

// Inject queues faults: each of the next requests gets the next fault,
// before any random one, and before the key and the body are checked.
func (s *Server) Inject(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, faults...)
}

// DownFor answers every request with f for d from now (a provider
// outage of a given length); queued faults come first.
func (s *Server) DownFor(f Fault, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down, s.downUntil = f, time.Now().Add(d)
}

// Stats returns the counts so far.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Requests returns the requests received so far (with Options.Record).
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// nextFault returns the fault for a request, if any.
func (s *Server) nextFault() (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) > 0 {
		f := s.queue[0]
		s.queue = s.queue[1:]
		s.stats.Faults++
		return f, true
	}
	if time.Now().Before(s.downUntil) {
		s.stats.Faults++
		return s.down, true
	}
	if s.opts.FaultRate > 0 && s.rng.Float64() < s.opts.FaultRate {
		s.stats.Faults++
		return s.opts.Faults[s.rng.IntN(len(s.opts.Faults))], true
	}
	return Fault{}, false
}

type wireRequest struct {
	Input          json.RawMessage `json:"input"`
	Model          string          `json:"model"`
	Dimensions     *int            `json:"dimensions"`
	EncodingFormat *string         `json:"encoding_format"`
}

type wireEmbedding struct {
	Object    string `json:"object"`
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"`
}

type wireResponse struct {
	Object string          `json:"object"`
	Data   []wireEmbedding `json:"data"`
	Model  string          `json:"model"`
	Usage  struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

// apiError answers an OpenAI error body; empty fields are null.
func apiError(w http.ResponseWriter, status int, code, typ, param, message string) {
	orNull := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	if typ == "" {
		typ = errorType(status)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"message": message, "type": typ, "param": orNull(param), "code": orNull(code),
	}})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/embeddings") {
		apiError(w, http.StatusNotFound, "unknown_url", "", "", "Unknown request URL: "+r.Method+" "+r.URL.Path)
		return
	}
	if r.Method != http.MethodPost {
		apiError(w, http.StatusMethodNotAllowed, "method_not_allowed", "", "", "Use POST")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 256<<20))
	if err != nil {
		return // the client went away
	}
	req, wire, tokens, parseErr := s.parse(r, body)
	s.mu.Lock()
	s.stats.Requests++
	if s.opts.Record {
		s.requests = append(s.requests, req)
	}
	s.mu.Unlock()
	if s.opts.OnRequest != nil {
		s.opts.OnRequest(req)
	}

	fault, faulty := s.nextFault()
	if faulty {
		if fault.Delay > 0 && !s.wait(r.Context(), fault.Delay) {
			panic(http.ErrAbortHandler)
		}
		if fault.Hang {
			s.wait(r.Context(), -1)
			panic(http.ErrAbortHandler)
		}
		if fault.Reset {
			reset(w)
			return
		}
		for k, vs := range fault.Header {
			w.Header()[k] = vs
		}
		if fault.Status != 0 {
			apiError(w, fault.Status, fault.Code, fault.Type, fault.Param, fault.Message)
			return
		}
		if fault.Malformed {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,`)
			return
		}
	}

	if key := s.opts.APIKey; key != "" {
		if r.Header.Get("Authorization") != "Bearer "+key && r.Header.Get("Api-Key") != key {
			apiError(w, http.StatusUnauthorized, "invalid_api_key", "invalid_request_error", "", "Incorrect API key provided.")
			return
		}
	}
	if parseErr != nil {
		apiError(w, http.StatusBadRequest, parseErr.code, "invalid_request_error", parseErr.param, parseErr.message)
		return
	}
	if s.opts.Model != "" && wire.Model != s.opts.Model {
		apiError(w, http.StatusNotFound, "model_not_found", "invalid_request_error", "model", fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", wire.Model))
		return
	}
	dim := s.opts.Embedder.Model().Dim
	if wire.Dimensions != nil && (*wire.Dimensions < 1 || *wire.Dimensions > dim) {
		apiError(w, http.StatusBadRequest, "invalid_value", "invalid_request_error", "dimensions", fmt.Sprintf("dimensions must be 1..%d", dim))
		return
	}
	total := 0
	for _, n := range tokens {
		total += n
	}
	if limit := s.opts.MaxInputs; limit > 0 && len(req.Input) > limit {
		apiError(w, http.StatusBadRequest, "array_above_max_length", "invalid_request_error", "input", fmt.Sprintf("'$.input' is too long: %d inputs, maximum %d.", len(req.Input), limit))
		return
	}
	for i, n := range tokens {
		if limit := s.opts.MaxInputTokens; limit > 0 && n > limit {
			apiError(w, http.StatusBadRequest, "context_length_exceeded", "invalid_request_error", "input", fmt.Sprintf("Input %d has %d tokens; this model's maximum context length is %d tokens.", i, n, limit))
			return
		}
	}
	if limit := s.opts.MaxRequestTokens; limit > 0 && total > limit {
		apiError(w, http.StatusBadRequest, "max_tokens_per_request", "max_tokens_per_request", "input", fmt.Sprintf("Requested %d tokens, max %d tokens per request.", total, limit))
		return
	}
	if s.opts.RPM > 0 || s.opts.TPM > 0 {
		if s.opts.TPM > 0 && total > s.opts.TPM {
			apiError(w, http.StatusRequestEntityTooLarge, "request_too_large", "tokens", "input", fmt.Sprintf("Request too large: %d tokens, limit %d per minute.", total, s.opts.TPM))
			return
		}
		s.mu.Lock()
		wait, h := s.limits.admit(s.opts.Now(), total)
		s.mu.Unlock()
		for k, vs := range h {
			w.Header()[k] = vs
		}
		if wait > 0 {
			s.mu.Lock()
			s.stats.RateLimited++
			s.mu.Unlock()
			apiError(w, http.StatusTooManyRequests, "rate_limit_exceeded", "requests", "", fmt.Sprintf("Rate limit reached; try again in %s.", wait.Round(time.Millisecond)))
			return
		}
	}
	if d := s.opts.Latency + time.Duration(total)*s.opts.LatencyPerToken; d > 0 && !s.wait(r.Context(), d) {
		panic(http.ErrAbortHandler)
	}

	vecs, err := s.opts.Embedder.Embed(r.Context(), req.Input)
	if err != nil {
		if errors.Is(err, freshen.ErrEmptyInput) {
			apiError(w, http.StatusBadRequest, "", "invalid_request_error", "input", "'$.input' is invalid.")
			return
		}
		apiError(w, http.StatusInternalServerError, "", "server_error", "", "The embedder failed.")
		return
	}
	if wire.Dimensions != nil {
		for i, v := range vecs {
			vecs[i] = unit(v[:*wire.Dimensions])
		}
	}
	if s.opts.Unnormalized {
		for i, v := range vecs {
			scaled := make([]float32, len(v))
			for j, x := range v {
				scaled[j] = 3 * x
			}
			vecs[i] = scaled
		}
	}
	if faulty && fault.Dim != 0 {
		for i, v := range vecs {
			cut := make([]float32, fault.Dim)
			copy(cut, v)
			vecs[i] = cut
		}
	}
	if faulty && fault.VectorDelta < 0 {
		vecs = vecs[:max(len(vecs)+fault.VectorDelta, 0)]
	}
	for faulty && fault.VectorDelta > 0 && len(vecs) > 0 && len(vecs) < len(req.Input)+fault.VectorDelta {
		vecs = append(vecs, vecs[len(vecs)-1])
	}

	resp := wireResponse{Object: "list", Model: wire.Model, Data: make([]wireEmbedding, len(vecs))}
	base64Format := wire.EncodingFormat != nil && *wire.EncodingFormat == "base64"
	for i, v := range vecs {
		resp.Data[i] = wireEmbedding{Object: "embedding", Index: i, Embedding: v}
		if base64Format {
			resp.Data[i].Embedding = encodeBase64(v)
		}
	}
	if faulty && fault.Reverse {
		slices.Reverse(resp.Data)
	}
	resp.Usage.PromptTokens, resp.Usage.TotalTokens = total, total
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(resp); err != nil {
		apiError(w, http.StatusInternalServerError, "", "server_error", "", "Vectors not encodable: "+err.Error())
		return
	}
	s.mu.Lock()
	s.stats.Served++
	s.stats.Inputs += int64(len(req.Input))
	s.stats.Tokens += int64(total)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Openai-Model", wire.Model)
	_, _ = w.Write(buf.Bytes())
}

type badRequest struct{ code, param, message string }

// parse decodes a request body as /v1/embeddings does, into the record
// of the request, the wire form, and each input's tokens. The record is
// filled as far as the body allows even when it is invalid.
func (s *Server) parse(r *http.Request, body []byte) (Request, wireRequest, []int, *badRequest) {
	req := Request{Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: body}
	var wire wireRequest
	if err := json.Unmarshal(body, &wire); err != nil {
		return req, wire, nil, &badRequest{"", "", "We could not parse the JSON body of your request."}
	}
	req.Model, req.Dimensions = wire.Model, wire.Dimensions
	if wire.EncodingFormat != nil {
		req.EncodingFormat = *wire.EncodingFormat
	}
	var tokens []int
	var one string
	var many []string
	var ids []int
	var idArrays [][]int
	switch {
	case json.Unmarshal(wire.Input, &one) == nil:
		req.InputForm, req.Input = "string", []string{one}
	case json.Unmarshal(wire.Input, &many) == nil:
		req.InputForm, req.Input = "strings", many
	case json.Unmarshal(wire.Input, &ids) == nil:
		req.InputForm, idArrays = "tokens", [][]int{ids}
	case json.Unmarshal(wire.Input, &idArrays) == nil:
		req.InputForm = "token arrays"
	default:
		return req, wire, nil, &badRequest{"", "input", "'$.input' is invalid: want a string, strings, or token arrays."}
	}
	for _, a := range idArrays {
		parts := make([]string, len(a))
		for i, id := range a {
			parts[i] = strconv.Itoa(id)
		}
		req.Input = append(req.Input, "tokens:"+strings.Join(parts, " "))
		tokens = append(tokens, len(a))
	}
	if idArrays == nil {
		for _, in := range req.Input {
			tokens = append(tokens, s.opts.CountTokens(in))
		}
	}
	switch {
	case wire.Model == "":
		return req, wire, tokens, &badRequest{"", "model", "you must provide a model parameter"}
	case len(req.Input) == 0:
		return req, wire, tokens, &badRequest{"", "input", "'$.input' is invalid: no inputs."}
	case wire.EncodingFormat != nil && *wire.EncodingFormat != "float" && *wire.EncodingFormat != "base64":
		return req, wire, tokens, &badRequest{"invalid_value", "encoding_format", "encoding_format must be float or base64."}
	}
	for i, in := range req.Input {
		if in == "" || (req.InputForm == "token arrays" || req.InputForm == "tokens") && tokens[i] == 0 {
			// OpenAI's words for an empty input.
			return req, wire, tokens, &badRequest{"", "", "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference."}
		}
	}
	return req, wire, tokens, nil
}

// wait waits d (forever if negative) unless the client goes away or the
// server closes; it reports whether the full time passed.
func (s *Server) wait(ctx context.Context, d time.Duration) bool {
	var timeout <-chan time.Time
	if d >= 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-timeout:
		return true
	case <-ctx.Done():
	case <-s.closing:
	}
	return false
}

// reset closes the connection under the request with a TCP RST.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// unit returns a normalized copy of v.
func unit(v []float32) []float32 {
	var ss float64
	for _, x := range v {
		ss += float64(x) * float64(x)
	}
	inv := 1 / math.Sqrt(max(ss, 1e-24))
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(float64(x) * inv)
	}
	return out
}

// encodeBase64 is OpenAI's base64 encoding: little-endian float32s.
func encodeBase64(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return base64.StdEncoding.EncodeToString(b)
}

// DecodeBase64 decodes an embedding in OpenAI's base64 encoding.
func DecodeBase64(s string) ([]float32, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("openaitest: %d bytes is not a float32 array", len(b))
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v, nil
}
