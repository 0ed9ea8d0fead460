// Package httpapi serves freshen's HTTP API: search, status, one object's
// ledger view, health, readiness and metrics, and mounts the webhook
// receiver. Handlers only read; the one write path is the webhook, which
// queues changes in the ledger.
package httpapi

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/internal/app"
)

// Server holds the API's dependencies.
type Server struct {
	app     *app.App
	gather  prometheus.Gatherer
	webhook http.Handler
	token   string
	ready   atomic.Pointer[string]
}

// New builds the API. token, if set, is required on /v1/ endpoints other
// than the webhook (which has its own).
func New(a *app.App, gather prometheus.Gatherer, webhook http.Handler, token string) *Server {
	s := &Server{app: a, gather: gather, webhook: webhook, token: token}
	notYet := "starting: the first reconcile pass has not finished"
	s.ready.Store(&notYet)
	return s
}

// SetReady marks the service ready (reason == "") or not, with a reason.
func (s *Server) SetReady(reason string) { s.ready.Store(&reason) }

// Handler returns the routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /v1/events/s3", s.webhook)
	mux.HandleFunc("GET /v1/search", s.auth(s.search))
	mux.HandleFunc("GET /v1/status", s.auth(s.status))
	mux.HandleFunc("GET /v1/objects/{key...}", s.auth(s.object))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.gather, promhttp.HandlerOpts{}))
	return mux
}

func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	if s.token == "" {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if subtle.ConstantTimeCompare([]byte(got), []byte(s.token)) != 1 {
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
	hits, err := s.app.Search(r.Context(), q.Get("q"), k, q.Get("prefix"))
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
	st, err := s.app.Status(r.Context())
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
	Sequencer string             `json:"sequencer,omitempty"`
}

func (s *Server) object(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	ctx := r.Context()
	bucket := s.app.Config.Source.Bucket
	o, err := s.app.Ledger.Object(ctx, bucket, key)
	if errors.Is(err, freshen.ErrNotFound) {
		writeError(w, http.StatusNotFound, "the ledger has no object "+strconv.Quote(key))
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	refs, err := s.app.Ledger.Chunks(ctx, bucket, key)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	v := objectView{ObjectRecord: o, ChunkRefs: refs}
	if v.ChunkRefs == nil {
		v.ChunkRefs = []freshen.ChunkRef{}
	}
	v.Queued, _ = s.app.Ledger.Queued(ctx, bucket, key)
	v.Sequencer, _ = s.app.Ledger.Sequencer(ctx, bucket, key)
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if reason := *s.ready.Load(); reason != "" {
		writeError(w, http.StatusServiceUnavailable, reason)
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
