// Package webhook is the HTTP feed: it receives S3 event notifications as
// MinIO, Ceph RGW and versitygw POST them, and Amazon SNS HTTP(S)
// subscriptions (confirmed, and signatures verified, per configuration),
// and hands the changes to freshen's intake before it answers.
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
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/feed/s3event"
	"github.com/freshen-io/freshen/feed/sns"
)

// Config configures the receiver.
type Config struct {
	// Token, if set, must be presented as "Authorization: Bearer TOKEN",
	// an "X-Freshen-Token" header, or a "token" query parameter (for
	// senders such as versitygw that can only be given a URL).
	Token string
	// MaxBodyBytes bounds a request body (S3 messages are at most 64 KiB).
	MaxBodyBytes int64
	// SNS configures messages from Amazon SNS HTTP(S) subscriptions.
	SNS SNSConfig
}

// SNSConfig configures Amazon SNS HTTP(S) subscriptions.
type SNSConfig struct {
	// Verify checks the signature of every SNS message (the default in
	// freshen's configuration); unsigned or badly signed ones get 403.
	Verify bool
	// Hosts are the host patterns (`*` is one DNS label) that
	// certificates and SubscribeURLs may come from; empty means AWS's
	// sns.*.amazonaws.com and sns.*.amazonaws.com.cn.
	Hosts []string
	// Topics, if set, are the topic ARNs accepted; messages of any other
	// topic get 403. A valid signature proves a message came from SNS,
	// not from your topic.
	Topics []string
	// Client fetches certificates and confirms subscriptions (tests
	// replace it); nil uses a default client.
	Client *http.Client
}

// Feed is the webhook: an http.Handler for POST /v1/events/s3 that is
// also a freshen.Feed. It answers 503 until Run is called.
type Feed struct {
	cfg  Config
	log  *slog.Logger
	sns  *sns.Handler
	sink atomic.Pointer[sinkBox]
	// lastErr is when a queueing failure was last logged (unix nanos).
	lastErr atomic.Int64
}

type sinkBox struct{ freshen.Sink }

var _ freshen.Feed = (*Feed)(nil)

// New builds the webhook feed.
func New(cfg Config, log *slog.Logger) *Feed {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 256 << 10
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Feed{cfg: cfg, log: log, sns: sns.New(sns.Config{Verify: cfg.SNS.Verify, AllowedHosts: cfg.SNS.Hosts, Client: cfg.SNS.Client})}
}

const origin = "webhook"

// Name implements freshen.Feed.
func (f *Feed) Name() string { return origin }

// Run implements freshen.Feed: the handler accepts events until ctx is
// done. HTTP is served by the caller's server.
func (f *Feed) Run(ctx context.Context, sink freshen.Sink) error {
	f.sink.Store(&sinkBox{sink})
	<-ctx.Done()
	f.sink.Store(nil)
	return nil
}

type reply struct {
	Queued int    `json:"queued"`
	Error  string `json:"error,omitempty"`
}

// ServeHTTP answers 2xx only after the message's changes are queued, 4xx
// for a message that will never be accepted (the sender must not retry
// it), and 5xx when it could not be queued now.
func (f *Feed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	box := f.sink.Load()
	if box == nil {
		f.fail(w, http.StatusServiceUnavailable, "not accepting events yet")
		return
	}
	sink := box.Sink
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		f.fail(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	if !f.authorized(r) {
		sink.Drop(origin, "unauthorized", 1)
		f.fail(w, http.StatusUnauthorized, "missing or wrong token")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		// SNS HTTP subscriptions send text/plain; S3-compatible stores JSON.
		if err != nil || (mt != "application/json" && mt != "text/plain" && !strings.HasSuffix(mt, "+json")) {
			sink.Drop(origin, "malformed", 1)
			f.fail(w, http.StatusUnsupportedMediaType, fmt.Sprintf("content type %q: want application/json", ct))
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, f.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			sink.Drop(origin, "malformed", 1)
			f.fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", f.cfg.MaxBodyBytes))
			return
		}
		f.fail(w, http.StatusBadRequest, "reading body: "+err.Error())
		return
	}
	sink.Received(origin, 1)
	// Queue even if the client gave up: the change is real.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	if m, ok, err := sns.Parse(body); err != nil {
		sink.Drop(origin, "malformed", 1)
		f.log.Warn("malformed SNS message", "err", err, "bytes", len(body))
		f.fail(w, http.StatusBadRequest, err.Error())
		return
	} else if ok {
		if done := f.snsMessage(ctx, w, sink, m); done {
			return
		}
	}
	res, err := s3event.Parse(body, origin, time.Now())
	if err != nil {
		sink.Drop(origin, "malformed", 1)
		f.log.Warn("malformed event", "err", err, "bytes", len(body))
		f.fail(w, http.StatusBadRequest, err.Error())
		return
	}
	if res.Test {
		sink.Drop(origin, "test", 1)
		writeJSON(w, http.StatusOK, reply{})
		return
	}
	if res.Skipped > 0 {
		sink.Drop(origin, "kind", res.Skipped)
	}
	if err := sink.Put(ctx, origin, res.Changes); err != nil {
		// Once per 10s at most: a full disk fails every event alike.
		if now := time.Now().UnixNano(); now-f.lastErr.Load() > int64(10*time.Second) {
			f.lastErr.Store(now)
			f.log.Error("could not queue events; answering 503 until the ledger accepts writes again", "err", err)
		}
		f.fail(w, http.StatusServiceUnavailable, "could not queue the change; the reconciler will find it")
		return
	}
	writeJSON(w, http.StatusOK, reply{Queued: len(res.Changes)})
}

// snsMessage handles what is SNS-specific about m; it reports whether
// it answered the request (otherwise m is a notification to parse).
func (f *Feed) snsMessage(ctx context.Context, w http.ResponseWriter, sink freshen.Sink, m sns.Message) bool {
	if len(f.cfg.SNS.Topics) > 0 && !slices.Contains(f.cfg.SNS.Topics, m.TopicArn) {
		sink.Drop(origin, "unauthorized", 1)
		f.log.Warn("SNS message from a topic not in webhook.sns-topics; rejected", "topic", m.TopicArn, "type", m.Type)
		f.fail(w, http.StatusForbidden, fmt.Sprintf("topic %q is not accepted (webhook.sns-topics)", m.TopicArn))
		return true
	}
	untrusted := func(err error) bool {
		sink.Drop(origin, "unauthorized", 1)
		f.log.Warn("SNS message rejected", "type", m.Type, "topic", m.TopicArn, "err", err)
		f.fail(w, http.StatusForbidden, err.Error())
		return true
	}
	switch m.Type {
	case sns.TypeSubscriptionConfirmation:
		err := f.sns.Confirm(ctx, m)
		switch {
		case errors.Is(err, sns.ErrUntrusted):
			return untrusted(err)
		case err != nil:
			f.log.Error("could not confirm the SNS subscription; SNS will send the confirmation again", "topic", m.TopicArn, "err", err)
			f.fail(w, http.StatusBadGateway, err.Error())
			return true
		}
		sink.Drop(origin, "subscription", 1)
		f.log.Info("confirmed the SNS subscription", "topic", m.TopicArn)
		writeJSON(w, http.StatusOK, reply{})
		return true
	case sns.TypeUnsubscribeConfirmation:
		sink.Drop(origin, "subscription", 1)
		f.log.Warn("this webhook was unsubscribed from an SNS topic; events from it stop now", "topic", m.TopicArn)
		writeJSON(w, http.StatusOK, reply{})
		return true
	}
	if f.cfg.SNS.Verify {
		err := f.sns.Verify(ctx, m)
		switch {
		case errors.Is(err, sns.ErrUntrusted):
			return untrusted(err)
		case err != nil:
			f.log.Error("could not verify an SNS message; SNS will retry it", "err", err)
			f.fail(w, http.StatusServiceUnavailable, err.Error())
			return true
		}
	}
	return false
}

// authorized checks the token in X-Freshen-Token, else in an
// Authorization header of the Bearer scheme (its name is
// case-insensitive, RFC 9110 11.1; a bare token is refused, not guessed
// at), else in ?token= for senders that only take a URL. internal/httpapi
// parses the header the same way.
func (f *Feed) authorized(r *http.Request) bool {
	if f.cfg.Token == "" {
		return true
	}
	got := r.Header.Get("X-Freshen-Token")
	if scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " "); got == "" && ok && strings.EqualFold(scheme, "Bearer") {
		got = strings.TrimLeft(token, " ")
	}
	if got == "" {
		got = r.URL.Query().Get("token")
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(f.cfg.Token)) == 1
}

func (f *Feed) fail(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, reply{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
