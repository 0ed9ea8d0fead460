// Package webhook receives S3 event notifications over HTTP, as MinIO,
// Ceph RGW and versitygw POST them (and SNS HTTP subscriptions), and
// queues the changes durably in the ledger before it answers.
//
// It must answer fast (senders time out in seconds and do not retry) and
// must never answer 2xx before the changes are committed to the queue.
package webhook

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/feed/s3event"
)

// Config configures the receiver.
type Config struct {
	// Bucket is the watched bucket; events for others are ignored.
	Bucket string
	// Match reports whether a key is watched; nil watches every key.
	Match func(key string) bool
	// Token, if set, must be presented as "Authorization: Bearer TOKEN",
	// an "X-Freshen-Token" header, or a "token" query parameter (for
	// senders such as versitygw that can only be given a URL).
	Token string
	// MaxBodyBytes bounds a request body (S3 messages are at most 64 KiB).
	MaxBodyBytes int64
}

// Observer receives counts for metrics; every method may be called from
// many goroutines.
type Observer interface {
	EventReceived(origin string)
	EventMalformed(origin string)
	EventIgnored(origin, reason string, n int)
}

// Handler is the http.Handler for POST /v1/events/s3.
type Handler struct {
	cfg  Config
	led  freshen.Ledger
	obs  Observer
	log  *slog.Logger
	wake func()
}

// New builds a handler. wake is called after changes were queued.
func New(cfg Config, led freshen.Ledger, obs Observer, log *slog.Logger, wake func()) *Handler {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 256 << 10
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if wake == nil {
		wake = func() {}
	}
	if obs == nil {
		obs = nopObserver{}
	}
	return &Handler{cfg: cfg, led: led, obs: obs, log: log, wake: wake}
}

const origin = "webhook"

type reply struct {
	Queued  int    `json:"queued"`
	Ignored int    `json:"ignored"`
	Error   string `json:"error,omitempty"`
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.fail(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	if !h.authorized(r) {
		h.fail(w, http.StatusUnauthorized, "missing or wrong token")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		// SNS HTTP subscriptions send text/plain; S3-compatible stores JSON.
		if err != nil || (mt != "application/json" && mt != "text/plain" && !strings.HasSuffix(mt, "+json")) {
			h.obs.EventMalformed(origin)
			h.fail(w, http.StatusUnsupportedMediaType, fmt.Sprintf("content type %q: want application/json", ct))
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.obs.EventMalformed(origin)
			h.fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", h.cfg.MaxBodyBytes))
			return
		}
		h.fail(w, http.StatusBadRequest, "reading body: "+err.Error())
		return
	}
	h.obs.EventReceived(origin)
	res, err := s3event.Parse(body, origin, time.Now())
	if err != nil {
		h.obs.EventMalformed(origin)
		h.log.Warn("malformed event", "err", err, "bytes", len(body))
		h.fail(w, http.StatusBadRequest, err.Error())
		return
	}
	if res.Test {
		h.obs.EventIgnored(origin, "test", 1)
		writeJSON(w, http.StatusOK, reply{})
		return
	}
	var keep []freshen.Change
	ignored := 0
	for _, c := range res.Changes {
		switch {
		case c.Bucket != h.cfg.Bucket:
			h.obs.EventIgnored(origin, "bucket", 1)
			ignored++
		case h.cfg.Match != nil && !h.cfg.Match(c.Key):
			h.obs.EventIgnored(origin, "filter", 1)
			ignored++
		default:
			keep = append(keep, c)
		}
	}
	if res.Skipped > 0 {
		h.obs.EventIgnored(origin, "kind", res.Skipped)
	}
	if len(keep) > 0 {
		// Queue even if the client gave up: the change is real.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
		defer cancel()
		if _, err := h.led.Enqueue(ctx, keep); err != nil {
			h.log.Error("queue event", "err", err)
			h.fail(w, http.StatusServiceUnavailable, "could not queue the change; the reconciler will find it")
			return
		}
		h.wake()
	}
	writeJSON(w, http.StatusOK, reply{Queued: len(keep), Ignored: ignored})
}

func (h *Handler) authorized(r *http.Request) bool {
	if h.cfg.Token == "" {
		return true
	}
	got := r.Header.Get("X-Freshen-Token")
	if a := r.Header.Get("Authorization"); got == "" && strings.HasPrefix(a, "Bearer ") {
		got = strings.TrimPrefix(a, "Bearer ")
	}
	if got == "" {
		got = r.URL.Query().Get("token")
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(h.cfg.Token)) == 1
}

func (h *Handler) fail(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, reply{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

type nopObserver struct{}

func (nopObserver) EventReceived(string)             {}
func (nopObserver) EventMalformed(string)            {}
func (nopObserver) EventIgnored(string, string, int) {}
