package nats

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sink records what the feed hands it. hook, if set, runs at the start
// of every Put; an error from it fails the Put, which records nothing.
type sink struct {
	mu       sync.Mutex
	puts     [][]freshen.Change
	attempts int
	received int
	drops    map[string]int
	hook     func(ctx context.Context, changes []freshen.Change) error
	// entered receives a value (if there is room) each time Put starts.
	entered chan []freshen.Change
}

func newSink() *sink {
	return &sink{drops: map[string]int{}, entered: make(chan []freshen.Change, 100)}
}

func (s *sink) Put(ctx context.Context, origin string, changes []freshen.Change) error {
	if origin != "nats" {
		return fmt.Errorf("origin %q", origin)
	}
	s.mu.Lock()
	s.attempts++
	hook := s.hook
	s.mu.Unlock()
	select {
	case s.entered <- changes:
	default:
	}
	if hook != nil {
		if err := hook(ctx, changes); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.puts = append(s.puts, append([]freshen.Change(nil), changes...))
	return nil
}

func (s *sink) Received(_ string, n int) { s.mu.Lock(); s.received += n; s.mu.Unlock() }

func (s *sink) Drop(_, reason string, n int) { s.mu.Lock(); s.drops[reason] += n; s.mu.Unlock() }

func (s *sink) setHook(h func(context.Context, []freshen.Change) error) {
	s.mu.Lock()
	s.hook = h
	s.mu.Unlock()
}

// count is how many recorded changes are a kind of bucket/key.
func (s *sink) count(key string, kind freshen.ChangeKind) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, p := range s.puts {
		for _, c := range p {
			if c.Key == key && c.Kind == kind {
				n++
			}
		}
	}
	return n
}

func (s *sink) changes() []freshen.Change {
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []freshen.Change
	for _, p := range s.puts {
		all = append(all, p...)
	}
	return all
}

func (s *sink) stats() (attempts, received int, drops map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := map[string]int{}
	for k, v := range s.drops {
		d[k] = v
	}
	return s.attempts, s.received, d
}

// bundle is a NATS server and a publisher for one test.
type bundle struct {
	srv *testenv.NATS
	cfg Config
	js  jetstream.JetStream
}

// setup starts a NATS server and a client that publishes to it; the
// feed configuration has a short AckWait so redeliveries come fast.
func setup(t *testing.T) *bundle {
	t.Helper()
	srv := testenv.StartNATS(t, "")
	return newBundle(t, srv, Config{URL: srv.URL(), Stream: "S3", Subject: "s3.events", AckWait: time.Second})
}

func newBundle(t *testing.T, srv *testenv.NATS, cfg Config) *bundle {
	t.Helper()
	nc, err := natsgo.Connect(srv.URL(), natsgo.MaxReconnects(-1), natsgo.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return &bundle{srv: srv, cfg: cfg, js: js}
}

// running is one Run of a feed.
type running struct {
	f      *Feed
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// start runs a new feed on s until the test ends (or stop) and waits
// until its consumer exists.
func (b *bundle) start(t *testing.T, s freshen.Sink, edit ...func(*Feed)) *running {
	t.Helper()
	f, err := New(b.cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range edit {
		e(f)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{f: f, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- f.Run(ctx, s) }()
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	b.waitConsumer(t)
	return r
}

// stop cancels Run and returns what it returned.
func (r *running) stop() error {
	r.cancel()
	return r.wait()
}

// wait waits for Run to return (at most 10s).
func (r *running) wait() error {
	r.once.Do(func() {
		select {
		case r.err = <-r.done:
		case <-time.After(10 * time.Second):
			r.err = errors.New("Run did not return within 10s")
		}
	})
	return r.err
}

func (b *bundle) waitConsumer(t *testing.T) {
	t.Helper()
	eventually(t, "the durable consumer exists", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := b.js.Consumer(ctx, b.cfg.Stream, b.cfg.withDefaults().Durable)
		return err == nil
	})
}

// publish stores body in the stream (retrying while the server
// restarts) and returns its stream sequence.
func (b *bundle) publish(t *testing.T, body []byte) uint64 {
	t.Helper()
	var seq uint64
	eventually(t, "publish", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		ack, err := b.js.Publish(ctx, b.cfg.Subject, body)
		if err != nil {
			return false
		}
		seq = ack.Sequence
		return true
	})
	return seq
}

func (b *bundle) info(t *testing.T) *jetstream.ConsumerInfo {
	t.Helper()
	var info *jetstream.ConsumerInfo
	eventually(t, "consumer info", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c, err := b.js.Consumer(ctx, b.cfg.Stream, b.cfg.withDefaults().Durable)
		if err != nil {
			return false
		}
		info = c.CachedInfo()
		return true
	})
	return info
}

// waitAllAcked waits until every message of the stream is acked: none
// pending delivery, none delivered and unacked. An acked message is never
// delivered again, so this also proves there is no redelivery to come.
func (b *bundle) waitAllAcked(t *testing.T) *jetstream.ConsumerInfo {
	t.Helper()
	var info *jetstream.ConsumerInfo
	eventually(t, "every message acked", func() bool {
		info = b.info(t)
		return info.NumPending == 0 && info.NumAckPending == 0
	})
	return info
}

// eventually polls cond until it holds, failing the test after 15s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// event is an S3 notification as versitygw publishes it (the key not
// URL-encoded).
func event(bucket, key, name, sequencer string) []byte {
	return []byte(`{"Records":[{"eventVersion":"2.2","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":"2026-11-26T07:42:08Z",` +
		`"eventName":"` + name + `","s3":{"s3SchemaVersion":"1.0","configurationId":"webhook-global","bucket":{"name":"` + bucket +
		`"},"object":{"key":"` + key + `","size":14,"eTag":"\"e\"","versionId":null,"sequencer":"` + sequencer + `"}}}]}`)
}

// testLogger logs to the test's output until the test ends (the client's
// callbacks may outlive Run by a moment).
func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{w: t.Output()}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	mu   sync.Mutex
	w    io.Writer
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return len(p), nil
	}
	return w.w.Write([]byte(strings.TrimRight(string(p), "\n") + "\n"))
}
