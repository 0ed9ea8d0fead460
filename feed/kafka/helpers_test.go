package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// partitions is how many partitions test topics have.
const partitions = 4

// sink records what the feed hands it. hook, if set, runs at the start
// of every Put; an error from it fails the Put, which records nothing.
type sink struct {
	mu       sync.Mutex
	puts     [][]freshen.Change
	attempts int
	received int
	drops    map[string]int
	hook     func(ctx context.Context, changes []freshen.Change) error
	// entered receives a value (if there is room) each time Put starts.
	entered chan []freshen.Change
}

func newSink() *sink {
	return &sink{drops: map[string]int{}, entered: make(chan []freshen.Change, 100)}
}

func (s *sink) Put(ctx context.Context, origin string, changes []freshen.Change) error {
	if origin != "kafka" {
		return fmt.Errorf("origin %q", origin)
	}
	s.mu.Lock()
	s.attempts++
	hook := s.hook
	s.mu.Unlock()
	select {
	case s.entered <- changes:
	default:
	}
	if hook != nil {
		if err := hook(ctx, changes); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.puts = append(s.puts, append([]freshen.Change(nil), changes...))
	return nil
}

func (s *sink) Received(_ string, n int) { s.mu.Lock(); s.received += n; s.mu.Unlock() }

func (s *sink) Drop(_, reason string, n int) { s.mu.Lock(); s.drops[reason] += n; s.mu.Unlock() }

func (s *sink) setHook(h func(context.Context, []freshen.Change) error) {
	s.mu.Lock()
	s.hook = h
	s.mu.Unlock()
}

// count is how many recorded changes are a kind of key.
func (s *sink) count(key string, kind freshen.ChangeKind) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, p := range s.puts {
		for _, c := range p {
			if c.Key == key && c.Kind == kind {
				n++
			}
		}
	}
	return n
}

func (s *sink) changes() []freshen.Change {
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []freshen.Change
	for _, p := range s.puts {
		all = append(all, p...)
	}
	return all
}

func (s *sink) stats() (attempts, received int, drops map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := map[string]int{}
	for k, v := range s.drops {
		d[k] = v
	}
	return s.attempts, s.received, d
}

// bundle is a Kafka cluster with a topic, and a client that produces to
// it and reads the group's committed offsets.
type bundle struct {
	t   *testing.T
	k   *testenv.Kafka
	cfg Config
	cl  *kgo.Client
}

var topicSeq atomic.Int64

// setup starts a cluster and creates a topic of 4 partitions.
func setup(t *testing.T) *bundle {
	t.Helper()
	return newBundle(t, testenv.StartKafka(t))
}

// newBundle creates a fresh topic (and group name) on k.
func newBundle(t *testing.T, k *testenv.Kafka) *bundle {
	t.Helper()
	n := topicSeq.Add(1)
	cfg := Config{Brokers: k.Brokers(), Topic: fmt.Sprintf("s3-events-%d", n), Group: fmt.Sprintf("freshen-%d", n)}
	k.CreateTopic(t, cfg.Topic, partitions)
	cl := k.Client(t)
	t.Cleanup(cl.Close)
	return &bundle{t: t, k: k, cfg: cfg, cl: cl}
}

// fast are client options that make group changes and reconnects quick.
var fast = []kgo.Opt{
	kgo.HeartbeatInterval(100 * time.Millisecond),
	kgo.SessionTimeout(2 * time.Second),
	kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
	kgo.FetchMaxWait(time.Second),
	kgo.MetadataMinAge(50 * time.Millisecond),
}

// newFeed builds a feed for the bundle's topic and group.
func (b *bundle) newFeed(t *testing.T, edit ...func(*Feed)) *Feed {
	t.Helper()
	f, err := New(b.cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	f.opts = fast
	f.minBackoff = 100 * time.Millisecond
	for _, e := range edit {
		e(f)
	}
	return f
}

// running is one Run of a feed.
type running struct {
	f      *Feed
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// start runs a new feed on s until the test ends (or stop).
func (b *bundle) start(t *testing.T, s freshen.Sink, edit ...func(*Feed)) *running {
	t.Helper()
	return runFeed(t, b.newFeed(t, edit...), s)
}

func runFeed(t *testing.T, f *Feed, s freshen.Sink) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{f: f, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- f.Run(ctx, s) }()
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return r
}

// stop cancels Run and returns what it returned.
func (r *running) stop() error {
	r.cancel()
	return r.wait()
}

// wait waits for Run to return (at most 10s).
func (r *running) wait() error {
	r.once.Do(func() {
		select {
		case r.err = <-r.done:
		case <-time.After(10 * time.Second):
			r.err = errors.New("Run did not return within 10s")
		}
	})
	return r.err
}

// produce writes body to partition p (retrying while the cluster
// restarts) and returns its offset.
func (b *bundle) produce(t *testing.T, p int32, body []byte) int64 {
	t.Helper()
	var off int64
	eventually(t, "produce", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		r, err := b.cl.ProduceSync(ctx, &kgo.Record{Topic: b.cfg.Topic, Partition: p, Key: []byte("docs"), Value: body}).First()
		if err != nil {
			return false
		}
		off = r.Offset
		return true
	})
	return off
}

// committed returns the group's committed offset (the next record to
// consume) per partition; partitions without a commit are absent.
func (b *bundle) committed(t *testing.T) map[int32]int64 {
	t.Helper()
	var out map[int32]int64
	eventually(t, "offset fetch", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var err error
		out, err = b.fetchCommitted(ctx)
		return err == nil
	})
	return out
}

func (b *bundle) fetchCommitted(ctx context.Context) (map[int32]int64, error) {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = b.cfg.Group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic = b.cfg.Topic
	for p := range int32(partitions) {
		rt.Partitions = append(rt.Partitions, p)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, b.cl)
	if err != nil {
		return nil, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, err
			}
			if p.Offset >= 0 {
				out[p.Partition] = p.Offset
			}
		}
	}
	return out, nil
}

// waitCommitted waits until the group has committed past every offset
// of want (partition → last offset produced).
func (b *bundle) waitCommitted(t *testing.T, want map[int32]int64) {
	t.Helper()
	eventually(t, fmt.Sprintf("offsets %v committed", want), func() bool {
		got := b.committed(t)
		for p, off := range want {
			if got[p] <= off {
				return false
			}
		}
		return true
	})
}

// members returns the group's state and member count.
func (b *bundle) members(t *testing.T) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{b.cfg.Group}
	resp, err := req.RequestWith(ctx, b.cl)
	if err != nil || len(resp.Groups) != 1 {
		return "", 0
	}
	return resp.Groups[0].State, len(resp.Groups[0].Members)
}

// eventually polls cond until it holds, failing the test after 15s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// event is an S3 notification exactly as versitygw produces it to Kafka
// (the key not URL-encoded; its extra fields included).
func event(bucket, key, name, sequencer string) []byte {
	return []byte(`{"Records":[{"eventVersion":"2.2","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":"2026-11-26T07:42:08Z",` +
		`"eventName":"` + name + `","userIdentity":{"PrincipalId":"freshen-test"},"requestParameters":{"sourceIPAddress":"127.0.0.1"},` +
		`"responseElements":{"x-amz-request-id":"","x-amz-id-2":""},"s3":{"s3SchemaVersion":"1.0","configurationId":"webhook-global",` +
		`"bucket":{"name":"` + bucket + `","ownerIdentity":{"PrincipalId":"freshen-test"},"arn":"arn:aws:s3:::/` + bucket + `/` + key + `"},` +
		`"object":{"key":"` + key + `","size":14,"eTag":"\"e\"","versionId":null,"sequencer":"` + sequencer + `"}},` +
		`"glacierEventData":{"restoreEventData":{"lifecycleRestorationExpiryTime":"","lifecycleRestoreStorageClass":""}}}]}`)
}

// testEvent is versitygw's start-up test event.
func testEvent() []byte {
	return []byte(`{"Bucket":"Test-Bucket","Event":"s3:TestEvent","Service":"S3","Time":"2026-11-29T18:06:31Z"}`)
}

// testLogger logs to the test's output until the test ends (the client's
// goroutines may outlive Run by a moment).
func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{w: t.Output()}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: testLogLevel}))
}

type testWriter struct {
	mu   sync.Mutex
	w    io.Writer
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return len(p), nil
	}
	return w.w.Write([]byte(strings.TrimRight(string(p), "\n") + "\n"))
}

var testLogLevel = slog.LevelInfo
