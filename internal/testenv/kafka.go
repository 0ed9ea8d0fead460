package testenv

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// KafkaBrokers is how many brokers StartKafka runs: more than one, so
// partition leaders are spread and clients talk to several brokers as
// they would in production.
const KafkaBrokers = 3

// Kafka is a Kafka cluster (franz-go's kfake) running inside the test
// process on loopback. It persists to a directory, so Restart keeps its
// topics, records and committed group offsets, as a restarted broker
// would.
type Kafka struct {
	dir   string
	ports []int

	mu sync.Mutex
	c  *kfake.Cluster
}

// StartKafka starts a kfake cluster of KafkaBrokers brokers on
// 127.0.0.1 and stops it when the test ends. It has no topics: create
// them with CreateTopic.
func StartKafka(t testing.TB) *Kafka {
	t.Helper()
	k := &Kafka{dir: t.TempDir()}
	k.start(t)
	t.Cleanup(k.Stop)
	return k
}

func (k *Kafka) start(t testing.TB) {
	t.Helper()
	opts := []kfake.Opt{
		kfake.DataDir(k.dir),
		kfake.ClusterID("freshen-test"),
		// Let tests use short sessions so a vanished member is noticed
		// quickly (Kafka's default minimum is 6s).
		kfake.GroupMinSessionTimeout(100 * time.Millisecond),
	}
	if k.ports == nil {
		opts = append(opts, kfake.NumBrokers(KafkaBrokers))
	} else {
		opts = append(opts, kfake.Ports(k.ports...))
	}
	var c *kfake.Cluster
	var err error
	// After a Restart the old listeners are closed but a port may be
	// taken by someone else for a moment; retry briefly.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err = kfake.NewCluster(opts...)
		if err == nil || k.ports == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	if k.ports == nil {
		for _, a := range c.ListenAddrs() {
			_, p, err := net.SplitHostPort(a)
			if err != nil {
				c.Close()
				t.Fatalf("kfake listen address %q: %v", a, err)
			}
			n, _ := strconv.Atoi(p)
			k.ports = append(k.ports, n)
		}
	}
	k.mu.Lock()
	k.c = c
	k.mu.Unlock()
}

// Brokers are the seed brokers (host:port); they stay the same across
// Restart.
func (k *Kafka) Brokers() []string {
	out := make([]string, len(k.ports))
	for i, p := range k.ports {
		out[i] = "127.0.0.1:" + strconv.Itoa(p)
	}
	return out
}

// Addr is one broker's host:port, for clients that take a single
// address (versitygw's --event-kafka-url).
func (k *Kafka) Addr() string { return k.Brokers()[0] }

// Cluster is the running cluster (nil while stopped), for tests that
// inject faults with its Control functions.
func (k *Kafka) Cluster() *kfake.Cluster {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.c
}

// Restart stops the cluster (clients see their connections drop) and
// starts a new one on the same ports from the persisted state: topics,
// records and committed offsets survive; group membership does not,
// so consumers rejoin.
func (k *Kafka) Restart(t testing.TB) {
	t.Helper()
	k.Stop()
	k.start(t)
}

// Stop closes the cluster, persisting its state; a second Stop is
// harmless.
func (k *Kafka) Stop() {
	k.mu.Lock()
	c := k.c
	k.c = nil
	k.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// CreateTopic creates topic with the given number of partitions; one
// that exists already is left as it is.
func (k *Kafka) CreateTopic(t testing.TB, topic string, partitions int32) {
	t.Helper()
	cl := k.Client(t)
	defer cl.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic = topic
	rt.NumPartitions = partitions
	rt.ReplicationFactor = 1
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("kafka: create topic %s: %v", topic, err)
	}
	for _, rt := range resp.Topics {
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil && err != kerr.TopicAlreadyExists {
			t.Fatalf("kafka: create topic %s: %v", topic, err)
		}
	}
}

// Client returns a plain franz-go client of the cluster; it produces
// each record to the partition the record names (0 unless set). Close it
// when done. opts are appended (and may override these).
func (k *Kafka) Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(k.Brokers()...),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0),
		// Quick to notice a restarted cluster.
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
		kgo.MetadataMinAge(50 * time.Millisecond),
	}, opts...)...)
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	return cl
}
