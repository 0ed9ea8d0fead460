// Package feedtest is the conformance suite every freshen.Feed passes:
// call Run from the feed's tests with a constructor that returns a fresh
// feed and a way to publish raw event messages on its transport.
//
// It also holds what the feeds' own tests share: a Sink that records
// what a feed hands it, Start to run a feed for one test, Eventually,
// Logger and CheckValidate.
package feedtest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/freshen-io/freshen"
)

// Delivery is the fate of one published message as its transport sees
// it: acknowledged (done: never delivered again) or not (the transport
// redelivers it, or tells its sender to retry).
type Delivery struct {
	once  sync.Once
	done  chan struct{}
	acked bool
}

// NewDelivery returns a pending delivery and the function that settles
// it; harnesses call settle once the transport has decided.
func NewDelivery() (*Delivery, func(acked bool)) {
	d := &Delivery{done: make(chan struct{})}
	return d, func(acked bool) {
		d.once.Do(func() {
			d.acked = acked
			close(d.done)
		})
	}
}

// Settled reports whether the transport has decided yet.
func (d *Delivery) Settled() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// Wait returns whether the message was acknowledged.
func (d *Delivery) Wait(ctx context.Context) (bool, error) {
	select {
	case <-d.done:
		return d.acked, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// Harness is one feed under test.
type Harness struct {
	// Feed is the feed, not yet running.
	Feed freshen.Feed
	// Publish sends body (an S3 event notification as the transport
	// carries it) and returns its delivery. It is called only while the
	// feed runs.
	Publish func(ctx context.Context, body []byte) *Delivery
	// Bucket is the bucket the events name.
	Bucket string
}

// NewHarness returns a fresh harness.
type NewHarness func(t *testing.T) Harness

// Event returns an S3 "ObjectCreated:Put" notification for bucket/key in
// the AWS format (the key URL-encoded).
func Event(bucket, key string) []byte {
	return []byte(`{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":"2026-11-26T07:42:08.000Z",` +
		`"eventName":"ObjectCreated:Put","s3":{"s3SchemaVersion":"1.0","configurationId":"c","bucket":{"name":"` + bucket +
		`","arn":"arn:aws:s3:::` + bucket + `"},"object":{"key":"` + key + `","size":14,"eTag":"0123456789abcdef","sequencer":"0A1B2C3D4E5F678901"}}}]}`)
}

// TestEvent is the s3:TestEvent a store sends when notifications are set up.
func TestEvent(bucket string) []byte {
	return []byte(`{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-26T07:42:08.000Z","Bucket":"` + bucket + `","RequestId":"R","HostId":"H"}`)
}

// running starts h.Feed on a fresh sink and stops it when the test ends.
func running(t *testing.T, newHarness NewHarness) (Harness, *Sink) {
	t.Helper()
	h := newHarness(t)
	sink := NewSink("")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Feed.Run(ctx, sink) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("Run returned %v after its context was cancelled", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10s of its context being cancelled")
		}
	})
	return h, sink
}

func wait(t *testing.T, d *Delivery) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	acked, err := d.Wait(ctx)
	if err != nil {
		t.Fatalf("delivery not settled: %v", err)
	}
	return acked
}

// Run checks the freshen.Feed contract.
func Run(t *testing.T, newHarness NewHarness) {
	t.Run("DeliversChanges", func(t *testing.T) {
		h, sink := running(t, newHarness)
		if !wait(t, h.Publish(context.Background(), Event(h.Bucket, "docs/a+b%C3%BC.md"))) {
			t.Fatal("a valid event was not acknowledged")
		}
		puts := sink.Puts()
		_, received, _ := sink.Stats()
		if len(puts) != 1 || len(puts[0]) == 0 {
			t.Fatalf("puts = %+v", puts)
		}
		found := false
		for _, c := range puts[0] {
			found = found || (c.Bucket == h.Bucket && c.Key == "docs/a bü.md" && c.Kind == freshen.ChangeUpsert)
		}
		if !found {
			t.Fatalf("changes %+v lack the decoded key %q", puts[0], "docs/a bü.md")
		}
		if received < 1 {
			t.Fatalf("received = %d", received)
		}
		if h.Feed.Name() == "" {
			t.Fatal("Name() is empty")
		}
	})
	t.Run("AcksOnlyAfterTheSinkReturns", func(t *testing.T) {
		h, sink := running(t, newHarness)
		release := sink.Hold()
		d := h.Publish(context.Background(), Event(h.Bucket, "slow.md"))
		select {
		case <-sink.Entered:
		case <-time.After(10 * time.Second):
			t.Fatal("the feed never called Put")
		}
		// An ack sent before (or while) Put runs reaches the transport
		// within moments: watch for it while Put is held.
		for deadline := time.Now().Add(500 * time.Millisecond); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if d.Settled() {
				t.Fatal("the message was settled while Put had not returned")
			}
		}
		release()
		if !wait(t, d) {
			t.Fatal("not acknowledged after Put returned nil")
		}
	})
	t.Run("FailedPutIsNotAcked", func(t *testing.T) {
		h, sink := running(t, newHarness)
		sink.SetHook(func(context.Context, []freshen.Change) error { return errors.New("ledger is down") })
		if wait(t, h.Publish(context.Background(), Event(h.Bucket, "a.md"))) {
			t.Fatal("acknowledged although Put failed")
		}
	})
	t.Run("MalformedIsCountedAndAcked", func(t *testing.T) {
		h, sink := running(t, newHarness)
		for _, body := range []string{`{"Records":[`, `{"not":"an event"}`, "\x00\xff binary"} {
			if !wait(t, h.Publish(context.Background(), []byte(body))) {
				t.Fatalf("malformed %q not acknowledged: it would be redelivered forever", body)
			}
		}
		puts := sink.Puts()
		_, _, drops := sink.Stats()
		if len(puts) != 0 || drops["malformed"] != 3 {
			t.Fatalf("puts = %v, drops = %v; want 3 malformed and nothing queued", puts, drops)
		}
	})
	t.Run("TestEventIsAckedNotQueued", func(t *testing.T) {
		h, sink := running(t, newHarness)
		if !wait(t, h.Publish(context.Background(), TestEvent(h.Bucket))) {
			t.Fatal("test event not acknowledged")
		}
		puts := sink.Puts()
		_, _, drops := sink.Stats()
		if len(puts) != 0 || drops["test"] != 1 {
			t.Fatalf("puts = %v, drops = %v", puts, drops)
		}
	})
	t.Run("DuplicatesAreHarmless", func(t *testing.T) {
		h, sink := running(t, newHarness)
		for i := 0; i < 3; i++ {
			if !wait(t, h.Publish(context.Background(), Event(h.Bucket, "dup.md"))) {
				t.Fatalf("duplicate %d not acknowledged", i)
			}
		}
		puts := sink.Puts()
		if len(puts) != 3 {
			t.Fatalf("%d puts for 3 deliveries", len(puts))
		}
		for _, p := range puts {
			if len(p) == 0 || p[0].Key != "dup.md" {
				t.Fatalf("puts = %+v", puts)
			}
		}
	})
}
