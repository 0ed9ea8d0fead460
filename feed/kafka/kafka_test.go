package kafka

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/feed/feedtest"
	"github.com/freshen-io/freshen/feed/internal/consume"
	"github.com/freshen-io/freshen/internal/testenv"
)

// TestConformance runs the feed contract suite on a real (in-process)
// cluster. A delivery is settled as acked when the group's committed
// offset passes the record, and as not acked when the feed rewinds to
// consume it again (TestPutFailureRetried checks on the broker that such
// a record is neither committed nor lost).
func TestConformance(t *testing.T) {
	k := testenv.StartKafka(t)
	feedtest.Run(t, func(t *testing.T) feedtest.Harness {
		b := newBundle(t, k)
		tr := b.tracker(t)
		f := b.newFeed(t, func(f *Feed) { f.rewound = tr.rewound })
		return feedtest.Harness{Feed: f, Bucket: "docs", Publish: tr.publish}
	})
}

// tracker settles the deliveries of records it produces.
type tracker struct {
	b       *bundle
	mu      sync.Mutex
	pending []*tracked
	next    atomic.Int32
}

type tracked struct {
	p      int32
	off    int64
	settle func(bool)
}

// tracker starts watching the group's commits until the test ends.
func (b *bundle) tracker(t *testing.T) *tracker {
	tr := &tracker{b: b}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for consume.Sleep(ctx, 10*time.Millisecond) {
			tr.mu.Lock()
			empty := len(tr.pending) == 0
			tr.mu.Unlock()
			if empty {
				continue
			}
			committed, err := b.fetchCommitted(ctx)
			if err != nil {
				continue
			}
			tr.mu.Lock()
			tr.pending = slices.DeleteFunc(tr.pending, func(d *tracked) bool {
				if committed[d.p] > d.off {
					d.settle(true)
					return true
				}
				return false
			})
			tr.mu.Unlock()
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return tr
}

// publish produces body to the next partition and tracks it.
func (tr *tracker) publish(_ context.Context, body []byte) *feedtest.Delivery {
	p := tr.next.Add(1) % partitions
	off := tr.b.produce(tr.b.t, p, body)
	d, settle := feedtest.NewDelivery()
	tr.mu.Lock()
	tr.pending = append(tr.pending, &tracked{p, off, settle})
	tr.mu.Unlock()
	return d
}

// rewound settles the records the feed will consume again as not acked.
func (tr *tracker) rewound(recs []*kgo.Record) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, r := range recs {
		for _, d := range tr.pending {
			if d.p == r.Partition && d.off == r.Offset {
				d.settle(false)
			}
		}
	}
}

// topicID asks the cluster for the topic's ID (fetch requests name
// topics by ID from Kafka 3.1).
func (b *bundle) topicID(t *testing.T) [16]byte {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(b.cfg.Topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), b.cl)
	if err != nil || len(resp.Topics) != 1 {
		t.Fatalf("metadata: %v", err)
	}
	return resp.Topics[0].TopicID
}

// TestVersityGWEvents: versitygw produces its real events to Kafka (over
// its own client, segmentio/kafka-go); keys arrive exactly as written.
func TestVersityGWEvents(t *testing.T) {
	b := setup(t)
	s := feedtest.NewSink("kafka")
	b.start(t, s)
	gw := testenv.StartVersityGW(t, testenv.GWOptions{KafkaURL: b.k.Addr(), KafkaTopic: b.cfg.Topic, KafkaKey: "docs"})
	feedtest.VersityGWEvents(t, gw, s, "kafka")
	b.waitCommitted(t, b.ends(t))
	if _, received, drops := s.Stats(); received < 2*len(feedtest.VersityGWKeys) || drops["test"] != 1 {
		t.Errorf("received %d, drops %v: want ≥ %d received (most events) and versitygw's test event dropped", received, drops, 2*len(feedtest.VersityGWKeys))
	}
}

// ends returns the last offset of each non-empty partition.
func (b *bundle) ends(t *testing.T) map[int32]int64 {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = b.cfg.Topic
	for p := range int32(partitions) {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = p, -1 // latest
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), b.cl)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.Offset > 0 {
				out[p.Partition] = p.Offset - 1
			}
		}
	}
	return out
}

// TestDuplicatesReorderedMalformed: duplicates and out-of-order events are
// all delivered (coalescing is the queue's job); malformed records, test
// events and ignored kinds are committed past, not consumed forever.
func TestDuplicatesReorderedMalformed(t *testing.T) {
	b := setup(t)
	s := feedtest.NewSink("kafka")
	bodies := []struct {
		p    int32
		body []byte
	}{
		{0, event("docs", "r.md", "s3:ObjectCreated:Put", "2")},
		{0, event("docs", "r.md", "s3:ObjectRemoved:Delete", "1")}, // older, arrives later
		{1, event("docs", "d.md", "s3:ObjectCreated:Put", "3")},
		{2, event("docs", "d.md", "s3:ObjectCreated:Put", "3")},
		{1, []byte(`{"Records":[`)},
		{3, []byte("\x00\xff not json")},
		{3, nil}, // a record without a value
		{2, testEvent()},
		{1, event("docs", "x.md", "s3:ObjectRestore:Post", "4")}, // a kind freshen ignores
		{3, event("docs", "after-garbage.md", "s3:ObjectCreated:Put", "5")},
	}
	last := map[int32]int64{}
	for _, m := range bodies {
		last[m.p] = b.produce(t, m.p, m.body)
	}
	b.start(t, s)
	b.waitCommitted(t, last)
	if seqs := s.Sequencers("r.md"); !slices.Equal(seqs, []string{"2", "1"}) {
		t.Errorf("r.md sequencers %v: want both events, in partition order", seqs)
	}
	if n := s.Count("d.md", freshen.ChangeUpsert); n != 2 {
		t.Errorf("d.md put %d times: want both duplicates", n)
	}
	if n := s.Count("after-garbage.md", freshen.ChangeUpsert); n != 1 {
		t.Errorf("the event after the malformed ones was put %d times", n)
	}
	_, received, drops := s.Stats()
	if received != len(bodies) || drops["malformed"] != 3 || drops["test"] != 1 || drops["kind"] != 1 {
		t.Errorf("received %d (want %d), drops %v (want malformed 3, test 1, kind 1)", received, len(bodies), drops)
	}
}

// TestKilledBetweenPutAndCommit: a feed that dies after Put and before
// its commit leaves the offset where it was; the next feed in the group
// consumes the record again and Puts it again, which is harmless.
func TestKilledBetweenPutAndCommit(t *testing.T) {
	b := setup(t)
	s := feedtest.NewSink("kafka")
	first := b.produce(t, 1, event("docs", "first.md", "s3:ObjectCreated:Put", "1"))
	r0 := b.start(t, s)
	b.waitCommitted(t, map[int32]int64{1: first})
	if err := r0.Stop(); err != nil {
		t.Fatal(err)
	}

	kill := func(f *Feed) { f.afterPut = func() bool { return true } }
	r := b.start(t, s, kill)
	off := b.produce(t, 1, event("docs", "killed.md", "s3:ObjectCreated:Put", "2"))
	feedtest.Eventually(t, "a Put of killed.md", func() bool { return s.Count("killed.md", freshen.ChangeUpsert) >= 1 })
	if err := r.Wait(); err != nil {
		t.Fatal(err)
	}
	if n := s.Count("killed.md", freshen.ChangeUpsert); n != 1 {
		t.Fatalf("put %d times before the kill", n)
	}
	if got := b.committed(t)[1]; got > off {
		t.Fatalf("committed offset %d after the kill: want ≤ %d", got, off)
	}
	b.start(t, s) // the "restarted" process
	feedtest.Eventually(t, "killed.md consumed again", func() bool { return s.Count("killed.md", freshen.ChangeUpsert) == 2 })
	b.waitCommitted(t, map[int32]int64{1: off})
	if n := s.Count("first.md", freshen.ChangeUpsert); n != 1 {
		t.Errorf("first.md put %d times: a committed record came back", n)
	}
}

// TestCancelledDuringPut: Run returns promptly when its context ends
// during a Put, without committing; the next feed gets the record.
func TestCancelledDuringPut(t *testing.T) {
	b := setup(t)
	s := feedtest.NewSink("kafka")
	s.SetHook(func(ctx context.Context, _ []freshen.Change) error { <-ctx.Done(); return ctx.Err() })
	r := b.start(t, s)
	off := b.produce(t, 2, event("docs", "c.md", "s3:ObjectCreated:Put", "1"))
	<-s.Entered
	start := time.Now()
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Run took %s to return", d)
	}
	if _, ok := b.committed(t)[2]; ok {
		t.Fatal("committed although Put was cancelled")
	}
	s.SetHook(nil)
	b.start(t, s)
	feedtest.Eventually(t, "the record Put by the next feed", func() bool { return s.Count("c.md", freshen.ChangeUpsert) == 1 })
	b.waitCommitted(t, map[int32]int64{2: off})
}

// TestPutFailureRetried: while Put fails nothing is committed and the
// same records are handed to Put again (after a backoff); once Put works
// each is queued once and committed.
func TestPutFailureRetried(t *testing.T) {
	b := setup(t)
	s := feedtest.NewSink("kafka")
	var failing atomic.Bool
	failing.Store(true)
	var failures atomic.Int32
	s.SetHook(func(_ context.Context, changes []freshen.Change) error {
		if failing.Load() {
			failures.Add(1)
			return errors.New("ledger is down")
		}
		return nil
	})
	last := map[int32]int64{}
	for p := range int32(partitions) {
		last[p] = b.produce(t, p, event("docs", "f.md", "s3:ObjectCreated:Put", "1"))
	}
	b.start(t, s)
	feedtest.Eventually(t, "three failed attempts", func() bool { return failures.Load() >= 3 })
	if c := b.committed(t); len(c) != 0 {
		t.Fatalf("committed %v although every Put failed", c)
	}
	failing.Store(false)
	b.waitCommitted(t, last)
	if n := s.Count("f.md", freshen.ChangeUpsert); n != partitions {
		t.Errorf("f.md queued %d times after recovery: want once per partition (%d)", n, partitions)
	}
}

// TestTwoConsumersSplitPartitions: two feeds in one group split the
// partitions between them; every record is delivered; when one leaves,
// the other takes over its partitions from the committed offsets.
func TestTwoConsumersSplitPartitions(t *testing.T) {
	b := setup(t)
	s1, s2 := feedtest.NewSink("kafka"), feedtest.NewSink("kafka")
	r1 := b.start(t, s1)
	b.start(t, s2)
	feedtest.Eventually(t, "a stable group of two", func() bool { st, n := b.members(t); return st == "Stable" && n == 2 })
	const perPartition = 10
	var keys []string
	last := map[int32]int64{}
	for i := range perPartition {
		for p := range int32(partitions) {
			k := "k-" + string(rune('a'+p)) + "-" + string(rune('0'+i)) + ".md"
			keys = append(keys, k)
			last[p] = b.produce(t, p, event("docs", k, "s3:ObjectCreated:Put", "1"))
		}
	}
	b.waitCommitted(t, last)
	by := func(s *feedtest.Sink) map[byte]bool { // partitions (as key letters) a sink saw
		out := map[byte]bool{}
		for _, c := range s.Changes() {
			out[c.Key[2]] = true
		}
		return out
	}
	p1, p2 := by(s1), by(s2)
	if len(p1) == 0 || len(p2) == 0 || len(p1)+len(p2) != partitions {
		t.Errorf("partitions seen: first %v, second %v: want a split of all %d", p1, p2, partitions)
	}
	for _, k := range keys {
		if n := s1.Count(k, freshen.ChangeUpsert) + s2.Count(k, freshen.ChangeUpsert); n != 1 {
			t.Errorf("%s delivered %d times", k, n)
		}
	}

	if err := r1.Stop(); err != nil {
		t.Fatal(err)
	}
	for p := range int32(partitions) {
		last[p] = b.produce(t, p, event("docs", "after-"+string(rune('a'+p))+".md", "s3:ObjectCreated:Put", "2"))
	}
	for p := range int32(partitions) {
		k := "after-" + string(rune('a'+p)) + ".md"
		feedtest.Eventually(t, k+" delivered to the remaining feed", func() bool { return s2.Count(k, freshen.ChangeUpsert) == 1 })
	}
	b.waitCommitted(t, last)
	for _, k := range keys {
		if n := s1.Count(k, freshen.ChangeUpsert) + s2.Count(k, freshen.ChangeUpsert); n != 1 {
			t.Errorf("%s delivered %d times after the takeover: want no redelivery of committed records", k, n)
		}
	}
}

// TestBrokerRestart: the whole cluster restarts (same ports, persisted
// state) while a Put is in progress and records wait; the feed keeps its
// group, commits, and consumes what is produced after the restart.
func TestBrokerRestart(t *testing.T) {
	b := setup(t)
	s := feedtest.NewSink("kafka")
	release := s.Hold()
	b.start(t, s)
	last := map[int32]int64{}
	last[0] = b.produce(t, 0, event("docs", "before-1.md", "s3:ObjectCreated:Put", "1"))
	<-s.Entered
	last[1] = b.produce(t, 1, event("docs", "before-2.md", "s3:ObjectCreated:Put", "2"))
	b.k.Restart(t)
	release()
	last[2] = b.produce(t, 2, event("docs", "after-1.md", "s3:ObjectCreated:Put", "3"))
	for _, k := range []string{"before-1.md", "before-2.md", "after-1.md"} {
		feedtest.Eventually(t, k+" queued", func() bool { return s.Count(k, freshen.ChangeUpsert) >= 1 })
	}
	b.waitCommitted(t, last)
}

// TestFirstConnectRetries: a feed started while no broker answers joins
// once one does.
func TestFirstConnectRetries(t *testing.T) {
	b := setup(t)
	b.k.Stop()
	s := feedtest.NewSink("kafka")
	b.start(t, s)
	time.Sleep(200 * time.Millisecond) // let it fail to connect a few times
	b.k.Restart(t)
	off := b.produce(t, 3, event("docs", "late.md", "s3:ObjectCreated:Put", "1"))
	feedtest.Eventually(t, "late.md queued", func() bool { return s.Count("late.md", freshen.ChangeUpsert) == 1 })
	b.waitCommitted(t, map[int32]int64{3: off})
}

// TestTopicCreatedLater: a feed started before its topic exists consumes
// it once it is created.
func TestTopicCreatedLater(t *testing.T) {
	k := testenv.StartKafka(t)
	b := &bundle{t: t, k: k, cfg: Config{Brokers: k.Brokers(), Topic: "later", Group: "freshen-later"}, cl: k.Client(t)}
	t.Cleanup(b.cl.Close)
	s := feedtest.NewSink("kafka")
	b.start(t, s)
	k.CreateTopic(t, "later", partitions)
	off := b.produce(t, 1, event("docs", "later.md", "s3:ObjectCreated:Put", "1"))
	feedtest.Eventually(t, "later.md queued", func() bool { return s.Count("later.md", freshen.ChangeUpsert) == 1 })
	b.waitCommitted(t, map[int32]int64{1: off})
}

// TestCommitFailureRetried: a commit the broker refuses is retried
// without waiting for new records, and the record is not Put again.
func TestCommitFailureRetried(t *testing.T) {
	b := setup(t)
	var refused atomic.Int32
	c := b.k.Cluster()
	c.ControlKey(kmsg.OffsetCommit.Int16(), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		req := kreq.(*kmsg.OffsetCommitRequest)
		if req.Group != b.cfg.Group || refused.Load() > 0 {
			return nil, nil, false // observed only; the control is kept
		}
		refused.Add(1)
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, kerr.OffsetMetadataTooLarge.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	s := feedtest.NewSink("kafka")
	b.start(t, s)
	off := b.produce(t, 0, event("docs", "once.md", "s3:ObjectCreated:Put", "1"))
	b.waitCommitted(t, map[int32]int64{0: off})
	if refused.Load() != 1 {
		t.Fatalf("%d commits refused: want the first", refused.Load())
	}
	if attempts, _, _ := s.Stats(); attempts != 1 {
		t.Errorf("%d Puts: want 1", attempts)
	}
}
