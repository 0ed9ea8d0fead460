// Package consume holds what the feeds that consume a message transport
// (SQS, NATS JetStream, Kafka) do alike: turn a message into the changes
// to Put while counting what will not be queued, pace retries, and keep
// repeated warnings from flooding the log.
package consume

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/feed/s3event"
	"github.com/freshen-io/freshen/internal/service"
)

// Changes parses one message body, received at now, for origin and
// counts on sink what it carries that will not be queued: a body that is
// not an S3 event notification as "malformed" (the error says why, for
// the caller's log), a test event as testReason(body) ("test" when
// testReason is nil), and records of kinds freshen ignores as "kind".
// It returns the changes to Put; a message with none is done with and
// may be acknowledged at once.
func Changes(sink freshen.Sink, origin string, body []byte, now time.Time, testReason func(body []byte) string) ([]freshen.Change, error) {
	res, err := s3event.Parse(body, origin, now)
	switch {
	case err != nil:
		sink.Drop(origin, "malformed", 1)
		return nil, err
	case res.Test:
		reason := "test"
		if testReason != nil {
			reason = testReason(body)
		}
		sink.Drop(origin, reason, 1)
		return nil, nil
	}
	if res.Skipped > 0 {
		sink.Drop(origin, "kind", res.Skipped)
	}
	return res.Changes, nil
}

// Sleep waits d; it reports false if ctx ended first.
func Sleep(ctx context.Context, d time.Duration) bool { return service.Sleep(ctx, d) }

// Backoff paces the retries of one kind of failure: the first delay is
// Min, each next one twice the last, up to Max. With Jitter, each delay
// is drawn from [d/2, d] instead, so that many consumers failing alike
// do not retry in step. The zero value of its state is "no failure yet".
type Backoff struct {
	Min, Max time.Duration
	Jitter   bool

	cur time.Duration
}

// Next returns the delay before the next retry.
func (b *Backoff) Next() time.Duration {
	if b.cur == 0 {
		b.cur = b.Min
	} else {
		b.cur = min(2*b.cur, b.Max)
	}
	if b.Jitter {
		return b.cur/2 + rand.N(b.cur/2+1)
	}
	return b.cur
}

// Sleep waits Next(); it reports false if ctx ended first.
func (b *Backoff) Sleep(ctx context.Context) bool { return Sleep(ctx, b.Next()) }

// Reset starts again from Min, after a success.
func (b *Backoff) Reset() { b.cur = 0 }

// LogEvery bounds repeated warnings of one kind: a broken ledger or a
// stream of garbage fails every message alike.
const LogEvery = 10 * time.Second

// Throttle lets a repeated log line through once per LogEvery. Its zero
// value lets the first one through; it is safe for concurrent use.
type Throttle struct{ last atomic.Int64 }

// OK reports whether the line may be logged now.
func (t *Throttle) OK() bool {
	now, last := time.Now().UnixNano(), t.last.Load()
	return now-last >= int64(LogEvery) && t.last.CompareAndSwap(last, now)
}
