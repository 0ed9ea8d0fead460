package freshen

import "context"

// Feed delivers change hints from one event transport (a webhook, an SQS
// queue, a NATS JetStream consumer, a Kafka consumer group).
//
// Contract:
//   - Run delivers batches of changes to sink until ctx is done, then
//     returns nil (or the error that stopped it). It may be called once.
//   - It acknowledges a message to its transport (an HTTP 2xx, an SQS
//     delete, a NATS ack, a Kafka commit) only after sink.Put returned nil
//     for every change the message carried: the changes are durable then.
//     When Put fails it leaves the message unacknowledged, so the
//     transport redelivers it (or, for a transport without redelivery,
//     tells the sender it failed).
//   - A message it cannot parse is reported with sink.Drop(…, "malformed",
//     …) and acknowledged: it would fail again on every redelivery. So are
//     messages that carry nothing to do (test events, event kinds freshen
//     does not act on), with their own reasons.
//   - Delivering a change twice is harmless (the queue coalesces and the
//     worker reads the object's current state), so at-least-once is enough.
//   - sink may be called from many goroutines at once.
type Feed interface {
	// Name identifies the feed in metrics and logs ("webhook", "sqs").
	Name() string
	Run(ctx context.Context, sink Sink) error
}

// Sink is freshen's one intake path, shared by every feed and the
// reconciler: it filters changes (bucket, prefixes, globs), queues the
// rest durably, wakes the workers and counts. All its methods are safe
// for concurrent use.
type Sink interface {
	// Put queues changes durably; when it returns nil the feed may
	// acknowledge them. Changes for other buckets or unwatched keys are
	// counted and dropped, which is not an error.
	Put(ctx context.Context, origin string, changes []Change) error
	// Received counts n messages that origin read from its transport,
	// whatever becomes of them.
	Received(origin string, n int)
	// Drop counts n messages (or records) of origin that were acknowledged
	// without being queued, with a short bounded reason: "malformed",
	// "test", "kind", "unauthorized", "subscription".
	Drop(origin, reason string, n int)
}
