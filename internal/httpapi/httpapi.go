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
	"net/http"
	"strconv"
	"strings"
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
	// Token, if set, is required on /v1/ endpoints other than the
	// webhook (which has its own).
	Token string
	// Ready reports whether the service is ready, and if not, why; the
	// API asks it on every /readyz. Nil is always ready.
	Ready func() error
}

// Server serves the API.
type Server struct {
	cfg Config
}

// New builds the API.
func New(cfg Config) *Server {
	if cfg.Ready == nil {
		cfg.Ready = func() error { return nil }
	}
	return &Server{cfg: cfg}
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
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.cfg.Gather, promhttp.HandlerOpts{}))
	return mux
}

func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	if s.cfg.Token == "" {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.Token)) != 1 {
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		h(w, r)
	}
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
	hits, err := s.cfg.Backend.Search(r.Context(), q.Get("q"), k, q.Get("prefix"))
	switch {
	case errors.Is(err, app.ErrEmptyQuery):
		writeError(w, http.StatusBadRequest, "q is required")
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
	default:
		writeJSON(w, http.StatusOK, hits)
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
