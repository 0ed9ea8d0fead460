// Package sqs is the Amazon SQS feed: it long-polls a queue that S3 event
// notifications reach — sent by S3 directly, through an SNS topic (the SNS
// envelope in the body when raw message delivery is off, the bare S3
// message when it is on) or by an EventBridge rule — and hands the
// changes to freshen's intake (feed/s3event decodes every format).
//
// It must never delete a message before sink.Put returned nil for every
// change the message carried: deleting is the acknowledgement. A message
// whose changes could not be queued is left on the queue (made visible
// again after Config.RetryDelay), and SQS delivers it again; while a
// batch is being queued its messages are kept invisible, so a slow sink
// does not cause redeliveries. Duplicates are harmless downstream.
//
// A message it cannot decode is counted as dropped ("malformed") and
// deleted, not left for the queue's redrive policy: it would fail the same
// way on every delivery, and freshen's reconciler finds whatever change it
// stood for. The cost of that choice is that a dead-letter queue never
// sees such messages: the log (a warning with the message ID and the
// error) and the drop counter are where to look. S3 test events, SNS
// subscription notices and event kinds freshen does not act on are
// deleted too, with their own drop reasons.
//
// With a redrive policy, mind that every failed attempt to queue a
// message counts as a receive: a sink outage longer than about
// maxReceiveCount × Config.RetryDelay moves messages to the dead-letter
// queue. Set maxReceiveCount generously (the reconciler repairs what a
// lost event leaves behind either way).
//
// SNS envelopes are not signature-checked here, unlike on the webhook:
// the queue's access policy decides who may send to it, and SQS has
// authenticated the sender.
//
// Throttling, 5xx answers and network failures are retried with backoff
// for as long as Run runs. A queue that does not exist, or that the
// credentials may not read, stops Run with a permanent error.
package sqs
