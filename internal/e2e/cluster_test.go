package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	natsgo "github.com/nats-io/nats.go"

	"github.com/freshen-io/freshen/internal/config"
	"github.com/freshen-io/freshen/internal/testenv"
)

// cluster is N `freshen run` processes on one PostgreSQL ledger and one
// pgvector table, reading versitygw's events from one NATS stream (with
// the webhook feed running beside it, as several feeds may).
type cluster struct {
	*bundle
	nodes   []*daemon
	cfgs    []string
	relayed atomic.Int64 // events versitygw published; every second one is dropped
}

const clusterLeaseTTL = 2 * time.Second

func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	pg := testenv.SharedPostgres(t)
	pgl := testenv.SharedPGlite(t)
	nats := testenv.StartNATS(t, t.TempDir())
	gwPort := testenv.FreePort(t)
	c := &cluster{bundle: &bundle{t: t, bucket: "docs", gw: &testenv.VersityGW{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", gwPort)}}}
	schema, table := testenv.UniqueSchema("cluster"), testenv.UniqueTable("cluster")
	for i := 0; i < n; i++ {
		data := filepath.Join(t.TempDir(), "data")
		y := fmt.Sprintf(`source: {bucket: %s, endpoint: %q, path-style: true}
data-dir: %s
workers: 2
listen: 127.0.0.1:%d
reconcile-interval: 3s
reconcile-split: ["burst/300"]
retry: {lease-ttl: %s, backoff: 100ms}
limits: {max-object-bytes: %d, max-attempts: 3}
ledger: {type: postgres, dsn: %q, schema: %s}
index: {type: pgvector, dsn: %q, table: %s}
feeds:
  webhook: {}
  nats: {url: %q, stream: S3EVENTS, subject: s3.events}
`, c.bucket, c.gw.Endpoint, data, testenv.FreePort(t), clusterLeaseTTL, maxObjectBytes, pg.DSN, schema, pgl.DSN, table, nats.URL())
		cfg := filepath.Join(t.TempDir(), "freshen.yaml")
		if err := os.WriteFile(cfg, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		c.cfgs = append(c.cfgs, cfg)
	}
	c.cfg = c.cfgs[0]
	conf, err := config.Load(c.cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.conf = conf
	// versitygw publishes to s3.raw; a relay forwards every second event
	// to s3.events, which the stream captures: half the events are lost,
	// and the reconcile passes must find what they announced.
	nc, err := natsgo.Connect(nats.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if _, err := nc.Subscribe("s3.raw", func(m *natsgo.Msg) {
		if c.relayed.Add(1)%2 == 0 {
			nc.Publish("s3.events", m.Data)
		}
	}); err != nil {
		t.Fatal(err)
	}
	c.gw = testenv.StartVersityGW(t, testenv.GWOptions{Port: gwPort, NATSURL: nats.URL(), NATSTopic: "s3.raw"})
	c.client = c.gw.CreateBucket(t, c.bucket)
	for i := range c.cfgs {
		c.nodes = append(c.nodes, c.start(i))
	}
	return c
}

// start runs node i's `freshen run`.
func (c *cluster) start(i int) *daemon {
	t := c.t
	t.Helper()
	conf, err := config.Load(c.cfgs[i], nil)
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, addr: conf.Listen, log: &syncBuffer{}, done: make(chan error, 1)}
	d.cmd = exec.Command(freshenBin, "run", "--config", c.cfgs[i], "-v")
	d.cmd.Env = append(os.Environ(), c.gw.Env()...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() { d.cmd.Process.Kill(); <-d.done })
	waitFor(t, 30*time.Second, fmt.Sprintf("node %d listening", i), func() (bool, string) {
		conn, err := net.DialTimeout("tcp", d.addr, 100*time.Millisecond)
		if err == nil {
			conn.Close()
			return true, ""
		}
		select {
		case err := <-d.done:
			t.Fatalf("node %d exited: %v\n%s", i, err, d.log)
		default:
		}
		return false, err.Error()
	})
	return d
}

func (c *cluster) kill(i int) {
	c.nodes[i].cmd.Process.Signal(syscall.SIGKILL)
	<-c.nodes[i].done
	c.nodes[i].done <- nil
}

func (c *cluster) status(i int) map[string]any {
	var s map[string]any
	w := &world{bundle: c.bundle, d: c.nodes[i]}
	w.get("/v1/status", &s)
	return s
}

// exactWithin polls until the table equals the bucket's chunks.
func (c *cluster) exactWithin(within time.Duration) time.Duration {
	start := time.Now()
	defer func() {
		if c.t.Failed() {
			for i, d := range c.nodes {
				c.t.Logf("node %d log:\n%s", i, d.log)
			}
		}
	}()
	waitFor(c.t, within, "the table equals the bucket", func() (bool, string) {
		want := c.groundTruth()
		got, _ := c.indexRows()
		if len(want) != len(got) {
			return false, fmt.Sprintf("%d chunks in the table, %d in the bucket", len(got), len(want))
		}
		for i := range want {
			if !want[i].same(got[i]) {
				return false, fmt.Sprintf("differs at %q", want[i].Key)
			}
		}
		return true, ""
	})
	took := time.Since(start)
	c.assertExact()
	return took
}

// TestThreeProcessesOneLedger: three `freshen run` share a PostgreSQL
// ledger, a pgvector table and versitygw's events through NATS, of which
// half are dropped on the way. A burst of 1,000 PUTs, overwrites and
// DELETEs, with one process killed -9 in the middle: the table ends exact,
// and no chunk was embedded twice. Then the
// reconcile leader is killed and another process takes the reconcile
// over within two lease periods.
func TestThreeProcessesOneLedger(t *testing.T) {
	c := newCluster(t, 3)
	const puts, overwrites, deletes = 600, 200, 200
	key := func(i int) string { return fmt.Sprintf("burst/%03d doc+ü.md", i) }
	ops := make(chan func(), puts+overwrites+deletes)
	for i := 0; i < puts; i++ {
		ops <- func() { c.put(key(i), "text/markdown", []byte(markdownDoc(int64(i), 2, 2))) }
	}
	for i := 0; i < overwrites; i++ {
		ops <- func() { c.put(key(i), "text/markdown", []byte(markdownDoc(int64(10_000+i), 2, 2))) }
	}
	for i := 0; i < deletes; i++ {
		ops <- func() { testenv.Delete(t, c.client, c.bucket, key(puts-1-i)) }
	}
	close(ops)
	var done sync.WaitGroup
	var count sync.Mutex
	n := 0
	start := time.Now()
	for w := 0; w < 4; w++ {
		done.Go(func() {
			for op := range ops {
				op()
				count.Lock()
				n++
				if n == 400 {
					c.kill(1) // mid-burst
				}
				count.Unlock()
			}
		})
	}
	done.Wait()
	t.Logf("burst of %d operations in %s; %d events published, half of them dropped", puts+overwrites+deletes,
		time.Since(start).Round(time.Millisecond), c.relayed.Load())
	took := c.exactWithin(3 * time.Minute)
	t.Logf("exact %s after the burst", took.Round(time.Millisecond))

	// No chunk hash was embedded twice: the embedding counter equals the
	// distinct hashes cached.
	led := c.openLedger()
	defer led.Close()
	ctr, err := led.Counters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	distinct := c.distinctEmbeddings()
	if ctr.ChunksEmbedded != distinct {
		t.Fatalf("%d chunks embedded for %d distinct hashes: some were embedded twice", ctr.ChunksEmbedded, distinct)
	}
	t.Logf("%d chunks embedded, %d distinct", ctr.ChunksEmbedded, distinct)

	// The reconcile is split in two ranges, each led by one process; kill
	// the leader of one, and another process takes that range over.
	leaders := func(i int) map[string]string {
		s := c.status(i)
		cl, _ := s["cluster"].(map[string]any)
		ls, _ := cl["reconcile_leaders"].(map[string]any)
		out := map[string]string{}
		for job, o := range ls {
			out[job], _ = o.(string)
		}
		return out
	}
	var jobs map[string]string
	// The two ranges spread over two processes.
	waitFor(t, 30*time.Second, "the two ranges led by two processes", func() (bool, string) {
		jobs = leaders(0)
		owners := map[string]bool{}
		for _, o := range jobs {
			owners[o] = true
		}
		return len(jobs) == 2 && len(owners) == 2, fmt.Sprint(jobs)
	})
	t.Logf("reconcile ranges and their leaders: %v", jobs)
	var job, lead string
	idx := -1
	for j, l := range jobs {
		for i, d := range c.nodes {
			if i != 1 && strings.HasSuffix(l, fmt.Sprintf("-%d", d.cmd.Process.Pid)) {
				job, lead, idx = j, l, i
			}
		}
	}
	if idx < 0 {
		t.Fatalf("leaders %v are none of the live nodes", jobs)
	}
	survivor := 0
	if idx == 0 {
		survivor = 2
	}
	killed := time.Now()
	c.kill(idx)
	var next string
	waitFor(t, 2*clusterLeaseTTL+10*time.Second, "another process to lead "+job, func() (bool, string) {
		next = leaders(survivor)[job]
		return next != "" && next != lead, next
	})
	// When it took over, by the new leader's own log line (the status
	// only learns it at the next heartbeat).
	takeover := time.Duration(-1)
	for i, d := range c.nodes {
		if strings.HasSuffix(next, fmt.Sprintf("-%d", d.cmd.Process.Pid)) && i != idx {
			for _, line := range strings.Split(d.log.String(), "\n") {
				if !strings.Contains(line, "now runs the reconcile passes") || !strings.Contains(line, strings.ReplaceAll(job, `"`, `\"`)) {
					continue
				}
				ts, _, _ := strings.Cut(strings.TrimPrefix(line, "time="), " ")
				if at, err := time.Parse(time.RFC3339Nano, ts); err == nil && at.After(killed) {
					takeover = at.Sub(killed)
				}
			}
		}
	}
	t.Logf("%s taken over by %s %s after its leader was killed (lease-ttl %s; the status showed it after %s)", job, next,
		takeover.Round(time.Millisecond), clusterLeaseTTL, time.Since(killed).Round(time.Millisecond))
	if takeover < 0 || takeover > 2*clusterLeaseTTL+500*time.Millisecond {
		t.Fatalf("the range was taken over %s after its leader died, want within two lease periods (%s)", takeover, 2*clusterLeaseTTL)
	}
}

// distinctEmbeddings counts the vectors in the ledger's embedding cache.
func (c *cluster) distinctEmbeddings() int64 {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, string(c.conf.Ledger.DSN))
	if err != nil {
		c.t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+c.conf.Ledger.Schema+`.embeddings`).Scan(&n); err != nil {
		c.t.Fatal(err)
	}
	return n
}
