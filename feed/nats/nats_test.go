package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/feed/feedtest"
	"github.com/freshen-io/freshen/feed/internal/consume"
	"github.com/freshen-io/freshen/internal/testenv"
)

// TestConformance runs the feed contract suite on a real server. A
// delivery is settled as acked when the consumer's ack floor passes the
// message, and as not acked when the server reports it Nak'ed.
func TestConformance(t *testing.T) {
	srv := testenv.StartNATS(t, "")
	var n atomic.Int64
	feedtest.Run(t, func(t *testing.T) feedtest.Harness {
		i := n.Add(1)
		b := newBundle(t, srv, Config{URL: srv.URL(), Stream: fmt.Sprintf("C%d", i), Subject: fmt.Sprintf("conf.%d", i), AckWait: time.Second})
		f, err := New(b.cfg, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		return feedtest.Harness{Feed: f, Bucket: "docs", Publish: b.tracker(t)}
	})
}

// tracker returns a Publish for feedtest that settles deliveries.
func (b *bundle) tracker(t *testing.T) func(context.Context, []byte) *feedtest.Delivery {
	nc, err := natsgo.Connect(b.srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	naked := map[uint64]func(bool){}
	_, err = nc.Subscribe("$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED."+b.cfg.Stream+"."+DefaultDurable, func(m *natsgo.Msg) {
		var adv struct {
			StreamSeq uint64 `json:"stream_seq"`
		}
		if json.Unmarshal(m.Data, &adv) == nil {
			mu.Lock()
			settle := naked[adv.StreamSeq]
			mu.Unlock()
			if settle != nil {
				settle(false)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait(); nc.Close() })
	return func(_ context.Context, body []byte) *feedtest.Delivery {
		b.waitConsumer(t)
		seq := b.publish(t, body)
		d, settle := feedtest.NewDelivery()
		mu.Lock()
		naked[seq] = settle
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !d.Settled() && ctx.Err() == nil {
				c, err := b.js.Consumer(ctx, b.cfg.Stream, DefaultDurable)
				if err == nil && c.CachedInfo().AckFloor.Stream >= seq {
					settle(true)
					return
				}
				consume.Sleep(ctx, 10*time.Millisecond)
			}
		}()
		return d
	}
}

// TestVersityGWEvents: versitygw publishes its real events to NATS; keys
// arrive exactly as written (versitygw does not URL-encode them).
func TestVersityGWEvents(t *testing.T) {
	b := setup(t)
	s := feedtest.NewSink("nats")
	b.start(t, s)
	gw := testenv.StartVersityGW(t, testenv.GWOptions{NATSURL: b.srv.URL(), NATSTopic: b.cfg.Subject})
	feedtest.VersityGWEvents(t, gw, s, "nats")
	b.waitAllAcked(t)
	if _, received, drops := s.Stats(); received < 2*len(feedtest.VersityGWKeys) || drops["test"] != 1 {
		t.Errorf("received %d, drops %v: want ≥ %d received (most events) and versitygw's test event dropped", received, drops, 2*len(feedtest.VersityGWKeys))
	}
}

// TestDuplicatesReorderedMalformed: duplicates and out-of-order events are
// all delivered (coalescing is the queue's job); malformed messages and
// test events are acked, not redelivered forever.
func TestDuplicatesReorderedMalformed(t *testing.T) {
	b := setup(t)
	b.cfg.AckWait = 10 * time.Second // no redelivery here, however loaded the machine
	s := feedtest.NewSink("nats")
	b.start(t, s)
	bodies := [][]byte{
		event("docs", "r.md", "s3:ObjectCreated:Put", "0000000002"),
		event("docs", "r.md", "s3:ObjectRemoved:Delete", "0000000001"), // older, arrives later
		event("docs", "d.md", "s3:ObjectCreated:Put", "0000000003"),
		event("docs", "d.md", "s3:ObjectCreated:Put", "0000000003"),
		[]byte(`{"Records":[`),
		[]byte("\x00\xff not json"),
		feedtest.TestEvent("docs"),
		event("docs", "x.md", "s3:ObjectRestore:Post", "0000000004"), // a kind freshen ignores
	}
	var last uint64
	for _, body := range bodies {
		last = b.publish(t, body)
	}
	info := b.waitAllAcked(t)
	if info.AckFloor.Stream != last || info.NumRedelivered != 0 {
		t.Errorf("ack floor %d (want %d), %d redelivered (want 0)", info.AckFloor.Stream, last, info.NumRedelivered)
	}
	if seqs := s.Sequencers("r.md"); !slices.Equal(seqs, []string{"0000000002", "0000000001"}) {
		t.Errorf("r.md sequencers %v: want both events, in delivery order", seqs)
	}
	if n := s.Count("d.md", freshen.ChangeUpsert); n != 2 {
		t.Errorf("d.md put %d times: want both duplicates", n)
	}
	_, received, drops := s.Stats()
	if received != len(bodies) || drops["malformed"] != 2 || drops["test"] != 1 || drops["kind"] != 1 {
		t.Errorf("received %d (want %d), drops %v (want malformed 2, test 1, kind 1)", received, len(bodies), drops)
	}
}

// TestKilledBetweenPutAndAck: a feed that dies after Put and before its
// ack leaves the message pending; the next feed on the durable gets it
// again and Puts it again, which is harmless.
func TestKilledBetweenPutAndAck(t *testing.T) {
	b := setup(t)
	s := feedtest.NewSink("nats")
	r := b.start(t, s, func(f *Feed) { f.afterPut = func() bool { return true } })
	seq := b.publish(t, event("docs", "killed.md", "s3:ObjectCreated:Put", "1"))
	if err := r.Wait(); err != nil {
		t.Fatal(err)
	}
	if n := s.Count("killed.md", freshen.ChangeUpsert); n != 1 {
		t.Fatalf("put %d times before the kill", n)
	}
	if info := b.info(t); info.NumAckPending != 1 || info.AckFloor.Stream >= seq {
		t.Fatalf("after the kill: %d ack pending, ack floor %d; want the message unacked", info.NumAckPending, info.AckFloor.Stream)
	}
	b.start(t, s) // redelivered once AckWait (1s) expires
	feedtest.Eventually(t, "redelivery to the restarted feed", func() bool { return s.Count("killed.md", freshen.ChangeUpsert) == 2 })
	b.waitAllAcked(t)
}

// TestCancelledDuringPut: Run returns promptly when its context ends
// during a Put, and hands the message back at once (Nak) so the next
// feed does not wait for AckWait.
func TestCancelledDuringPut(t *testing.T) {
	b := setup(t)
	b.cfg.AckWait = time.Minute // a redelivery within the test proves the Nak
	s := feedtest.NewSink("nats")
	s.SetHook(func(ctx context.Context, _ []freshen.Change) error { <-ctx.Done(); return ctx.Err() })
	r := b.start(t, s)
	b.publish(t, event("docs", "c.md", "s3:ObjectCreated:Put", "1"))
	<-s.Entered
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	s.SetHook(nil)
	b.start(t, s)
	feedtest.Eventually(t, "the message Put by the next feed", func() bool { return s.Count("c.md", freshen.ChangeUpsert) == 1 })
	b.waitAllAcked(t)
}

// TestPutFailureRedelivers: while Put fails nothing is acked and the
// message comes back (after a Nak delay); once Put works it is acked.
func TestPutFailureRedelivers(t *testing.T) {
	b := setup(t)
	s := feedtest.NewSink("nats")
	var failing atomic.Bool
	failing.Store(true)
	s.SetHook(func(context.Context, []freshen.Change) error {
		if failing.Load() {
			return errors.New("ledger is down")
		}
		return nil
	})
	b.start(t, s)
	seq := b.publish(t, event("docs", "f.md", "s3:ObjectCreated:Put", "1"))
	feedtest.Eventually(t, "a second attempt", func() bool { n, _, _ := s.Stats(); return n >= 2 })
	if info := b.info(t); info.AckFloor.Stream >= seq {
		t.Fatalf("acked although every Put failed (ack floor %d)", info.AckFloor.Stream)
	}
	failing.Store(false)
	feedtest.Eventually(t, "the change queued", func() bool { return s.Count("f.md", freshen.ChangeUpsert) == 1 })
	b.waitAllAcked(t)
}

// TestServerRestart: the server restarts while a Put is in progress and
// a message waits in the client; the feed reconnects to the same durable,
// loses neither, and consumes what is published after the restart.
func TestServerRestart(t *testing.T) {
	b := setup(t)
	s := feedtest.NewSink("nats")
	release := s.Hold()
	b.start(t, s)
	b.publish(t, event("docs", "before-1.md", "s3:ObjectCreated:Put", "1"))
	<-s.Entered
	b.publish(t, event("docs", "before-2.md", "s3:ObjectCreated:Put", "2"))
	feedtest.Eventually(t, "both delivered, neither acked", func() bool { return b.info(t).NumAckPending == 2 })
	b.srv.Restart(t)
	release()
	b.publish(t, event("docs", "after-1.md", "s3:ObjectCreated:Put", "3"))
	for _, k := range []string{"before-1.md", "before-2.md", "after-1.md"} {
		feedtest.Eventually(t, k+" queued", func() bool { return s.Count(k, freshen.ChangeUpsert) >= 1 })
	}
	b.waitAllAcked(t)
}

// TestFirstConnectRetries: a feed started while no server answers
// connects once one does.
func TestFirstConnectRetries(t *testing.T) {
	b := setup(t)
	b.srv.Stop()
	s := feedtest.NewSink("nats")
	f, err := New(b.cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, s) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	b.srv.Restart(t)
	b.waitConsumer(t)
	b.publish(t, event("docs", "late.md", "s3:ObjectCreated:Put", "1"))
	feedtest.Eventually(t, "late.md queued", func() bool { return s.Count("late.md", freshen.ChangeUpsert) == 1 })
}

// TestExistingStream: an operator's stream is used as it is, and a
// subject it does not capture is refused at start, not retried forever.
func TestExistingStream(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	if _, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: "S3", Subjects: []string{"s3.>"}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	s := feedtest.NewSink("nats")
	b.start(t, s)
	b.publish(t, event("docs", "ops.md", "s3:ObjectCreated:Put", "1"))
	feedtest.Eventually(t, "ops.md queued", func() bool { return s.Count("ops.md", freshen.ChangeUpsert) == 1 })
	st, err := b.js.Stream(ctx, "S3")
	if err != nil {
		t.Fatal(err)
	}
	if cfg := st.CachedInfo().Config; cfg.Storage != jetstream.MemoryStorage || !slices.Equal(cfg.Subjects, []string{"s3.>"}) {
		t.Errorf("the feed changed the stream: %+v", cfg)
	}

	cfg := b.cfg
	cfg.Subject, cfg.Durable = "elsewhere", "other"
	f, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := f.Run(rctx, feedtest.NewSink("nats")); err == nil || rctx.Err() != nil {
		t.Fatalf("Run = %v, want a prompt error for a subject the stream does not capture", err)
	} else {
		t.Log(err)
	}
}

// TestSlowPutKeptAlive: a Put that outlasts AckWait does not get its
// messages redelivered meanwhile (InProgress keeps them).
func TestSlowPutKeptAlive(t *testing.T) {
	b := setup(t)
	// InProgress goes every AckWait/3: a second of slack for a loaded
	// machine, and a Put of three AckWaits.
	b.cfg.AckWait = 3 * time.Second
	s := feedtest.NewSink("nats")
	s.SetHook(func(context.Context, []freshen.Change) error { time.Sleep(9 * time.Second); return nil })
	b.start(t, s)
	b.publish(t, event("docs", "slow.md", "s3:ObjectCreated:Put", "1"))
	info := b.waitAllAcked(t)
	if attempts, _, _ := s.Stats(); attempts != 1 || info.Delivered.Consumer != 1 {
		t.Errorf("%d Puts, %d deliveries: want 1 of each", attempts, info.Delivered.Consumer)
	}
}
