// Package httpapi serves freshen's HTTP API: search, status, one object's
// ledger view, health, readiness and metrics, and mounts the webhook
// receiver. Handlers only read; the one write path is the webhook, which
// queues changes in the ledger.
package httpapi

import (
	"context"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
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
	Search(ctx context.Context, query string, k int, prefix string, filters ...freshen.Filter) ([]app.SearchHit, error)
	Status(ctx context.Context) (app.Status, error)
	State(ctx context.Context, key string) (freshen.KeyState, bool, error)
	// Wait returns once a version of a key is searchable (app.App.Wait).
	Wait(ctx context.Context, key, etag, versionID string) (app.WaitResult, error)
	// OldestPending is when the oldest change not yet searchable
	// happened (zero when there is none).
	OldestPending(ctx context.Context) (time.Time, error)
	// DeadLetters lists failed (and with skipped, skipped) objects whose
	// reason contains reason (app.App.DeadLetters).
	DeadLetters(ctx context.Context, skipped bool, reason string, limit int) ([]app.DeadLetter, error)
	// Redrive queues keys again (app.App.Redrive).
	Redrive(ctx context.Context, keys []string) (int, error)
	// Activity is what this process did lately (app.App.Activity).
	Activity(ctx context.Context) (app.Activity, error)
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
	mux.HandleFunc("GET /v1/wait", s.auth(s.wait))
	mux.HandleFunc("GET /v1/objects/{key...}", s.auth(s.object))
	mux.HandleFunc("POST /v1/objects/{key...}", s.auth(s.objectAction))
	mux.HandleFunc("GET /v1/dead-letters", s.auth(s.deadLetters))
	mux.HandleFunc("GET /v1/activity", s.auth(s.activity))
	// The dashboard is a page with no data in it: everything it shows
	// comes from the API above, behind the same token.
	mux.HandleFunc("GET /{$}", dashboard)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", s.readyz)
	metrics := promhttp.HandlerFor(s.cfg.Gather, promhttp.HandlerOpts{}).ServeHTTP
	if !s.cfg.MetricsPublic {
		metrics = s.auth(metrics)
	}
	mux.HandleFunc("GET /metrics", metrics)
	return mux
}

//go:embed dashboard/index.html
var dashboardHTML []byte

// dashboard serves the dashboard page, embedded in the binary.
func dashboard(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'")
	w.Write(dashboardHTML)
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
	var filters []freshen.Filter
	for _, v := range q["filter"] {
		f, err := freshen.ParseFilter(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		filters = append(filters, f)
	}
	ctx := r.Context()
	// Waiting for fresh-as-of versions takes no search turn.
	if !s.freshAsOf(w, r) {
		return
	}
	if !s.turn(ctx) {
		writeError(w, http.StatusServiceUnavailable, "search abandoned while waiting for a turn: "+ctx.Err().Error())
		return
	}
	defer func() { <-s.searches }()
	if oldest, err := s.cfg.Backend.OldestPending(ctx); err == nil {
		age := 0.0
		if !oldest.IsZero() {
			age = max(time.Since(oldest).Seconds(), 0)
		}
		w.Header().Set("Freshen-Oldest-Pending-Seconds", strconv.FormatFloat(age, 'f', 3, 64))
	}
	hits, err := s.cfg.Backend.Search(ctx, query, k, q.Get("prefix"), filters...)
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

// Wait limits: GET /v1/wait's timeout, and how long a search waits for
// its fresh-as-of versions.
const (
	defaultWait   = 30 * time.Second
	maxWait       = 5 * time.Minute
	maxFreshWait  = 30 * time.Second
	defaultFresh  = 10 * time.Second
	maxFreshAsOfs = 100
)

// wait is GET /v1/wait?key=K&etag=E|version-id=V&timeout=30s: 200 once
// that version (or a newer one) is searchable, or, with neither, once no
// change of the key is pending; 408 with the current state on timeout;
// 404 when the key is gone.
func (s *Server) wait(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	key := q.Get("key")
	if key == "" {
		writeError(w, http.StatusBadRequest, "key is required")
		return
	}
	timeout := defaultWait
	if v := q.Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > maxWait {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("timeout %q: want a duration up to %s, e.g. 30s", v, maxWait))
			return
		}
		timeout = d
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	res, err := s.cfg.Backend.Wait(ctx, key, q.Get("etag"), q.Get("version-id"))
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, res)
	case errors.Is(err, app.ErrGone):
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "the key is gone: this version will never be searchable", "state": res})
	case errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil:
		writeJSON(w, http.StatusRequestTimeout, map[string]any{"error": "not searchable within " + timeout.String(), "state": res})
	case freshen.IsPermanent(err):
		writeError(w, http.StatusBadRequest, err.Error())
	default:
		writeError(w, http.StatusServiceUnavailable, err.Error())
	}
}

// freshAsOf waits, before a search, for each fresh-as-of=KEY:ETAG version
// to be searchable, up to fresh-timeout (default 10s). Versions still not
// searchable then are named in the Freshen-Stale header; the search
// answers anyway. It reports false when it answered the request itself
// (a bad parameter).
func (s *Server) freshAsOf(w http.ResponseWriter, r *http.Request) bool {
	q := r.URL.Query()
	pairs := q["fresh-as-of"]
	if len(pairs) == 0 {
		return true
	}
	if len(pairs) > maxFreshAsOfs {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("at most %d fresh-as-of versions", maxFreshAsOfs))
		return false
	}
	timeout := defaultFresh
	if v := q.Get("fresh-timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > maxFreshWait {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("fresh-timeout %q: want a duration up to %s", v, maxFreshWait))
			return false
		}
		timeout = d
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	var stale []string
	for _, p := range pairs {
		// ETags hold no colon; keys may.
		i := strings.LastIndex(p, ":")
		if i <= 0 || i == len(p)-1 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("fresh-as-of %q: want KEY:ETAG", p))
			return false
		}
		key, etag := p[:i], p[i+1:]
		if res, err := s.cfg.Backend.Wait(ctx, key, etag, ""); err != nil && !errors.Is(err, app.ErrGone) || err == nil && !res.Searchable {
			stale = append(stale, url.QueryEscape(key)) // keys may hold anything a header may not
		}
	}
	if len(stale) > 0 {
		w.Header().Set("Freshen-Stale", strings.Join(stale, ", "))
	}
	return true
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

// objectAction is POST /v1/objects/{key}/redrive: the key is queued
// again (a failed object is retried from scratch).
func (s *Server) objectAction(w http.ResponseWriter, r *http.Request) {
	key, ok := strings.CutSuffix(r.PathValue("key"), "/redrive")
	if !ok {
		writeError(w, http.StatusNotFound, "unknown action: POST /v1/objects/{key}/redrive re-drives a key")
		return
	}
	n, err := s.cfg.Backend.Redrive(r.Context(), []string{key})
	switch {
	case errors.Is(err, freshen.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
		return
	case freshen.IsPermanent(err):
		writeError(w, http.StatusBadRequest, err.Error())
		return
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"key": key, "queued": n == 1})
}

// deadLetters is GET /v1/dead-letters?skipped=true&reason=SUBSTR&limit=N
// (default 1,000).
func (s *Server) deadLetters(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 1000
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > app.MaxDeadLetters {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit must be a number between 1 and %d", app.MaxDeadLetters))
			return
		}
		limit = n
	}
	dl, err := s.cfg.Backend.DeadLetters(r.Context(), q.Get("skipped") == "true", q.Get("reason"), limit)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, dl)
}

// activity is GET /v1/activity: this process's last hour, per minute.
func (s *Server) activity(w http.ResponseWriter, r *http.Request) {
	a, err := s.cfg.Backend.Activity(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, a)
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
