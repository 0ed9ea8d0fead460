// Package intake is freshen's one intake path. Every feed (webhook, SQS,
// NATS, Kafka) and the reconciler hand their change hints to a Sink,
// which filters them (bucket, prefixes, globs), queues them durably in
// the ledger, wakes the workers and counts them.
//
// It must never return before the changes are durable: feeds acknowledge
// their transport when Put returns nil.
package intake

import (
	"context"
	"fmt"
	"time"

	"github.com/freshen-io/freshen"
)

// Observer receives the counts for metrics; its methods are called from
// many goroutines.
type Observer interface {
	Received(origin string, n int)
	Malformed(origin string, n int)
	Ignored(origin, reason string, n int)
}

// Queue is where the sink queues changes: the ledger's queue (or every
// live generation's).
type Queue interface {
	Enqueue(ctx context.Context, changes []freshen.Change) (int, error)
}

// Config says which changes are wanted.
type Config struct {
	// Bucket is the watched bucket; changes for others are dropped.
	Bucket string
	// Match reports whether a key is watched; nil watches every key.
	Match func(key string) bool
}

// Sink implements freshen.Sink over the ledger's queue.
type Sink struct {
	cfg  Config
	q    Queue
	obs  Observer
	wake func()
}

var _ freshen.Sink = (*Sink)(nil)

// New builds a sink. wake (may be nil) is called after changes were
// queued; obs may be nil.
func New(cfg Config, q Queue, obs Observer, wake func()) *Sink {
	if wake == nil {
		wake = func() {}
	}
	if obs == nil {
		obs = nopObserver{}
	}
	return &Sink{cfg: cfg, q: q, obs: obs, wake: wake}
}

// MaxClockSkew is how far a sender's event time may lie from the time
// the event arrives before the arrival time replaces it: queue order and
// the freshness lag must not trust a sender's clock blindly (an event
// dated 2024 would jump ahead of every real change).
const MaxClockSkew = time.Minute

// Put implements freshen.Sink. Changes for keys that cannot name an S3
// object (empty, over 1,024 bytes, invalid UTF-8, NUL bytes) are counted
// as malformed and dropped.
func (s *Sink) Put(ctx context.Context, origin string, changes []freshen.Change) error {
	now := time.Now()
	keep := make([]freshen.Change, 0, len(changes))
	for _, c := range changes {
		if t := c.EventTime; t.IsZero() || t.After(now) || t.Before(now.Add(-MaxClockSkew)) {
			c.EventTime = now
		}
		switch {
		case freshen.ValidKey(c.Key) != nil:
			s.obs.Malformed(origin, 1)
		case c.Bucket != s.cfg.Bucket:
			s.obs.Ignored(origin, "bucket", 1)
		case s.cfg.Match != nil && !s.cfg.Match(c.Key):
			s.obs.Ignored(origin, "filter", 1)
		default:
			keep = append(keep, c)
		}
	}
	_, err := s.Add(ctx, origin, keep)
	return err
}

// Add queues changes without filtering them, and returns how many keys
// were not queued yet. The reconciler uses it: it filters itself, and
// must queue keys that left the filters so that their chunks are removed.
func (s *Sink) Add(ctx context.Context, origin string, changes []freshen.Change) (int, error) {
	if len(changes) == 0 {
		return 0, nil
	}
	for i := range changes {
		if changes[i].Origin == "" {
			changes[i].Origin = origin
		}
	}
	n, err := s.q.Enqueue(ctx, changes)
	if err != nil {
		return n, fmt.Errorf("intake: queue %d change(s) from %s: %w", len(changes), origin, err)
	}
	s.wake()
	return n, nil
}

// Received implements freshen.Sink.
func (s *Sink) Received(origin string, n int) { s.obs.Received(origin, n) }

// Drop implements freshen.Sink.
func (s *Sink) Drop(origin, reason string, n int) {
	if reason == "malformed" {
		s.obs.Malformed(origin, n)
		return
	}
	s.obs.Ignored(origin, reason, n)
}

type nopObserver struct{}

func (nopObserver) Received(string, int)        {}
func (nopObserver) Malformed(string, int)       {}
func (nopObserver) Ignored(string, string, int) {}
