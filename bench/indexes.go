package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/index/embedded"
	"github.com/freshen-io/freshen/index/pgvector"
	"github.com/freshen-io/freshen/internal/testenv"
	"github.com/freshen-io/freshen/internal/verify"
	"github.com/freshen-io/freshen/ledger/sqlite"
)

// indexDim is the benchmark's vector length: a small production model's
// (bge-small, all-MiniLM: 384).
const indexDim = 384

// indexStore is what the index benchmark drives.
type indexStore interface {
	freshen.Index
}

// indexBench fills an index to each size in batches of 500 rows and
// searches it at each size.
type indexBench struct {
	name   string
	sizes  []int
	upsert []float64 // rows/s for each step up to sizes[i]
	p50    []float64 // search latency at sizes[i], ms
	p99    []float64
}

func randomUnit(rng *rand.Rand) []float32 {
	v := make([]float32, indexDim)
	var ss float64
	for i := range v {
		x := rng.NormFloat64()
		v[i] = float32(x)
		ss += x * x
	}
	for i := range v {
		v[i] = float32(float64(v[i]) / math.Sqrt(ss))
	}
	return v
}

func runIndexBench(ctx context.Context, name string, x indexStore, sizes []int) (indexBench, error) {
	res := indexBench{name: name, sizes: sizes}
	rng := rand.New(rand.NewPCG(1, 2))
	have := 0
	const batch = 500
	for _, n := range sizes {
		start := time.Now()
		for have < n {
			recs := make([]freshen.Record, 0, batch)
			for i := 0; i < batch && have < n; i++ {
				key := fmt.Sprintf("docs/%06d.md", have/10)
				recs = append(recs, freshen.Record{ID: freshen.ChunkID(fmt.Sprintf("c%08d", have)), Bucket: "bench", Key: key,
					Hash: freshen.ChunkHash(fmt.Sprintf("h%08d", have)), Ordinal: have % 10, Text: fmt.Sprintf("chunk %d of %s", have%10, key),
					Vector: randomUnit(rng)})
				have++
			}
			if err := x.Upsert(ctx, recs); err != nil {
				return res, fmt.Errorf("%s: upsert at %d rows: %w", name, have, err)
			}
		}
		grown := n
		if len(res.upsert) > 0 {
			grown = n - sizes[len(res.upsert)-1]
		}
		res.upsert = append(res.upsert, float64(grown)/time.Since(start).Seconds())
		var lat []float64
		for q := 0; q < 200; q++ {
			t0 := time.Now()
			hits, err := x.Search(ctx, freshen.Query{Vector: randomUnit(rng), K: 10})
			if err != nil {
				return res, fmt.Errorf("%s: search: %w", name, err)
			}
			if len(hits) != 10 {
				return res, fmt.Errorf("%s: search returned %d hits at %d rows", name, len(hits), n)
			}
			lat = append(lat, float64(time.Since(t0).Microseconds())/1000)
		}
		res.p50 = append(res.p50, percentile(lat, 50))
		res.p99 = append(res.p99, percentile(lat, 99))
		logf("  %s: %d rows, %.0f rows/s, search p50 %.1f ms p99 %.1f ms", name, n, res.upsert[len(res.upsert)-1], res.p50[len(res.p50)-1], res.p99[len(res.p99)-1])
	}
	return res, nil
}

// indexes measures the external indexes and verify.
func (r *runner) indexes() (section, error) {
	ctx := context.Background()
	sizes := []int{10_000, 100_000}
	verifyRows := 100_000
	if r.quick {
		sizes, verifyRows = []int{2_000, 10_000}, 10_000
	}
	var results []indexBench

	dir, err := os.MkdirTemp("", "freshen-bench-pglite-")
	if err != nil {
		return section{}, err
	}
	defer os.RemoveAll(dir)
	pg, err := testenv.LaunchPGlite(dir)
	if err != nil {
		return section{}, err
	}
	x, err := pgvector.Open(ctx, pgvector.Config{DSN: pg.DSN, Table: "bench_chunks", Dim: indexDim})
	if err != nil {
		pg.Stop()
		return section{}, err
	}
	res, err := runIndexBench(ctx, "pgvector (PGlite)", x, sizes)
	x.Close()
	pg.Stop()
	if err != nil {
		return section{}, err
	}
	results = append(results, res)
	r.summary["pgvector_upsert_rows_per_s"] = round(res.upsert[len(res.upsert)-1], 0)
	r.summary["pgvector_search_p99_ms"] = round(res.p99[len(res.p99)-1], 1)

	for _, extra := range extraIndexBenches {
		res, err := extra(ctx, sizes)
		if err != nil {
			return section{}, err
		}
		results = append(results, res)
		r.summary[res.summaryKey()] = round(res.upsert[len(res.upsert)-1], 0)
	}

	vdir, err := os.MkdirTemp("", "freshen-bench-verify-")
	if err != nil {
		return section{}, err
	}
	defer os.RemoveAll(vdir)
	pop, err := childJSON("verify-populate", vdir, strconv.Itoa(verifyRows))
	if err != nil {
		return section{}, err
	}
	ver, err := childJSON("verify", vdir)
	if err != nil {
		return section{}, err
	}
	logf("  verify: %d rows populated in %.1fs, verified in %.2fs, peak RSS %.0f MB", verifyRows, pop.Populate, ver.Seconds, ver.PeakRSS)
	if verifyRows == 100_000 {
		r.summary["verify_100k_s"] = round(ver.Seconds, 2)
		r.summary["verify_100k_peak_rss_mb"] = round(ver.PeakRSS, 1)
	}

	var b strings.Builder
	fmt.Fprintf(&b, "Each index is filled with random %d-dimensional unit vectors in batches of 500 rows (`Upsert`: one multi-row statement per batch), "+
		"then searched 200 times for the top 10 (no filter) at each size. Upsert rate is for the rows added to reach that size.\n\n", indexDim)
	b.WriteString("**PGlite is not a throughput reference**: it is PostgreSQL compiled to WebAssembly, one session serving every connection, " +
		"running here on about one core; it shows that the SQL works at these sizes, not how fast a PostgreSQL server with pgvector is " +
		"(expect one to be many times faster).\n\n")
	var rows [][]string
	for _, res := range results {
		for i, n := range res.sizes {
			rows = append(rows, []string{res.name, fmt.Sprint(n), fmt.Sprintf("%.0f", res.upsert[i]), fmt.Sprintf("%.1f", res.p50[i]), fmt.Sprintf("%.1f", res.p99[i])})
		}
	}
	b.WriteString(table([]string{"index", "rows", "upsert rows/s", "search p50 ms", "search p99 ms"}, rows))
	fmt.Fprintf(&b, "\n`freshen verify` over %d rows (%d keys of 10 chunks; a SQLite ledger and the embedded index, in a process of its own, "+
		"so peak RSS is the pass's alone: it streams both sides in key order, so memory does not grow with the rows):\n\n", verifyRows, verifyRows/10)
	b.WriteString(table([]string{"rows", "seconds", "rows/s", "peak RSS MB"}, [][]string{{fmt.Sprint(verifyRows), fmt.Sprintf("%.2f", ver.Seconds),
		fmt.Sprintf("%.0f", float64(verifyRows)/ver.Seconds), fmt.Sprintf("%.0f", ver.PeakRSS)}}))
	return section{title: "External indexes and verify", body: b.String()}, nil
}

// extraIndexBenches are further indexes to measure (Weaviate registers
// itself when its server is installed).
var extraIndexBenches []func(ctx context.Context, sizes []int) (indexBench, error)

func (b indexBench) summaryKey() string {
	name, _, _ := strings.Cut(b.name, " ")
	return name + "_upsert_rows_per_s"
}

// verifyPopulate writes a ledger and an embedded index that agree: n
// chunks of n/10 keys.
func verifyPopulate(ctx context.Context, dir string, n int) error {
	led, err := sqlite.Open(ctx, filepath.Join(dir, "ledger.db"))
	if err != nil {
		return err
	}
	defer led.Close()
	x, err := embedded.Open(ctx, filepath.Join(dir, "index.db"), indexDim)
	if err != nil {
		return err
	}
	defer x.Close()
	keys := n / 10
	var changes []freshen.Change
	for k := 0; k < keys; k++ {
		changes = append(changes, freshen.Change{Bucket: "bench", Key: fmt.Sprintf("docs/%06d.md", k), Kind: freshen.ChangeUpsert, Origin: "reconcile", EventTime: time.Now()})
	}
	if _, err := led.Enqueue(ctx, changes); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for {
		ls, err := led.Lease(ctx, freshen.LeaseParams{Owner: "bench", Max: 500, TTL: time.Hour})
		if err != nil {
			return err
		}
		if len(ls) == 0 {
			return nil
		}
		var recs []freshen.Record
		for _, l := range ls {
			var refs []freshen.ChunkRef
			for c := 0; c < 10; c++ {
				text := fmt.Sprintf("chunk %d of %s", c, l.Key)
				h := freshen.HashChunk("bench-chunker", text)
				id := freshen.MakeChunkID(l.Bucket, l.Key, h, 0)
				refs = append(refs, freshen.ChunkRef{ID: id, Hash: h, Ordinal: c})
				recs = append(recs, freshen.Record{ID: id, Bucket: l.Bucket, Key: l.Key, Hash: h, Ordinal: c, Text: text, Vector: randomUnit(rng)})
			}
			obj := freshen.ObjectRecord{Bucket: l.Bucket, Key: l.Key, ETag: "e", Size: 1, State: freshen.StateIndexed, Chunks: 10, Chunker: "bench-chunker", Model: "m"}
			if err := led.Complete(ctx, l, freshen.Commit{Object: obj, Chunks: refs}); err != nil {
				return err
			}
		}
		if err := x.Upsert(ctx, recs); err != nil {
			return err
		}
	}
}

// verifyChild is one verify pass over what verifyPopulate wrote.
func verifyChild(ctx context.Context, dir string) (reconcileRun, error) {
	led, err := sqlite.Open(ctx, filepath.Join(dir, "ledger.db"))
	if err != nil {
		return reconcileRun{}, err
	}
	defer led.Close()
	x, err := embedded.Open(ctx, filepath.Join(dir, "index.db"), indexDim)
	if err != nil {
		return reconcileRun{}, err
	}
	defer x.Close()
	start := time.Now()
	rep, err := verify.Run(ctx, led, x, "bench", nil)
	if err != nil {
		return reconcileRun{}, err
	}
	if rep.Drifts() != 0 || rep.RowsChecked == 0 {
		return reconcileRun{}, fmt.Errorf("verify of an exact index: %+v", rep)
	}
	return reconcileRun{Seconds: time.Since(start).Seconds(), Listed: int(rep.RowsChecked), PeakRSS: peakRSSMB()}, nil
}

// runIndexChild handles the index suite's child processes.
func runIndexChild(ctx context.Context, name string, args []string) (bool, error) {
	switch name {
	case "verify-populate":
		n, _ := strconv.Atoi(args[1])
		start := time.Now()
		if err := verifyPopulate(ctx, args[0], n); err != nil {
			return true, err
		}
		return true, json.NewEncoder(os.Stdout).Encode(reconcileRun{Populate: time.Since(start).Seconds()})
	case "verify":
		res, err := verifyChild(ctx, args[0])
		if err != nil {
			return true, err
		}
		return true, json.NewEncoder(os.Stdout).Encode(res)
	}
	return false, nil
}
