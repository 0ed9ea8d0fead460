// Package bedrocktest is a local stand-in for the Amazon Bedrock runtime's
// InvokeModel operation, for tests and benchmarks of embed/bedrock: a
// loopback HTTP server that answers the real SDK's signed requests
// (POST /model/{modelId}/invoke) for Amazon Titan Text Embeddings v2 and
// Cohere Embed v3/v4 with the shapes Bedrock uses, counts requests and
// tokens, and injects faults on demand.
//
// Its vectors come from a freshen.Embedder it is given (the built-in model
// for real semantics) or from a SHA-256 hash (fast). It checks request
// bodies as strictly as Bedrock's JSON schemas do (required and extraneous
// keys, allowed values, the per-model size limits), so a client bug shows
// up as the ValidationException Bedrock would send. Errors are written the
// way Bedrock writes them, and the way the SDK's restJson1 deserializer
// needs them to produce its typed errors: the status of the error shape,
// an X-Amzn-ErrorType header naming it (with Bedrock's ":http://internal…"
// suffix, which the SDK strips) and a JSON body {"message": "..."}.
//
// It never verifies SigV4 signatures (it only requires an Authorization
// header) and never listens beyond 127.0.0.1.
package bedrocktest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/freshen-io/freshen"
)

// Model IDs the server knows, as Bedrock spells them.
const (
	TitanV2            = "amazon.titan-embed-text-v2:0"
	CohereEnglishV3    = "cohere.embed-english-v3"
	CohereMultilingual = "cohere.embed-multilingual-v3"
	CohereV4           = "cohere.embed-v4:0"
)

// Bedrock's documented input limits, enforced by the server.
const (
	TitanMaxChars   = 50000 // characters of one inputText
	TitanMaxTokens  = 8192  // tokens of one inputText
	CohereMaxTexts  = 96    // texts in one request
	CohereV3MaxChar = 2048  // characters of one text, Embed v3
)

// Credentials returns a load option with static test credentials, so the
// SDK signs requests without looking for real ones.
func Credentials() func(*awsconfig.LoadOptions) error {
	return awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIDBEDROCKTEST", "bedrocktest-secret", ""))
}

// Fault is a failure the server injects into a request.
type Fault int

const (
	// Throttle answers 429 ThrottlingException.
	Throttle Fault = iota + 1
	// QuotaExceeded answers 400 ServiceQuotaExceededException.
	QuotaExceeded
	// ModelNotReady answers 429 ModelNotReadyException.
	ModelNotReady
	// InternalError answers 500 InternalServerException.
	InternalError
	// Unavailable answers 503 ServiceUnavailableException.
	Unavailable
	// ModelTimeout answers 408 ModelTimeoutException.
	ModelTimeout
	// ModelError answers 424 ModelErrorException.
	ModelError
	// Invalid answers 400 ValidationException whatever the input.
	Invalid
	// AccessDenied answers 403 AccessDeniedException.
	AccessDenied
	// NotFound answers 404 ResourceNotFoundException.
	NotFound
	// BadGateway answers 502 with an HTML body and no error type, as a
	// proxy in front of Bedrock would.
	BadGateway
	// Slow holds the request without answering until the client gives up
	// (or the server closes).
	Slow
	// Reset reads the request, then resets the connection.
	Reset
	// Malformed answers 200 with a truncated JSON body.
	Malformed
	// WrongCount answers 200 with one vector too few (Titan: none).
	WrongCount
	// WrongDim answers 200 with every vector one value short.
	WrongDim
)

var faultNames = map[Fault]string{
	Throttle: "Throttle", QuotaExceeded: "QuotaExceeded", ModelNotReady: "ModelNotReady",
	InternalError: "InternalError", Unavailable: "Unavailable", ModelTimeout: "ModelTimeout",
	ModelError: "ModelError", Invalid: "Invalid", AccessDenied: "AccessDenied", NotFound: "NotFound",
	BadGateway: "BadGateway", Slow: "Slow", Reset: "Reset", Malformed: "Malformed",
	WrongCount: "WrongCount", WrongDim: "WrongDim",
}

func (f Fault) String() string {
	if n, ok := faultNames[f]; ok {
		return n
	}
	return "Fault(" + strconv.Itoa(int(f)) + ")"
}

// Faults lists every fault, for table tests.
func Faults() []Fault {
	out := make([]Fault, 0, len(faultNames))
	for f := range faultNames {
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}

// apiError is an error shape of the Bedrock runtime API.
type apiError struct {
	status int
	code   string
	msg    string
}

var faultErrors = map[Fault]apiError{
	Throttle:      {http.StatusTooManyRequests, "ThrottlingException", "Too many requests, please wait before trying again."},
	QuotaExceeded: {http.StatusBadRequest, "ServiceQuotaExceededException", "Your request exceeds the service quota for your account."},
	ModelNotReady: {http.StatusTooManyRequests, "ModelNotReadyException", "Model is not ready to serve inference requests."},
	InternalError: {http.StatusInternalServerError, "InternalServerException", "The server encountered an internal error."},
	Unavailable:   {http.StatusServiceUnavailable, "ServiceUnavailableException", "Bedrock is unable to process your request."},
	ModelTimeout:  {http.StatusRequestTimeout, "ModelTimeoutException", "Model has timed out in processing the request."},
	ModelError:    {http.StatusFailedDependency, "ModelErrorException", "The model encountered an error processing the request."},
	Invalid:       {http.StatusBadRequest, "ValidationException", "Malformed input request, please reformat your input and try again."},
	AccessDenied:  {http.StatusForbidden, "AccessDeniedException", "You don't have access to the model with the specified model ID."},
	NotFound:      {http.StatusNotFound, "ResourceNotFoundException", "Could not resolve the foundation model from the provided model identifier."},
}

// Options configure a Server.
type Options struct {
	// Embedder makes the vectors (fitted to the requested dimension by
	// tiling or truncation); nil: a SHA-256 hash of each text, fast.
	Embedder freshen.Embedder
	// RetryAfter, if set, is sent as a Retry-After header (whole seconds)
	// with 429 and 503 answers.
	RetryAfter time.Duration
	// Latency delays every answer, to model the network in benchmarks.
	Latency time.Duration
	// NoCapture stops the server keeping request bodies (long benchmark
	// runs); the counters still count.
	NoCapture bool
	// OnRequest, if set, is called with each request's model ID as it
	// arrives, before any fault is applied (tests use it as a signal).
	OnRequest func(model string)
}

// Request is one request the server received.
type Request struct {
	Model  string
	Header http.Header
	Body   []byte
}

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	// URL is the endpoint to configure the SDK with (BaseEndpoint).
	URL string

	opts    Options
	srv     *httptest.Server
	closing chan struct{}
	once    sync.Once

	mu     sync.Mutex
	queue  []Fault
	sticky Fault
	reqs   []Request

	calls, tokens, texts atomic.Int64
	inFlight, maxFlight  atomic.Int64
	seq                  atomic.Int64
}

// NewServer starts a server on 127.0.0.1; Close stops it.
func NewServer(o Options) *Server {
	s := &Server{opts: o, closing: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /model/{modelId}/invoke", s.invoke)
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	return s
}

// Start is NewServer for tests: the server stops when t ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	s := NewServer(o)
	t.Cleanup(s.Close)
	return s
}

// Close releases held requests and stops the server. A second Close is
// harmless.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.closing)
		s.srv.CloseClientConnections()
		s.srv.Close()
	})
}

// Fail makes the next n requests fail with f; n <= 0 makes every request
// fail with f until Heal. Queued faults are used before a standing one.
func (s *Server) Fail(f Fault, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n <= 0 {
		s.sticky = f
		return
	}
	for range n {
		s.queue = append(s.queue, f)
	}
}

// Heal drops every queued and standing fault.
func (s *Server) Heal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue, s.sticky = nil, 0
}

func (s *Server) nextFault() Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) > 0 {
		f := s.queue[0]
		s.queue = s.queue[1:]
		return f
	}
	return s.sticky
}

// Calls is the number of requests received, faults included.
func (s *Server) Calls() int64 { return s.calls.Load() }

// Tokens is the sum of the input token counts the server reported
// (inputTextTokenCount for Titan, X-Amzn-Bedrock-Input-Token-Count for
// every model) in its 200 answers.
func (s *Server) Tokens() int64 { return s.tokens.Load() }

// Texts is the number of texts embedded in 200 answers.
func (s *Server) Texts() int64 { return s.texts.Load() }

// MaxInFlight is the largest number of requests the server was handling
// at once.
func (s *Server) MaxInFlight() int64 { return s.maxFlight.Load() }

// Requests returns copies of the requests received so far, in arrival
// order (none with Options.NoCapture).
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.reqs))
	for i, r := range s.reqs {
		out[i] = Request{Model: r.Model, Header: r.Header.Clone(), Body: slices.Clone(r.Body)}
	}
	return out
}

// CountTokens is the server's token measure: the Embedder's own when it
// has one, else about five bytes a token (Titan's rate on English prose).
func (s *Server) CountTokens(text string) int {
	if tc, ok := s.opts.Embedder.(freshen.TokenCounter); ok {
		return tc.CountTokens(text)
	}
	return max(1, (len(text)+4)/5)
}

func (s *Server) invoke(w http.ResponseWriter, r *http.Request) {
	s.calls.Add(1)
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for {
		m := s.maxFlight.Load()
		if n <= m || s.maxFlight.CompareAndSwap(m, n) {
			break
		}
	}
	model := r.PathValue("modelId")
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if !s.opts.NoCapture {
		s.mu.Lock()
		s.reqs = append(s.reqs, Request{Model: model, Header: r.Header.Clone(), Body: body})
		s.mu.Unlock()
	}
	if s.opts.OnRequest != nil {
		s.opts.OnRequest(model)
	}
	if r.Header.Get("Authorization") == "" {
		s.writeError(w, apiError{http.StatusForbidden, "MissingAuthenticationTokenException", "Missing Authentication Token"})
		return
	}
	fault := s.nextFault()
	switch fault {
	case Slow:
		select {
		case <-r.Context().Done():
		case <-s.closing:
		}
		return
	case Reset:
		reset(w)
		return
	case BadGateway:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "<html><body><h1>502 Bad Gateway</h1></body></html>\n")
		return
	}
	if e, ok := faultErrors[fault]; ok {
		s.writeError(w, e)
		return
	}
	if s.opts.Latency > 0 {
		t := time.NewTimer(s.opts.Latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		case <-s.closing:
			return
		}
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		s.writeError(w, validation("Content-Type %q is not supported, use application/json", ct))
		return
	}
	var ans *answer
	var aerr *apiError
	switch {
	case strings.Contains(model, "amazon.titan-embed-text-v2"):
		ans, aerr = s.titan(r.Context(), body)
	case strings.Contains(model, "cohere.embed-v4"):
		ans, aerr = s.cohere(r.Context(), body, true)
	case strings.Contains(model, "cohere.embed-english-v3"), strings.Contains(model, "cohere.embed-multilingual-v3"):
		ans, aerr = s.cohere(r.Context(), body, false)
	default:
		aerr = &apiError{http.StatusBadRequest, "ValidationException", "The provided model identifier is invalid."}
	}
	if aerr != nil {
		s.writeError(w, *aerr)
		return
	}
	s.writeAnswer(w, ans, fault)
}

// answer is a successful response before faults bend it.
type answer struct {
	titan      bool
	byType     bool // Cohere: {"embeddings": {"float": ...}}
	texts      []string
	vecs       [][]float32
	tokens     int
	tokensEach []int
}

func (s *Server) writeAnswer(w http.ResponseWriter, a *answer, fault Fault) {
	switch fault {
	case WrongCount:
		a.vecs = a.vecs[:len(a.vecs)-1]
	case WrongDim:
		for i := range a.vecs {
			a.vecs[i] = a.vecs[i][:len(a.vecs[i])-1]
		}
	}
	var body []byte
	if a.titan {
		m := map[string]any{"inputTextTokenCount": a.tokens}
		if len(a.vecs) > 0 {
			m["embedding"] = a.vecs[0]
		}
		body, _ = json.Marshal(m)
	} else {
		m := map[string]any{"id": s.requestID(), "texts": a.texts}
		if a.byType {
			m["embeddings"] = map[string]any{"float": a.vecs}
			m["response_type"] = "embeddings_by_type"
		} else {
			m["embeddings"] = a.vecs
			m["response_type"] = "embeddings_floats"
		}
		body, _ = json.Marshal(m)
	}
	if fault == Malformed {
		body = body[:len(body)/2]
	} else {
		s.tokens.Add(int64(a.tokens))
		s.texts.Add(int64(len(a.texts)))
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Amzn-Requestid", s.requestID())
	h.Set("X-Amzn-Bedrock-Input-Token-Count", strconv.Itoa(a.tokens))
	h.Set("X-Amzn-Bedrock-Invocation-Latency", "1")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

func (s *Server) writeError(w http.ResponseWriter, e apiError) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Amzn-Requestid", s.requestID())
	h.Set("X-Amzn-Errortype", e.code+":http://internal.amazon.com/coral/com.amazon.bedrock/")
	if s.opts.RetryAfter > 0 && (e.status == http.StatusTooManyRequests || e.status == http.StatusServiceUnavailable) {
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(s.opts.RetryAfter.Seconds()))))
	}
	w.WriteHeader(e.status)
	json.NewEncoder(w).Encode(map[string]string{"message": e.msg})
}

func (s *Server) requestID() string {
	return fmt.Sprintf("bedrocktest-%08d", s.seq.Add(1))
}

// reset closes the connection with a TCP RST, without an answer.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("bedrocktest: connection cannot be hijacked")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

func validation(format string, args ...any) apiError {
	return apiError{http.StatusBadRequest, "ValidationException", "Malformed input request: " + fmt.Sprintf(format, args...) + ", please reformat your input and try again."}
}

// checkKeys checks that body is a JSON object and rejects keys outside allowed, as
// Bedrock's schema validation does.
func checkKeys(body []byte, allowed ...string) *apiError {
	var m map[string]json.RawMessage
	d := json.NewDecoder(bytes.NewReader(body))
	if err := d.Decode(&m); err != nil || m == nil {
		e := validation("#: expected type: JSONObject")
		return &e
	}
	var extra []string
	for k := range m {
		if !slices.Contains(allowed, k) {
			extra = append(extra, "#: extraneous key ["+k+"] is not permitted")
		}
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		e := validation("%s", strings.Join(extra, ""))
		return &e
	}
	return nil
}

func (s *Server) titan(ctx context.Context, body []byte) (*answer, *apiError) {
	if aerr := checkKeys(body, "inputText", "dimensions", "normalize"); aerr != nil {
		return nil, aerr
	}
	var req struct {
		InputText  *string `json:"inputText"`
		Dimensions *int    `json:"dimensions"`
		Normalize  *bool   `json:"normalize"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		e := validation("%v", err)
		return nil, &e
	}
	if req.InputText == nil {
		e := validation("#: required key [inputText] not found")
		return nil, &e
	}
	text := *req.InputText
	if n := utf8.RuneCountInString(text); n == 0 || n > TitanMaxChars {
		e := validation("#/inputText: expected minLength: 1, maxLength: %d, actual: %d", TitanMaxChars, n)
		return nil, &e
	}
	dim := 1024
	if req.Dimensions != nil {
		dim = *req.Dimensions
		if dim != 256 && dim != 512 && dim != 1024 {
			e := validation("#/dimensions: %d is not a valid enum value", dim)
			return nil, &e
		}
	}
	tokens := s.CountTokens(text)
	if tokens > TitanMaxTokens {
		return nil, &apiError{http.StatusBadRequest, "ValidationException",
			fmt.Sprintf("400 Bad Request: Too many input tokens. Max input tokens: %d, request input token count: %d ", TitanMaxTokens, tokens)}
	}
	vecs, err := s.vectors(ctx, []string{text}, dim)
	if err != nil {
		return nil, &apiError{http.StatusInternalServerError, "InternalServerException", err.Error()}
	}
	if req.Normalize != nil && !*req.Normalize {
		scale(vecs, 3)
	}
	return &answer{titan: true, texts: []string{text}, vecs: vecs, tokens: tokens}, nil
}

func (s *Server) cohere(ctx context.Context, body []byte, v4 bool) (*answer, *apiError) {
	allowed := []string{"texts", "input_type", "truncate", "embedding_types"}
	if v4 {
		allowed = append(allowed, "output_dimension", "max_tokens")
	}
	if aerr := checkKeys(body, allowed...); aerr != nil {
		return nil, aerr
	}
	var req struct {
		Texts           []string `json:"texts"`
		InputType       string   `json:"input_type"`
		Truncate        *string  `json:"truncate"`
		EmbeddingTypes  []string `json:"embedding_types"`
		OutputDimension *int     `json:"output_dimension"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		e := validation("%v", err)
		return nil, &e
	}
	switch {
	case req.Texts == nil:
		e := validation("#: required key [texts] not found")
		return nil, &e
	case req.InputType == "":
		e := validation("#: required key [input_type] not found")
		return nil, &e
	case !slices.Contains([]string{"search_document", "search_query", "classification", "clustering"}, req.InputType):
		e := validation("#/input_type: %s is not a valid enum value", req.InputType)
		return nil, &e
	case len(req.Texts) == 0 || len(req.Texts) > CohereMaxTexts:
		e := validation("#/texts: expected minItems: 1, maxItems: %d, actual: %d", CohereMaxTexts, len(req.Texts))
		return nil, &e
	}
	if req.Truncate != nil && !slices.Contains([]string{"NONE", "START", "END", "LEFT", "RIGHT"}, *req.Truncate) {
		e := validation("#/truncate: %s is not a valid enum value", *req.Truncate)
		return nil, &e
	}
	for _, t := range req.EmbeddingTypes {
		if t != "float" {
			e := validation("#/embedding_types: this fake only answers float, not %q", t)
			return nil, &e
		}
	}
	for i, t := range req.Texts {
		if n := utf8.RuneCountInString(t); !v4 && n > CohereV3MaxChar {
			e := validation("#/texts/%d: expected maxLength: %d, actual: %d", i, CohereV3MaxChar, n)
			return nil, &e
		}
	}
	dim := 1024
	if v4 {
		dim = 1536
		if req.OutputDimension != nil {
			dim = *req.OutputDimension
			if !slices.Contains([]int{256, 512, 1024, 1536}, dim) {
				e := validation("#/output_dimension: %d is not a valid enum value", dim)
				return nil, &e
			}
		}
	}
	vecs, err := s.vectors(ctx, req.Texts, dim)
	if err != nil {
		return nil, &apiError{http.StatusInternalServerError, "InternalServerException", err.Error()}
	}
	// Cohere's vectors are not unit length (and v4's shortened ones are
	// far from it): clients normalize.
	scale(vecs, 0.5)
	a := &answer{texts: req.Texts, vecs: vecs, byType: len(req.EmbeddingTypes) > 0}
	for _, t := range req.Texts {
		a.tokens += s.CountTokens(t)
	}
	return a, nil
}

// vectors returns a unit vector of dim values per text.
func (s *Server) vectors(ctx context.Context, texts []string, dim int) ([][]float32, error) {
	out := make([][]float32, len(texts))
	if s.opts.Embedder == nil {
		for i, t := range texts {
			out[i] = hashVector(t, dim)
		}
		return out, nil
	}
	vecs, err := s.opts.Embedder.Embed(ctx, texts)
	if err != nil {
		return nil, err
	}
	if len(vecs) != len(texts) {
		return nil, fmt.Errorf("embedder returned %d vectors for %d texts", len(vecs), len(texts))
	}
	for i, v := range vecs {
		if len(v) == 0 {
			return nil, fmt.Errorf("embedder returned an empty vector")
		}
		// Tiling keeps cosine similarities when dim is a multiple of
		// len(v); truncation is what a Matryoshka model does.
		w := make([]float32, dim)
		for j := range w {
			w[j] = v[j%len(v)]
		}
		normalize(w)
		out[i] = w
	}
	return out, nil
}

// hashVector derives dim values from SHA-256(text || block index).
func hashVector(text string, dim int) []float32 {
	v := make([]float32, dim)
	buf := make([]byte, len(text)+4)
	copy(buf, text)
	for j := 0; j < dim; j += sha256.Size {
		binary.BigEndian.PutUint32(buf[len(text):], uint32(j/sha256.Size))
		sum := sha256.Sum256(buf)
		for k := 0; k < sha256.Size && j+k < dim; k++ {
			v[j+k] = float32(sum[k]) - 127.5
		}
	}
	normalize(v)
	return v
}

func normalize(v []float32) {
	var ss float64
	for _, x := range v {
		ss += float64(x) * float64(x)
	}
	if ss == 0 {
		return
	}
	inv := 1 / math.Sqrt(ss)
	for i := range v {
		v[i] = float32(float64(v[i]) * inv)
	}
}

func scale(vecs [][]float32, k float32) {
	for _, v := range vecs {
		for i := range v {
			v[i] *= k
		}
	}
}
