package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/internal/intake"
	"github.com/freshen-io/freshen/internal/reconcile"
)

// synthSource lists n keys in order without holding them, counting pages.
type synthSource struct {
	n            int
	changedEvery int // every k-th key has a new ETag; 0 for none
	pages        int
}

func synthKey(i int) string { return fmt.Sprintf("objects/%08d.md", i) }

func (s *synthSource) List(ctx context.Context, prefix, after string, fn func(freshen.ObjectInfo) error) error {
	s.pages = 0
	for i := 0; i < s.n; i++ {
		if i%1000 == 0 {
			s.pages++ // one ListObjectsV2 page per 1000 keys
		}
		etag := "etag-" + strconv.Itoa(i)
		if s.changedEvery > 0 && i%s.changedEvery == 0 {
			etag += "-v2"
		}
		if err := fn(freshen.ObjectInfo{Bucket: "bench", Key: synthKey(i), ETag: etag, Size: 1000}); err != nil {
			return err
		}
	}
	return nil
}
func (s *synthSource) Stat(context.Context, string) (freshen.ObjectInfo, error) {
	return freshen.ObjectInfo{}, freshen.ErrNotFound
}
func (s *synthSource) Open(context.Context, freshen.ObjectInfo) (io.ReadCloser, error) {
	return nil, freshen.ErrNotFound
}

type reconcileRun struct {
	Seconds  float64 `json:"seconds"`
	Pages    int     `json:"pages"`
	Listed   int     `json:"listed"`
	Changed  int     `json:"changed"`
	PeakRSS  float64 `json:"peak_rss_mb"`
	Populate float64 `json:"populate_seconds"`
}

// reconcile measures passes over 10k, 100k and 1M keys, each in a child
// process so peak RSS belongs to the pass alone.
func (r *runner) reconcile() (section, error) {
	sizes := []int{10_000, 100_000, 1_000_000}
	if r.quick {
		sizes = []int{10_000, 100_000}
	}
	var rows [][]string
	for _, n := range sizes {
		dir, err := os.MkdirTemp("", "freshen-reconcile-")
		if err != nil {
			return section{}, err
		}
		pop, err := childJSON("populate", dir, strconv.Itoa(n))
		if err != nil {
			return section{}, err
		}
		for _, changed := range []int{0, 100} {
			res, err := childJSON("reconcile", dir, strconv.Itoa(n), strconv.Itoa(changed))
			if err != nil {
				return section{}, err
			}
			what := "no changes"
			if changed > 0 {
				what = "1% changed"
			}
			rows = append(rows, []string{fmt.Sprintf("%d", n), what, fmt.Sprintf("%.2f", res.Seconds), fmt.Sprintf("%.0f", float64(n)/res.Seconds),
				fmt.Sprintf("%d (⌈N/1000⌉ = %d)", res.Pages, (n+999)/1000), fmt.Sprint(res.Changed), fmt.Sprintf("%.0f", res.PeakRSS)})
			if n == 1_000_000 && changed == 0 {
				r.summary["reconcile_1m_s"] = round(res.Seconds, 2)
				r.summary["reconcile_1m_peak_rss_mb"] = round(res.PeakRSS, 1)
			}
		}
		logf("  %d keys: ledger populated in %.1fs", n, pop.Populate)
		os.RemoveAll(dir)
	}
	var b strings.Builder
	b.WriteString("One reconcile pass: a streaming merge-join of a listing (a synthetic lister yielding keys in order, so the store's speed does not hide freshen's; one page per 1000 keys, as ListObjectsV2) against a SQLite ledger holding the same N objects. Each pass runs in its own process; peak RSS is that process's VmHWM (Go runtime and SQLite included). Targets: 1M unchanged keys in ≤ 30 s and ≤ 150 MB.\n\n")
	b.WriteString(table([]string{"keys", "listing", "seconds", "keys/s", "LIST requests", "keys queued", "peak RSS MB"}, rows))
	return section{title: "Reconcile at scale", body: b.String()}, nil
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }

func childJSON(args ...string) (reconcileRun, error) {
	var res reconcileRun
	cmd := selfCommand(append([]string{"--child", args[0]}, args[1:]...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return res, fmt.Errorf("child %v: %w", args, err)
	}
	return res, json.Unmarshal(out, &res)
}

func runChild(name string, args []string) error {
	ctx := context.Background()
	if handled, err := runIndexChild(ctx, name, args); handled {
		return err
	}
	switch name {
	case "scaleout":
		n, _ := strconv.Atoi(args[2])
		return scaleoutChild(ctx, args[0], args[1], n)
	case "ceiling":
		objs, _, err := pipelineCeiling(ctx, len(args) > 0 && args[0] == "quick")
		if err != nil {
			return err
		}
		return json.NewEncoder(os.Stdout).Encode(map[string]float64{"objects_per_s": objs})
	case "populate":
		n, _ := strconv.Atoi(args[1])
		start := time.Now()
		led, err := benchLedger(ctx, args[0])
		if err != nil {
			return err
		}
		defer led.Close()
		batch := make([]freshen.ObjectRecord, 0, 10_000)
		for i := 0; i < n; i++ {
			batch = append(batch, freshen.ObjectRecord{Bucket: "bench", Key: synthKey(i), ETag: "etag-" + strconv.Itoa(i), Size: 1000,
				State: freshen.StateIndexed, Chunks: 3, Chunker: "c", Model: "m"})
			if len(batch) == cap(batch) || i == n-1 {
				if err := led.PutObjects(ctx, batch); err != nil {
					return err
				}
				batch = batch[:0]
			}
		}
		return json.NewEncoder(os.Stdout).Encode(reconcileRun{Populate: time.Since(start).Seconds()})
	case "reconcile":
		n, _ := strconv.Atoi(args[1])
		changed, _ := strconv.Atoi(args[2])
		led, err := benchLedger(ctx, args[0])
		if err != nil {
			return err
		}
		defer led.Close()
		src := &synthSource{n: n, changedEvery: changed}
		rec := reconcile.New(reconcile.Config{Bucket: "bench", Chunker: "c", Model: "m", TempDir: tempDirOf(args[0]), MinDeleteObjects: 100}, src, led, intake.New(intake.Config{Bucket: "bench"}, led, nil, nil), nil)
		start := time.Now()
		rep, err := rec.Pass(ctx, false)
		if err != nil {
			return err
		}
		res := reconcileRun{Seconds: time.Since(start).Seconds(), Pages: src.pages, Listed: rep.Listed, Changed: rep.Changed + rep.New + rep.Vanished, PeakRSS: peakRSSMB()}
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	return fmt.Errorf("unknown child %q", name)
}

// peakRSSMB reads this process's peak resident set size.
func peakRSSMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:")), "%f", &kb)
			return kb / 1024
		}
	}
	return 0
}
