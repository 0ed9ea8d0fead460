// Package httpapi serves freshen's HTTP API: search, status, one object's
// ledger view, health, readiness and metrics, and mounts the webhook
// receiver. Handlers only read; the one write path is the webhook, which
// queues changes in the ledger.
package httpapi

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/internal/app"
)

// Backend is what the API reads: search, status, and the ledger's view
// of one key.
type Backend interface {
	Search(ctx context.Context, query string, k int, prefix string) ([]app.SearchHit, error)
	Status(ctx context.Context) (app.Status, error)
	State(ctx context.Context, key string) (freshen.KeyState, bool, error)
}

// Config holds the API's dependencies.
type Config struct {
	Backend Backend
	Gather  prometheus.Gatherer
	// Webhook, if set, is mounted at POST /v1/events/s3.
	Webhook http.Handler
	// Token, if set, is required as a bearer token on /v1/ endpoints
	// other than the webhook (which has its own), and on /metrics unless
	// MetricsPublic.
	Token string
	// MetricsPublic serves /metrics without Token.
	MetricsPublic bool
	// MaxQueryBytes rejects longer search queries with 400 (default
	// DefaultMaxQueryBytes). Whatever the limit, the backend embeds only
	// the model's window of a query.
	MaxQueryBytes int
	// MaxConcurrent searches run at once (default: one per core); the
	// others wait their turn, or give up when their client does.
	MaxConcurrent int
	// Ready reports whether the service is ready, and if not, why; the
	// API asks it on every /readyz. Nil is always ready.
	Ready func() error
}

// DefaultMaxQueryBytes is Config.MaxQueryBytes when it is zero.
const DefaultMaxQueryBytes = 4 << 10

// Server serves the API.
type Server struct {
	cfg Config
	// searches holds a token per search running: embedding a query takes
	// a core, so more at once only make every one of them slower.
	searches chan struct{}
	// waiting counts searches waiting for a token (tests watch it).
	waiting atomic.Int64
}

// New builds the API.
func New(cfg Config) *Server {
	if cfg.Ready == nil {
		cfg.Ready = func() error { return nil }
	}
	if cfg.MaxQueryBytes <= 0 {
		cfg.MaxQueryBytes = DefaultMaxQueryBytes
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = runtime.GOMAXPROCS(0)
	}
	return &Server{cfg: cfg, searches: make(chan struct{}, cfg.MaxConcurrent)}
}

// Handler returns the routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	if s.cfg.Webhook != nil {
		mux.Handle("POST /v1/events/s3", s.cfg.Webhook)
	}
	mux.HandleFunc("GET /v1/search", s.auth(s.search))
	mux.HandleFunc("GET /v1/status", s.auth(s.status))
	mux.HandleFunc("GET /v1/objects/{key...}", s.auth(s.object))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", s.readyz)
	metrics := promhttp.HandlerFor(s.cfg.Gather, promhttp.HandlerOpts{}).ServeHTTP
	if !s.cfg.MetricsPublic {
		metrics = s.auth(metrics)
	}
	mux.HandleFunc("GET /metrics", metrics)
	return mux
}

func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	if s.cfg.Token == "" {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		got := bearerToken(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.Token)) != 1 {
			w.Header().Set("WWW-Authenticate", "Bearer")
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		h(w, r)
	}
}

// bearerToken returns the token of an Authorization header of the Bearer
// scheme, whose name is case-insensitive (RFC 9110, 11.1), and "" for any
// other header: a bare token is refused, not guessed at. (feed/webhook
// parses its header the same way.)
func bearerToken(header string) string {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimLeft(token, " ")
}

func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	k := 5
	if v := q.Get("k"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "k must be a number between 1 and 1000")
			return
		}
		k = n
	}
	query := q.Get("q")
	if len(query) > s.cfg.MaxQueryBytes {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("q is %d bytes, over the limit of %d bytes (search.max-query-bytes)", len(query), s.cfg.MaxQueryBytes))
		return
	}
	ctx := r.Context()
	if !s.turn(ctx) {
		writeError(w, http.StatusServiceUnavailable, "search abandoned while waiting for a turn: "+ctx.Err().Error())
		return
	}
	defer func() { <-s.searches }()
	hits, err := s.cfg.Backend.Search(ctx, query, k, q.Get("prefix"))
	switch {
	case errors.Is(err, app.ErrEmptyQuery):
		writeError(w, http.StatusBadRequest, "q is required")
	case err != nil && ctx.Err() != nil:
		// The client left; nobody reads this.
		writeError(w, http.StatusServiceUnavailable, "search abandoned: "+ctx.Err().Error())
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
	default:
		writeJSON(w, http.StatusOK, hits)
	}
}

// turn waits until fewer than MaxConcurrent searches run, and takes a
// place among them, which the caller gives back; it reports false, having
// taken nothing, if ctx ends first (the client left).
func (s *Server) turn(ctx context.Context) bool {
	s.waiting.Add(1)
	defer s.waiting.Add(-1)
	select {
	case s.searches <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	st, err := s.cfg.Backend.Status(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// objectView is GET /v1/objects/{key}.
type objectView struct {
	freshen.ObjectRecord
	ChunkRefs []freshen.ChunkRef `json:"chunk_refs"`
	Queued    bool               `json:"queued"`
	// Pending is set while index writes for the key may be unfinished.
	Pending bool `json:"pending_intent,omitempty"`
}

func (s *Server) object(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	st, queued, err := s.cfg.Backend.State(r.Context(), key)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if !st.Known {
		writeError(w, http.StatusNotFound, "the ledger has no object "+strconv.Quote(key))
		return
	}
	v := objectView{ObjectRecord: st.Object, ChunkRefs: st.Chunks, Queued: queued, Pending: st.Pending}
	if v.ChunkRefs == nil {
		v.ChunkRefs = []freshen.ChunkRef{}
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if err := s.cfg.Ready(); err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ready": true, "time": time.Now().UTC()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
