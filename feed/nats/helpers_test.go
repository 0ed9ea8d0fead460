package nats

import (
	"context"
	"log/slog"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/feed/feedtest"
	"github.com/freshen-io/freshen/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

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

// start runs a new feed on s until the test ends (or Stop) and waits
// until its consumer exists.
func (b *bundle) start(t *testing.T, s freshen.Sink, edit ...func(*Feed)) *feedtest.Running {
	t.Helper()
	f, err := New(b.cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range edit {
		e(f)
	}
	r := feedtest.Start(t, f, s)
	b.waitConsumer(t)
	return r
}

func (b *bundle) waitConsumer(t *testing.T) {
	t.Helper()
	feedtest.Eventually(t, "the durable consumer exists", func() bool {
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
	feedtest.Eventually(t, "publish", func() bool {
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
	feedtest.Eventually(t, "consumer info", func() bool {
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
	feedtest.Eventually(t, "every message acked", func() bool {
		// Up to the stream's last message: a consumer that has not yet
		// counted a message just published shows nothing pending too.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		st, err := b.js.Stream(ctx, b.cfg.Stream)
		if err != nil {
			return false
		}
		info = b.info(t)
		return info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream >= st.CachedInfo().State.LastSeq
	})
	return info
}

// event is an S3 notification as versitygw publishes it (the key not
// URL-encoded).
func event(bucket, key, name, sequencer string) []byte {
	return []byte(`{"Records":[{"eventVersion":"2.2","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":"2026-11-26T07:42:08Z",` +
		`"eventName":"` + name + `","s3":{"s3SchemaVersion":"1.0","configurationId":"webhook-global","bucket":{"name":"` + bucket +
		`"},"object":{"key":"` + key + `","size":14,"eTag":"\"e\"","versionId":null,"sequencer":"` + sequencer + `"}}}]}`)
}

// testLogger logs everything the feed says to the test's output.
func testLogger(t *testing.T) *slog.Logger { return feedtest.Logger(t, slog.LevelDebug) }
