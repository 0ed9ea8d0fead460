package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/feed/feedtest"
	"github.com/freshen-io/freshen/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// partitions is how many partitions test topics have.
const partitions = 4

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
	f, err := New(b.cfg, feedtest.Logger(t, testLogLevel))
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

// start runs a new feed on s until the test ends (or Stop).
func (b *bundle) start(t *testing.T, s freshen.Sink, edit ...func(*Feed)) *feedtest.Running {
	t.Helper()
	return feedtest.Start(t, b.newFeed(t, edit...), s)
}

// produce writes body to partition p (retrying while the cluster
// restarts) and returns its offset.
func (b *bundle) produce(t *testing.T, p int32, body []byte) int64 {
	t.Helper()
	var off int64
	feedtest.Eventually(t, "produce", func() bool {
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
	feedtest.Eventually(t, "offset fetch", func() bool {
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
	feedtest.Eventually(t, fmt.Sprintf("offsets %v committed", want), func() bool {
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

// testLogLevel is the level of the feeds' logs in the test output.
var testLogLevel = slog.LevelInfo
