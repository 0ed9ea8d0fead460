// Package nats is the NATS JetStream feed: it reads S3 event notifications
// (as versitygw publishes them with --event-nats-url, or any producer
// publishing S3, SNS-wrapped or EventBridge JSON) from a JetStream stream
// through a durable pull consumer, and hands the changes to freshen's
// intake.
//
// It never acknowledges a message before sink.Put returned nil for every
// change the message carried; a message it did not acknowledge is
// delivered again by the server (after a Nak delay or AckWait), to this
// process or to another one sharing the durable.
//
// # Stream and consumer
//
// Run uses the stream Config.Stream if it exists (it never changes an
// existing stream: an operator may own it) and otherwise creates it
// capturing Config.Subject, with file storage and a 7-day MaxAge (how
// long events wait for a freshen that is down). It then creates or
// updates the durable consumer Config.Durable: explicit acks, AckWait,
// MaxAckPending = MaxInFlight, filtered on Config.Subject.
//
// The durable delivers all messages the stream holds when it is first
// created (DeliverAll), not only new ones. Once the durable exists its
// position is kept by the server, so events published while freshen is
// down wait for it either way; DeliverAll also keeps the events published
// between the stream's creation and the durable's (by an operator, by a
// first start that failed half-way, or by the store before freshen ever
// ran). Replaying that history is harmless: changes coalesce in the queue
// and the worker reads each key's current state. The policy is fixed:
// JetStream cannot change a durable's deliver policy later. Events older
// than the stream's MaxAge are gone even if unacked; freshen's reconciler
// finds those changes. Several processes may share the durable: the
// server splits the messages between them.
//
// # Acknowledgement
//
//   - Messages are fetched in batches of up to MaxInFlight; those
//     available together are parsed and Put together.
//   - After Put returned nil each message is acked. While Put is slow the
//     messages are kept alive with InProgress every AckWait/3.
//   - When Put fails they are Nak'ed with a delay that doubles with each
//     delivery (1 s up to 1 min, never above AckWait), so a failing ledger
//     is retried without spinning.
//   - A malformed message is counted with sink.Drop("malformed") and
//     acked (not Term'ed: the outcome is the same, no redelivery, and it
//     keeps one ack path); test events ("test") and records of event kinds
//     freshen ignores ("kind") likewise.
//   - When ctx is cancelled, messages not yet Put are Nak'ed at once, so
//     the next process on the durable gets them without waiting AckWait.
//
// # Connection loss
//
// The client reconnects forever. Pull requests do not survive a server
// restart, so on every reconnect the current fetch is abandoned, the
// stream and consumer are checked (and recreated if the server lost
// them), and fetching resumes on the same durable; messages delivered but
// not acked before the loss are redelivered by the server.
package nats
