package main

import (
	"bufio"
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/chunk"
	"github.com/freshen-io/freshen/extract"
	"github.com/freshen-io/freshen/internal/memsource"
	"github.com/freshen-io/freshen/internal/pipeline"
	"github.com/freshen-io/freshen/internal/testenv"
	"github.com/freshen-io/freshen/ledger/postgres"
	"github.com/freshen-io/freshen/ledger/sqlite"
)

// remoteEmbedder is a simulated remote provider: every call takes 100 ms
// whatever its size (a network round trip), with unlimited concurrency.
type remoteEmbedder struct{}

func (remoteEmbedder) Model() freshen.ModelInfo {
	return freshen.ModelInfo{Name: "bench/remote", Dim: 8, MaxTokens: 8192}
}

func (remoteEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	select {
	case <-time.After(100 * time.Millisecond):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	out := make([][]float32, len(texts))
	for i, t := range texts {
		v := make([]float32, 8)
		for j := range v {
			v[j] = float32(len(t)%7+j) + 1
		}
		out[i] = v
	}
	return out, nil
}

// discardIndex keeps nothing: the scale-out bench measures the ledger and
// the pipeline, not an index.
type discardIndex struct{}

func (discardIndex) Dim() int                                                     { return 8 }
func (discardIndex) Upsert(context.Context, []freshen.Record) error               { return nil }
func (discardIndex) Delete(context.Context, []freshen.ChunkID) error              { return nil }
func (discardIndex) Search(context.Context, freshen.Query) ([]freshen.Hit, error) { return nil, nil }
func (discardIndex) Close() error                                                 { return nil }

// scaleoutDoc is object i's content: the same in every process, so each
// child builds the same in-memory bucket.
func scaleoutDoc(i int) []byte {
	r := rand.New(rand.NewSource(int64(i)))
	return []byte(fmt.Sprintf("# Document %d\n\n%s\n\n%s\n", i, paragraph(r, 40), paragraph(r, 40)))
}

const scaleoutWorkers = 8

// scaleoutChild is one freshen process: a pipeline of scaleoutWorkers on
// the shared PostgreSQL ledger, woken by its notifications, printing one
// line per object (its lease-to-start latency) until stdin closes.
func scaleoutChild(ctx context.Context, dsn, schema string, objects int) error {
	led, err := postgres.Open(ctx, postgres.Config{DSN: dsn, Schema: schema, MaxConns: 2 * scaleoutWorkers})
	if err != nil {
		return err
	}
	defer led.Close()
	src := memsource.New("bench")
	for i := 0; i < objects; i++ {
		src.Put(fmt.Sprintf("docs/%05d.md", i), "text/markdown", scaleoutDoc(i))
	}
	chk, err := chunk.New(chunk.Config{})
	if err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	p := pipeline.New(pipeline.Config{Bucket: "bench", Workers: scaleoutWorkers, Backoff: 10 * time.Millisecond, LeaseTTL: 10 * time.Second},
		src, extract.New(extract.Config{}), chk, remoteEmbedder{}, discardIndex{}, led, nil, func(r pipeline.Result) {
			start := time.Now().Add(-r.Duration)
			mu.Lock()
			fmt.Fprintf(out, "%s %d\n", r.Key, start.Sub(r.FirstSeen).Microseconds())
			out.Flush()
			mu.Unlock()
		})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	changes, err := led.Changes(ctx)
	if err != nil {
		return err
	}
	go func() {
		for range changes {
			p.Wake()
		}
	}()
	if err := p.Start(ctx); err != nil {
		return err
	}
	fmt.Fprintln(out, "ready")
	out.Flush()
	bufio.NewReader(os.Stdin).ReadString('\n') // the parent closes stdin to stop us
	p.Stop()
	return nil
}

type scaleoutRun struct {
	procs     int
	objsPerS  float64
	p50, p99  float64 // lease-to-start latency, ms
	processed int
}

// runCluster starts procs children on a fresh schema, enqueues objects
// keys (all at once for throughput; then trickled for latency) and times
// them.
func runCluster(ctx context.Context, dsn string, procs, objects int) (scaleoutRun, error) {
	res := scaleoutRun{procs: procs}
	schema := fmt.Sprintf("scaleout_%d_%d", procs, time.Now().UnixNano()%1e9)
	led, err := postgres.Open(ctx, postgres.Config{DSN: dsn, Schema: schema})
	if err != nil {
		return res, err
	}
	defer led.Close()
	var mu sync.Mutex
	lat := map[string]float64{}
	var children []*exec.Cmd
	var stdins []interface{ Close() error }
	ready := make(chan struct{}, procs)
	var wg sync.WaitGroup
	for i := 0; i < procs; i++ {
		cmd := selfCommand("--child", "scaleout", dsn, schema, strconv.Itoa(objects))
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			return res, err
		}
		outp, err := cmd.StdoutPipe()
		if err != nil {
			return res, err
		}
		if err := cmd.Start(); err != nil {
			return res, err
		}
		children, stdins = append(children, cmd), append(stdins, in)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(outp)
			for sc.Scan() {
				line := sc.Text()
				if line == "ready" {
					ready <- struct{}{}
					continue
				}
				key, us, _ := strings.Cut(line, " ")
				v, _ := strconv.ParseFloat(us, 64)
				mu.Lock()
				lat[key] = v / 1000
				mu.Unlock()
			}
		}()
	}
	defer func() {
		for _, in := range stdins {
			in.Close()
		}
		for _, c := range children {
			c.Wait()
		}
		wg.Wait()
		led.Pool().Exec(context.Background(), `DROP SCHEMA `+schema+` CASCADE`)
	}()
	for i := 0; i < procs; i++ {
		<-ready
	}
	done := func(n int) bool {
		mu.Lock()
		defer mu.Unlock()
		return len(lat) >= n
	}
	// Throughput: the whole backlog at once.
	var cs []freshen.Change
	for i := 0; i < objects; i++ {
		cs = append(cs, freshen.Change{Bucket: "bench", Key: fmt.Sprintf("docs/%05d.md", i), Kind: freshen.ChangeUpsert, Origin: "bench", EventTime: time.Now()})
	}
	start := time.Now()
	if _, err := led.Enqueue(ctx, cs); err != nil {
		return res, err
	}
	for !done(objects) {
		if time.Since(start) > 10*time.Minute {
			return res, fmt.Errorf("%d processes: %d of %d objects after 10 minutes", procs, len(lat), objects)
		}
		time.Sleep(5 * time.Millisecond)
	}
	res.objsPerS = float64(objects) / time.Since(start).Seconds()
	// Latency: an idle cluster, one change every 20 ms.
	mu.Lock()
	lat = map[string]float64{}
	mu.Unlock()
	const trickle = 200
	for i := 0; i < trickle; i++ {
		c := freshen.Change{Bucket: "bench", Key: fmt.Sprintf("docs/%05d.md", i), Kind: freshen.ChangeUpsert, Origin: "bench", EventTime: time.Now()}
		if _, err := led.Enqueue(ctx, []freshen.Change{c}); err != nil {
			return res, err
		}
		time.Sleep(20 * time.Millisecond)
	}
	for deadline := time.Now().Add(30 * time.Second); !done(trickle) && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	var ls []float64
	for _, v := range lat {
		ls = append(ls, v)
	}
	mu.Unlock()
	res.p50, res.p99, res.processed = percentile(ls, 50), percentile(ls, 99), len(ls)
	return res, nil
}

// scaleout measures the PostgreSQL ledger shared by several processes,
// and one reconcile pass of 1M keys against it.
func (r *runner) scaleout() (section, error) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "freshen-bench-pg-")
	if err != nil {
		return section{}, err
	}
	defer os.RemoveAll(dir)
	pg, err := testenv.LaunchPostgres(dir)
	if err != nil {
		return section{}, err
	}
	defer pg.Stop()
	objects := 2400
	reconcileKeys := 1_000_000
	if r.quick {
		objects, reconcileKeys = 400, 100_000
	}
	var runs []scaleoutRun
	for _, procs := range []int{1, 2, 4} {
		res, err := runCluster(ctx, pg.DSN, procs, objects)
		if err != nil {
			return section{}, err
		}
		logf("  %d processes: %.0f objects/s, lease-to-start p50 %.1f ms p99 %.1f ms", procs, res.objsPerS, res.p50, res.p99)
		runs = append(runs, res)
	}
	speedup := runs[2].objsPerS / runs[0].objsPerS
	r.summary["scaleout_speedup_4"] = round(speedup, 2)

	pop, err := childJSON("populate", "postgres:"+pg.DSN, strconv.Itoa(reconcileKeys))
	if err != nil {
		return section{}, err
	}
	rec, err := childJSON("reconcile", "postgres:"+pg.DSN, strconv.Itoa(reconcileKeys), "0")
	if err != nil {
		return section{}, err
	}
	logf("  reconcile over %d keys in PostgreSQL: populated in %.1fs, pass %.1fs, peak RSS %.0f MB", reconcileKeys, pop.Populate, rec.Seconds, rec.PeakRSS)
	if reconcileKeys == 1_000_000 {
		r.summary["pg_reconcile_1m_s"] = round(rec.Seconds, 2)
		r.summary["pg_reconcile_1m_peak_rss_mb"] = round(rec.PeakRSS, 1)
	}

	var b strings.Builder
	fmt.Fprintf(&b, "N `freshen` processes (separate OS processes, %d workers each) share one PostgreSQL 15 ledger (local, fsync off) and a simulated "+
		"remote embedder that takes 100 ms per call whatever its size, with unlimited concurrency; the index discards writes, so the ledger and "+
		"the pipeline are what is measured. Throughput: %d objects enqueued at once. Lease-to-start: an idle cluster, one change every 20 ms, "+
		"from the enqueue to a worker starting on it (woken by LISTEN/NOTIFY). Target: 4 processes ≥ 3.5× one.\n\n", scaleoutWorkers, objects)
	var rows [][]string
	for _, x := range runs {
		rows = append(rows, []string{fmt.Sprint(x.procs), fmt.Sprintf("%.0f", x.objsPerS), fmt.Sprintf("%.2f×", x.objsPerS/runs[0].objsPerS),
			fmt.Sprintf("%.1f", x.p50), fmt.Sprintf("%.1f", x.p99)})
	}
	b.WriteString(table([]string{"processes", "objects/s", "speed-up", "lease-to-start p50 ms", "p99 ms"}, rows))
	fmt.Fprintf(&b, "\nOne reconcile pass over %d unchanged keys against the PostgreSQL ledger (a synthetic lister, as in \"Reconcile at scale\"; "+
		"its own process, so peak RSS is the pass's): %.1f s, %.0f MB peak RSS (targets ≤ 60 s, ≤ 150 MB).\n", reconcileKeys, rec.Seconds, rec.PeakRSS)
	return section{title: "Several processes on a PostgreSQL ledger", body: b.String()}, nil
}

// putLedger is what the reconcile children need of a ledger.
type putLedger interface {
	freshen.Ledger
	PutObjects(ctx context.Context, objs []freshen.ObjectRecord) error
}

// benchLedger opens the reconcile children's ledger: "postgres:DSN" (in
// the schema "bench") or a directory holding a SQLite ledger.
func benchLedger(ctx context.Context, where string) (putLedger, error) {
	if dsn, ok := strings.CutPrefix(where, "postgres:"); ok {
		return postgres.Open(ctx, postgres.Config{DSN: dsn, Schema: "bench"})
	}
	return sqlite.Open(ctx, filepath.Join(where, "ledger.db"))
}

// tempDirOf is where a child may write temporary files for where.
func tempDirOf(where string) string {
	if strings.HasPrefix(where, "postgres:") {
		return os.TempDir()
	}
	return where
}
