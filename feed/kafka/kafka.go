package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/feed/internal/consume"
)

const origin = "kafka"

const (
	// minBackoff and maxBackoff pace the retries of a failed Put (and of
	// polls that bring only errors).
	minBackoff = 500 * time.Millisecond
	maxBackoff = 30 * time.Second
	// closeTimeout bounds the last commit and leaving the group, and
	// each commit in a rebalance callback (which blocks the rebalance).
	closeTimeout = 5 * time.Second
	// commitRetry paces the retries of a failed commit while no records
	// come.
	commitRetry = time.Second
)

// Feed consumes S3 event notifications from a Kafka topic as a member of
// a consumer group. It is a freshen.Feed.
type Feed struct {
	cfg     Config
	log     *slog.Logger
	started atomic.Bool

	warnMalformed, warnPut, warnCommit, warnFetch consume.Throttle

	// Set by tests only.
	//
	// minBackoff is the first retry delay after a failed Put.
	minBackoff time.Duration
	// opts are added to the client's options (short heartbeats).
	opts []kgo.Opt
	// afterPut runs after a successful Put and before the commit; true
	// makes Run stop at once without committing that batch, as a process
	// killed at that moment would.
	afterPut func() bool
	// rewound is told the records a failed Put rewinds to consume again.
	rewound func([]*kgo.Record)
}

var _ freshen.Feed = (*Feed)(nil)

// New builds the feed; it does not connect (Run does). A nil log
// discards.
func New(cfg Config, log *slog.Logger) (*Feed, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	return &Feed{
		cfg:        cfg,
		log:        log.With("feed", origin, "topic", cfg.Topic, "group", cfg.Group),
		minBackoff: minBackoff,
	}, nil
}

// Name implements freshen.Feed.
func (f *Feed) Name() string { return origin }

// Run implements freshen.Feed. It joins the consumer group (retrying
// forever while no broker answers) and delivers the records of the
// partitions assigned to it until ctx is done; then it commits what was
// Put, leaves the group (its partitions go to the other members at once)
// and returns nil. It returns an error only when it is called twice or
// the client cannot be built.
func (f *Feed) Run(ctx context.Context, sink freshen.Sink) error {
	if !f.started.CompareAndSwap(false, true) {
		return errors.New("kafka: Run called twice")
	}
	r := &run{Feed: f, sink: sink, pending: map[partition]*kgo.Record{}}
	opts := []kgo.Opt{
		kgo.SeedBrokers(f.cfg.Brokers...),
		kgo.ClientID("freshen"),
		kgo.ConsumerGroup(f.cfg.Group),
		kgo.ConsumeTopics(f.cfg.Topic),
		// A new group starts at the oldest retained record, so events
		// produced before freshen first ran are not skipped; replaying
		// them is harmless.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(r.assigned),
		kgo.OnPartitionsRevoked(r.revoked),
		kgo.OnPartitionsLost(r.lost),
		kgo.WithLogger(kgoLogger{f.log}),
	}
	cl, err := kgo.NewClient(append(opts, f.opts...)...)
	if err != nil {
		return fmt.Errorf("kafka: client: %w", err)
	}
	r.checkTopic(ctx, cl)
	r.loop(ctx, cl)
	r.close(cl)
	return nil
}

// partition identifies one partition of a topic.
type partition struct {
	topic string
	p     int32
}

// run is the state of one Run.
type run struct {
	*Feed
	sink freshen.Sink

	// mu guards pending: the polling goroutine adds to it, and rebalance
	// callbacks (on the client's goroutines) commit and prune it.
	mu sync.Mutex
	// pending holds, per partition, the last record whose changes were
	// Put and whose offset is not committed yet (a commit failed).
	pending map[partition]*kgo.Record
}

// outcome of handling one batch.
type outcome int

const (
	handled  outcome = iota // Put and committed (or the commit will be retried)
	failed                  // Put failed: rewound, retry after a backoff
	stopping                // ctx is done
	crashed                 // afterPut asked to stop as if killed
)

// loop polls and handles batches until ctx is done (or a simulated
// crash). BlockRebalanceOnPoll makes each poll hold off rebalances until
// AllowRebalance, so the partitions of a batch stay ours from the poll
// until its commit: no commit lands on a partition another member owns.
func (r *run) loop(ctx context.Context, cl *kgo.Client) {
	backoff := consume.Backoff{Min: r.minBackoff, Max: maxBackoff}
	for {
		// A failed commit is retried with the next batch, or after
		// commitRetry if none comes.
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if r.hasPending() {
			pctx, cancel = context.WithTimeout(ctx, commitRetry)
		}
		fs := cl.PollRecords(pctx, r.cfg.MaxRecords)
		cancel()
		if ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		errored := false
		fs.EachError(func(topic string, p int32, err error) {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kgo.ErrClientClosed) {
				return
			}
			errored = true
			if r.warnFetch.OK() {
				r.log.Warn("consuming failed; the client retries", "partition", p, "err", err)
			}
		})
		recs := fs.Records()
		if len(recs) == 0 {
			if err := r.commit(ctx, cl); err != nil && ctx.Err() == nil && r.warnCommit.OK() {
				r.log.Warn("commit failed; retrying", "err", err)
			}
			cl.AllowRebalance()
			if errored && !backoff.Sleep(ctx) {
				return
			}
			continue
		}
		switch r.handle(ctx, cl, recs) {
		case handled:
			cl.AllowRebalance()
			backoff.Reset()
		case failed:
			cl.AllowRebalance()
			if !backoff.Sleep(ctx) {
				return
			}
		case stopping, crashed:
			return
		}
	}
}

// handle parses a batch, Puts its changes in one call, and commits the
// batch once Put returned nil. When Put fails it rewinds the batch's
// partitions to their first record of the batch, so the next polls
// bring the same records again.
func (r *run) handle(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) outcome {
	r.sink.Received(origin, len(recs))
	now := time.Now()
	var changes []freshen.Change
	for _, rec := range recs {
		cs, err := consume.Changes(r.sink, origin, rec.Value, now, nil)
		if err != nil && r.warnMalformed.OK() {
			r.log.Warn("malformed event; committed and dropped", "err", err, "partition", rec.Partition, "offset", rec.Offset, "bytes", len(rec.Value))
		}
		changes = append(changes, cs...)
	}
	if len(changes) > 0 {
		if err := r.sink.Put(ctx, origin, changes); err != nil {
			if ctx.Err() != nil {
				// Not committed: the group's next owner of these
				// partitions consumes them again.
				return stopping
			}
			if r.warnPut.OK() {
				r.log.Error("could not queue events; they will be consumed again", "err", err, "records", len(recs))
			}
			rewind(cl, recs)
			if r.rewound != nil {
				r.rewound(recs)
			}
			return failed
		}
		if r.afterPut != nil && r.afterPut() {
			return crashed
		}
	}
	r.mu.Lock()
	for _, rec := range recs {
		tp := partition{rec.Topic, rec.Partition}
		if cur := r.pending[tp]; cur == nil || rec.Offset > cur.Offset {
			r.pending[tp] = rec
		}
	}
	r.mu.Unlock()
	if err := r.commit(ctx, cl); err != nil && ctx.Err() == nil && r.warnCommit.OK() {
		// The next commit (or the one when the partitions are revoked)
		// includes these offsets; if none succeeds, the records are
		// consumed again after a rebalance, which is harmless.
		r.log.Warn("commit failed; retrying with the next batch or within a second", "err", err)
	}
	return handled
}

// rewind seeks each partition of recs back to its first record in recs.
// It runs before AllowRebalance, as franz-go requires for SetOffsets in
// a group; records of those partitions already buffered are discarded.
func rewind(cl *kgo.Client, recs []*kgo.Record) {
	to := map[string]map[int32]kgo.EpochOffset{}
	for _, rec := range recs {
		m := to[rec.Topic]
		if m == nil {
			m = map[int32]kgo.EpochOffset{}
			to[rec.Topic] = m
		}
		if cur, ok := m[rec.Partition]; !ok || rec.Offset < cur.Offset {
			// Epoch -1: no truncation check against this position.
			m[rec.Partition] = kgo.EpochOffset{Epoch: -1, Offset: rec.Offset}
		}
	}
	cl.SetOffsets(to)
}

func (r *run) hasPending() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending) > 0
}

// commit commits the pending offsets synchronously; on success nothing
// is pending any more. Committing an offset twice is harmless.
func (r *run) commit(ctx context.Context, cl *kgo.Client) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pending) == 0 {
		return nil
	}
	if err := cl.CommitRecords(ctx, slices.Collect(maps.Values(r.pending))...); err != nil {
		return fmt.Errorf("kafka: commit: %w", err)
	}
	clear(r.pending)
	return nil
}

// assigned logs the partitions this member receives. Called on the
// client's goroutine while no batch is being handled.
func (r *run) assigned(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
	r.log.Info("partitions assigned", "partitions", parts[r.cfg.Topic])
}

// revoked commits what was Put before the partitions go to another
// member, and forgets the rest. Called on the client's goroutine while
// no batch is being handled (BlockRebalanceOnPoll), also when Run leaves
// the group.
func (r *run) revoked(ctx context.Context, cl *kgo.Client, parts map[string][]int32) {
	ctx, cancel := context.WithTimeout(ctx, closeTimeout)
	defer cancel()
	if err := r.commit(ctx, cl); err != nil {
		r.log.Warn("commit before giving up partitions failed; their last records will be consumed again", "err", err)
	}
	r.forget(parts)
	if n := len(parts[r.cfg.Topic]); n > 0 {
		r.log.Info("partitions revoked", "partitions", parts[r.cfg.Topic])
	}
}

// lost forgets partitions the group session lost: committing them would
// fail (or overwrite the new owner's commits).
func (r *run) lost(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
	r.forget(parts)
	if len(parts[r.cfg.Topic]) > 0 {
		r.log.Warn("partitions lost (group session ended); records not committed will be consumed again", "partitions", parts[r.cfg.Topic])
	}
}

func (r *run) forget(parts map[string][]int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for topic, ps := range parts {
		for _, p := range ps {
			delete(r.pending, partition{topic, p})
		}
	}
}

// close commits what is pending, leaves the group so its partitions are
// reassigned at once, and closes the client, in at most about
// 2×closeTimeout even when no broker answers.
func (r *run) close(cl *kgo.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	// Run may have stopped holding a polled batch; the final revoke
	// (which leaving the group causes) waits for this.
	cl.AllowRebalance()
	if err := r.commit(ctx, cl); err != nil {
		r.log.Warn("final commit failed; the last records will be consumed again", "err", err)
	}
	if err := cl.LeaveGroupContext(ctx); err != nil {
		r.log.Debug("leaving the group", "err", err)
	}
	cl.Close()
	r.log.Info("left the consumer group")
}

// checkTopic reports at start whether the topic exists, since the client
// would wait for a missing one silently. It never fails Run: the topic
// may be created later.
func (r *run) checkTopic(ctx context.Context, cl *kgo.Client) {
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	t := kmsg.NewMetadataRequestTopic()
	t.Topic = kmsg.StringPtr(r.cfg.Topic)
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(tctx, cl)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("no Kafka broker answers yet; retrying", "brokers", r.cfg.Brokers, "err", err)
		}
		return
	}
	for _, rt := range resp.Topics {
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil {
			r.log.Warn("the topic is not available; consuming once it is", "err", err)
			return
		}
		r.log.Info("consuming S3 events", "partitions", len(rt.Partitions), "brokers", r.cfg.Brokers)
	}
}

// kgoLogger hands franz-go's log lines to slog one level lower: the
// client warns about every connection it loses and rebalance it sees,
// which the feed's own warnings already cover when they matter.
type kgoLogger struct{ log *slog.Logger }

func (l kgoLogger) Level() kgo.LogLevel {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		return kgo.LogLevelInfo
	}
	return kgo.LogLevelWarn
}

func (l kgoLogger) Log(level kgo.LogLevel, msg string, kv ...any) {
	switch level {
	case kgo.LogLevelError:
		l.log.Warn("kafka client: "+msg, kv...)
	case kgo.LogLevelWarn:
		l.log.Info("kafka client: "+msg, kv...)
	default:
		l.log.Debug("kafka client: "+msg, kv...)
	}
}
