// Package kafka is the Kafka feed: it reads S3 event notifications (as
// versitygw produces them with --event-kafka-url, or any producer writing
// S3, SNS-wrapped or EventBridge JSON record values) from one topic as a
// member of a consumer group, and hands the changes to freshen's intake.
//
// It never commits an offset before sink.Put returned nil for every
// change of the records up to it; records it did not commit are consumed
// again, by this process or by the group member that gets their
// partition. Delivery is at least once: after a crash, a failed commit or
// a lost group session, records are Put again, which is harmless.
//
// # Group and topic
//
// Run joins Config.Group with franz-go's classic group protocol (any
// Kafka from 0.11; the cooperative-sticky balancer) and consumes
// Config.Topic, which it never creates: an operator owns its partitions
// and retention. A group new to the topic starts at the oldest retained
// record, so events produced before freshen first ran are not skipped;
// afterwards it resumes from its commits. Processes sharing the group
// split the partitions; when one leaves (Run returns) its partitions go
// to the others at once, when one dies after its session timeout.
//
// # Commits
//
//   - Up to MaxRecords records are polled, parsed and Put in one call.
//     Then the group offsets are committed synchronously past them.
//   - A malformed record is counted with sink.Drop("malformed") and
//     committed past with its batch; test events ("test") and records of
//     event kinds freshen ignores ("kind") likewise.
//   - When Put fails, nothing is committed and the batch's partitions
//     are rewound (SetOffsets) to the batch's first records, so the next
//     polls bring the same records again; Put is retried after a delay
//     that doubles from 0.5s to 30s. Between retries the group may
//     rebalance (the records then go to another member from the last
//     commit). Records of the batch that were dropped are counted again
//     when they come back.
//   - A failed commit is retried with the next batch, or after a second
//     when no record comes.
//   - Polling blocks rebalances until the batch is Put and committed
//     (BlockRebalanceOnPoll), so a commit never lands on a partition
//     another member owns. A slow Put therefore delays rebalances; one
//     longer than the rebalance timeout (60s) gets this member evicted,
//     and its records are consumed again by the others.
//   - When partitions are revoked, what was Put is committed first; when
//     they are lost (the session expired) nothing is, since the commit
//     would fail or overwrite the new owner's.
//   - When ctx is cancelled, a batch not yet Put is left uncommitted, what
//     was Put is committed and the group is left, within about 5s (10s
//     when no broker answers).
package kafka
