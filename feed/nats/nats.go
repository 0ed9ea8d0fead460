package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/feed/internal/consume"
)

const origin = "nats"

// Retry pacing of setup and fetch failures (the client reconnects on its
// own; these only pace JetStream API calls while it does).
const (
	minBackoff = 250 * time.Millisecond
	maxBackoff = 10 * time.Second
)

// Feed consumes S3 event notifications from a JetStream durable pull
// consumer. It is a freshen.Feed.
type Feed struct {
	cfg Config
	log *slog.Logger
	// fetchWait bounds one pull request (a long poll: it returns as soon
	// as messages arrive).
	fetchWait time.Duration
	started   atomic.Bool

	warnMalformed, warnPut, warnFetch consume.Throttle

	// afterPut, set by tests, runs after a successful Put and before the
	// acks; true makes Run return at once without acking, as a process
	// killed at that moment would.
	afterPut func() bool
}

var _ freshen.Feed = (*Feed)(nil)

// New builds the feed; it does not connect (Run does). A nil log discards.
func New(cfg Config, log *slog.Logger) (*Feed, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	return &Feed{
		cfg:       cfg,
		log:       log.With("feed", origin, "stream", cfg.Stream, "durable", cfg.Durable),
		fetchWait: 30 * time.Second,
	}, nil
}

// Name implements freshen.Feed.
func (f *Feed) Name() string { return origin }

// Run implements freshen.Feed. It connects (retrying forever while no
// server answers), creates the stream if it is missing, creates or
// updates the durable consumer and delivers its messages to sink until
// ctx is done; then it closes its connection and returns nil. It returns
// an error only for a configuration JetStream refuses before the first
// message (a subject no stream captures, a durable of another kind), or
// when the client gives up its connection.
func (f *Feed) Run(ctx context.Context, sink freshen.Sink) error {
	if !f.started.CompareAndSwap(false, true) {
		return errors.New("nats: Run called twice")
	}
	r := &run{Feed: f, sink: sink}
	nc, err := natsgo.Connect(f.cfg.URL,
		natsgo.Name("freshen "+f.cfg.Durable),
		natsgo.MaxReconnects(-1),
		natsgo.RetryOnFailedConnect(true),
		natsgo.IgnoreAuthErrorAbort(),
		natsgo.ReconnectWait(time.Second),
		natsgo.DisconnectErrHandler(func(_ *natsgo.Conn, err error) {
			if err != nil && ctx.Err() == nil {
				f.log.Warn("disconnected from NATS; reconnecting", "err", err)
			}
		}),
		natsgo.ConnectHandler(func(c *natsgo.Conn) {
			f.log.Info("connected to NATS", "server", c.ConnectedUrlRedacted())
		}),
		natsgo.ReconnectHandler(func(c *natsgo.Conn) {
			f.log.Info("reconnected to NATS", "server", c.ConnectedUrlRedacted())
			r.reconnected()
		}),
		natsgo.ErrorHandler(func(_ *natsgo.Conn, _ *natsgo.Subscription, err error) {
			f.log.Warn("NATS client error", "err", err)
		}),
	)
	if err != nil {
		return fmt.Errorf("nats: connect %s: %w", redact(f.cfg.URL), err)
	}
	defer func() {
		// Acks are fire-and-forget publishes: send what is buffered.
		if nc.IsConnected() {
			nc.FlushTimeout(time.Second)
		}
		nc.Close()
	}()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	return r.loop(ctx, nc, js)
}

// run is the state of one Run.
type run struct {
	*Feed
	sink freshen.Sink
	// resetup asks the loop to check the stream and consumer again (after
	// a reconnect: the server may have lost them).
	resetup     atomic.Bool
	mu          sync.Mutex
	cancelFetch context.CancelFunc
}

// reconnected abandons the current pull request: it died with the old
// connection, and waiting for its heartbeat to time out would stall.
// Called on the client's callback goroutine.
func (r *run) reconnected() {
	r.resetup.Store(true)
	r.mu.Lock()
	if r.cancelFetch != nil {
		r.cancelFetch()
	}
	r.mu.Unlock()
}

func (r *run) setCancel(c context.CancelFunc) {
	r.mu.Lock()
	r.cancelFetch = c
	r.mu.Unlock()
}

func (r *run) loop(ctx context.Context, nc *natsgo.Conn, js jetstream.JetStream) error {
	var cons jetstream.Consumer
	ready := false
	backoff := consume.Backoff{Min: minBackoff, Max: maxBackoff}
	for ctx.Err() == nil {
		if nc.IsClosed() {
			return fmt.Errorf("nats: connection closed: %v", nc.LastError())
		}
		if cons == nil || r.resetup.Swap(false) {
			c, err := r.setup(ctx, js)
			if err != nil {
				if ctx.Err() != nil {
					break
				}
				if !ready && permanent(err) {
					return err
				}
				if r.warnFetch.OK() {
					r.log.Warn("cannot set up the JetStream consumer; retrying", "err", err, "url", redact(r.cfg.URL))
				}
				cons = nil
				if !backoff.Sleep(ctx) {
					break
				}
				continue
			}
			if !ready {
				r.log.Info("consuming S3 events", "subject", r.cfg.Subject, "url", redact(r.cfg.URL))
			}
			cons, ready = c, true
		}
		crashed, err := r.fetch(ctx, cons)
		if crashed {
			return nil
		}
		if err != nil && ctx.Err() == nil {
			if r.warnFetch.OK() {
				r.log.Warn("fetching from JetStream failed; retrying", "err", err)
			}
			r.resetup.Store(true)
			if !backoff.Sleep(ctx) {
				break
			}
			continue
		}
		backoff.Reset()
	}
	return nil
}

// setup makes sure the stream and the durable consumer exist.
func (r *run) setup(ctx context.Context, js jetstream.JetStream) (jetstream.Consumer, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, r.cfg.Stream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        r.cfg.Stream,
			Description: "S3 event notifications for freshen",
			Subjects:    []string{r.cfg.Subject},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			Discard:     jetstream.DiscardOld,
			MaxAge:      StreamMaxAge,
		})
		switch {
		case err == nil:
			r.log.Info("created the JetStream stream", "subject", r.cfg.Subject, "max-age", StreamMaxAge)
		case errors.Is(err, jetstream.ErrStreamNameAlreadyInUse):
			// Another process created it meanwhile: use it.
		default:
			return nil, fmt.Errorf("nats: create stream %s on subject %s: %w", r.cfg.Stream, r.cfg.Subject, err)
		}
	case err != nil:
		return nil, fmt.Errorf("nats: stream %s: %w", r.cfg.Stream, err)
	default:
		// JetStream accepts a consumer filtered on a subject its stream
		// does not capture; it would just never receive anything.
		if subs := st.CachedInfo().Config.Subjects; len(subs) > 0 && !slices.ContainsFunc(subs, func(p string) bool { return subjectWithin(r.cfg.Subject, p) }) {
			return nil, fmt.Errorf("nats: stream %s captures %v, not subject %s: %w", r.cfg.Stream, subs, r.cfg.Subject, errNotCaptured)
		}
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, r.cfg.Stream, jetstream.ConsumerConfig{
		Durable:       r.cfg.Durable,
		Description:   "freshen: S3 changes to index",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       r.cfg.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: r.cfg.MaxInFlight,
		FilterSubject: r.cfg.Subject,
	})
	if err != nil {
		return nil, fmt.Errorf("nats: consumer %s on stream %s (subject %s): %w", r.cfg.Durable, r.cfg.Stream, r.cfg.Subject, err)
	}
	return cons, nil
}

// permanent reports a configuration retrying cannot fix: a subject the
// stream does not capture, or a request JetStream refused as such (400:
// subjects overlapping another stream's, a durable of another kind).
func permanent(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, errNotCaptured) || errors.As(err, &apiErr) && apiErr.Code == 400
}

var errNotCaptured = errors.New("publish the events on one of its subjects or configure another stream")

// subjectWithin reports whether every subject matching sub also matches
// pattern (both may hold wildcards).
func subjectWithin(sub, pattern string) bool {
	s, p := strings.Split(sub, "."), strings.Split(pattern, ".")
	for i, pt := range p {
		if pt == ">" {
			return len(s) > i
		}
		if i >= len(s) || s[i] == ">" || (pt != "*" && pt != s[i]) {
			return false
		}
	}
	return len(s) == len(p)
}

// fetch runs one pull request and handles what it brings, in groups of
// the messages that are there together. It reports whether afterPut
// asked to stop as if killed.
func (r *run) fetch(ctx context.Context, cons jetstream.Consumer) (crashed bool, err error) {
	fctx, cancel := context.WithTimeout(ctx, r.fetchWait)
	defer cancel()
	r.setCancel(cancel)
	defer r.setCancel(nil)
	if r.resetup.Load() {
		return false, nil // reconnected before the cancel was in place
	}
	batch, err := cons.Fetch(r.cfg.MaxInFlight, jetstream.FetchContext(fctx))
	if err != nil {
		return false, err
	}
	msgs := batch.Messages()
	for m := range msgs {
		group := []jetstream.Msg{m}
	more:
		for len(group) < r.cfg.MaxInFlight {
			select {
			case m, ok := <-msgs:
				if !ok {
					break more
				}
				group = append(group, m)
			default:
				break more
			}
		}
		if r.handle(ctx, group) {
			return true, nil
		}
	}
	if err := batch.Error(); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return false, err
	}
	return false, nil
}

// handle parses a group of messages, puts their changes in one call and
// settles each message. It reports whether afterPut asked to stop.
func (r *run) handle(ctx context.Context, group []jetstream.Msg) (crashed bool) {
	r.sink.Received(origin, len(group))
	now := time.Now()
	var changes []freshen.Change
	var held []jetstream.Msg
	for _, m := range group {
		cs, err := consume.Changes(r.sink, origin, m.Data(), now, nil)
		if err != nil && r.warnMalformed.OK() {
			r.log.Warn("malformed event; acknowledged and dropped", "err", err, "subject", m.Subject(), "bytes", len(m.Data()))
		}
		if len(cs) == 0 {
			r.ack(m)
			continue
		}
		changes = append(changes, cs...)
		held = append(held, m)
	}
	if len(held) == 0 {
		return false
	}
	if ctx.Err() != nil {
		// Shutting down: hand them back now rather than after AckWait.
		nakAll(held, shutdownNak)
		return false
	}
	if err := r.put(ctx, changes, held); err != nil {
		if ctx.Err() != nil {
			nakAll(held, shutdownNak)
			return false
		}
		if r.warnPut.OK() {
			r.log.Error("could not queue events; they will be delivered again", "err", err, "messages", len(held))
		}
		nakAll(held, r.retryDelay)
		return false
	}
	if r.afterPut != nil && r.afterPut() {
		return true
	}
	for _, m := range held {
		r.ack(m)
	}
	return false
}

// put calls sink.Put, keeping the messages from being redelivered while
// it runs.
func (r *run) put(ctx context.Context, changes []freshen.Change, msgs []jetstream.Msg) error {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(r.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				for _, m := range msgs {
					m.InProgress()
				}
			}
		}
	}()
	err := r.sink.Put(ctx, origin, changes)
	close(stop)
	<-done
	return err
}

// retryDelay is the Nak delay after a failed Put: 1s doubling with each
// delivery up to 1 min, and never beyond AckWait (a failed Put is retried
// at least as soon as a lost ack would be).
func (r *run) retryDelay(m jetstream.Msg) time.Duration {
	n := uint64(1)
	if md, err := m.Metadata(); err == nil && md.NumDelivered > 0 {
		n = md.NumDelivered
	}
	return min(time.Second<<min(n-1, 6), time.Minute, r.cfg.AckWait)
}

func (r *run) ack(m jetstream.Msg) {
	if err := m.Ack(); err != nil {
		r.log.Debug("ack failed; the message will be delivered again", "err", err)
	}
}

// shutdownNak delays the redelivery of messages handed back at shutdown
// by a moment: redelivered at once, one could go to this process's own
// pull request, which the server keeps until it sees the connection
// close, and then wait out AckWait.
func shutdownNak(jetstream.Msg) time.Duration { return time.Second }

func nakAll(msgs []jetstream.Msg, delay func(jetstream.Msg) time.Duration) {
	for _, m := range msgs {
		if d := delay(m); d > 0 {
			m.NakWithDelay(d)
		} else {
			m.Nak()
		}
	}
}
