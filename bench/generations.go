package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/chunk"
	"github.com/freshen-io/freshen/embed/builtin"
	"github.com/freshen-io/freshen/extract"
	"github.com/freshen-io/freshen/internal/app"
	"github.com/freshen-io/freshen/internal/config"
	"github.com/freshen-io/freshen/internal/daemon"
	"github.com/freshen-io/freshen/internal/memsource"
	"github.com/freshen-io/freshen/internal/pipeline"
)

// generations measures two things a writer and an operator see of index
// generations: how soon after its commit GET /v1/wait tells a writer that
// its version is searchable (read-your-writes), and how close to the
// embedder's own speed a migration to other chunk settings builds the
// new generation beside the serving one.
func (r *runner) generations() (section, error) {
	ctx := context.Background()
	rounds, copies := 200, 10
	if r.quick {
		rounds, copies = 100, 2
	}
	ryw, err := readYourWrites(ctx, rounds)
	if err != nil {
		return section{}, fmt.Errorf("read-your-writes: %w", err)
	}
	mig, err := migrationThroughput(ctx, copies)
	if err != nil {
		return section{}, fmt.Errorf("migration: %w", err)
	}

	r.summary["wait_lag_p50_ms"] = round(percentile(ryw.lag, 50), 1)
	r.summary["wait_lag_p99_ms"] = round(percentile(ryw.lag, 99), 1)
	r.summary["wait_overhead_p50_ms"] = round(percentile(ryw.overhead, 50), 2)
	r.summary["wait_overhead_p99_ms"] = round(percentile(ryw.overhead, 99), 2)
	r.summary["migration_embedder_utilization"] = round(mig.utilization(), 3)

	var b strings.Builder
	b.WriteString("### Read-your-writes: `GET /v1/wait`\n\n")
	fmt.Fprintf(&b, "`freshen run` in-process (default settings: %d workers, the built-in model behind the micro-batcher) over an in-memory bucket; each write is announced by an S3 event notification POSTed to `/v1/events/s3`, as a bucket's webhook does (no S3 server: the bucket is the service's in-memory test source). %d sequential rounds: write a new version of one of %d small Markdown notes (~%d tokens, at most %d chunk(s) each), and at once, while the event is still being posted, call `GET /v1/wait?key=K&etag=E&timeout=30s` for its ETag. Lag = write → the service's result hook for that key, which runs right after the ledger commit (and after the commit has woken the waiters, so it slightly favours the overhead, by microseconds). Overhead = that commit → `/v1/wait` returned 200 with `searchable: true` to the client (keep-alive HTTP on loopback).\n\n",
		ryw.workers, len(ryw.lag), rywNotes, ryw.tokens, ryw.chunks)
	row := func(name string, xs []float64, f string) []string {
		return []string{name, fmt.Sprintf(f, percentile(xs, 50)), fmt.Sprintf(f, percentile(xs, 90)), fmt.Sprintf(f, percentile(xs, 99)), fmt.Sprintf(f, percentile(xs, 100))}
	}
	b.WriteString(table([]string{"per write", "p50 ms", "p90 ms", "p99 ms", "max ms"}, [][]string{
		row("lag: write → committed", ryw.lag, "%.1f"),
		row("embedding, within the lag", ryw.embed, "%.1f"),
		row("**overhead: committed → wait returned**", ryw.overhead, "%.2f"),
		row("what the writer waits: write → wait returned", ryw.total, "%.1f"),
	}))
	fmt.Fprintf(&b, "\nTarget: overhead p99 ≤ 10 ms; measured %.2f ms.\n\n", percentile(ryw.overhead, 99))

	b.WriteString("### Migration to other chunk settings\n\n")
	fmt.Fprintf(&b, "The demo corpus (`examples/corpus`, %d files) copied %d times under different prefixes, every paragraph of each copy tagged with its copy number so that no two copies share a chunk text (the embedding cache is content-addressed): %d objects. `freshen run` in-process indexes them as generation 1 with `chunk: {min-tokens: 32, target-tokens: 80, max-tokens: 160}` (%d chunks in %s, the initial backfill; %d of them repeat a footer and share one vector). Then a second App on the same data directory calls `StartMigration` to `chunk: {min-tokens: 64, target-tokens: 200, max-tokens: 400}` — what `freshen migrate start` does — and the running service picks it up (it reads the registry every 2 s) and builds generation 2 beside the serving one. Migration time = `StartMigration` → `/v1/status` shows `migration.objects == migration.of` with `backlog` 0 (polled every 100 ms). Generation 2 reuses the vector of every chunk whose text generation 1 already had (same model), so only the chunks it really embedded count. The embedder alone: the built-in model's `Embed` on exactly those chunk texts (predicted by chunking the bucket with both settings, and checked against what generation 2 embedded), in batches of %d with %d calls at once (the service's micro-batcher's settings), once just before `StartMigration` (the service idle) and once after the service stopped; its speed is that of the faster run, since other processes on this shared machine slow either down at times (the ratio is then, if anything, an underestimate).\n\n",
		mig.files, copies, mig.objects, mig.gen1Chunks, mig.gen1Took.Round(100*time.Millisecond), mig.gen1Reused, mig.batch, mig.parallel)
	b.WriteString(table([]string{"figure", "value"}, [][]string{
		{"generation 2: chunks", fmt.Sprint(mig.gen2Chunks)},
		{"… embedded / reused from generation 1", fmt.Sprintf("%d / %d (%.1f%% reused)", mig.embedded, mig.reused, 100*float64(mig.reused)/float64(max(mig.embedded+mig.reused, 1)))},
		{"… tokens embedded", fmt.Sprint(mig.tokens)},
		{"migration time (of which: until the service picked it up)", fmt.Sprintf("%.2f s (%.2f s)", mig.took.Seconds(), mig.pickup.Seconds())},
		{"migration throughput", fmt.Sprintf("%.1f chunks/s, %.0f tokens/s", mig.chunksPerS(), float64(mig.tokens)/mig.took.Seconds())},
		{"the embedder alone, same texts (the faster run)", fmt.Sprintf("%.1f chunks/s, %.0f tokens/s (%d texts: %.2f s before the migration, %.2f s after)", mig.embedChunksPerS(), mig.embedTokensPerS(), mig.embedTexts, mig.embedBefore.Seconds(), mig.embedAfter.Seconds())},
		{"**utilization: migration ÷ embedder (chunks/s)**", fmt.Sprintf("%.2f", mig.utilization())},
		{"… counting from the pick-up instead", fmt.Sprintf("%.2f", mig.utilizationFromPickup())},
		{"CPU time: migration / the embedder alone (per run)", fmt.Sprintf("%.1f s / %.1f s", mig.cpu.Seconds(), mig.embedCPU.Seconds()/2)},
		{"cores busy on average: migration / the embedder alone", fmt.Sprintf("%.2f / %.2f of %d", mig.cpu.Seconds()/mig.took.Seconds(), mig.embedCPU.Seconds()/(mig.embedBefore+mig.embedAfter).Seconds(), runtime.NumCPU())},
		{"… cores other processes on the machine kept busy meanwhile", fmt.Sprintf("%.2f / %.2f", max(mig.others.Seconds(), 0)/mig.took.Seconds(), max(mig.embedOthers.Seconds(), 0)/(mig.embedBefore+mig.embedAfter).Seconds())},
	}))
	fmt.Fprintf(&b, "\nThe migration runs the whole pipeline for every object (read, extract, chunk, cache lookups in both generations, index and ledger writes) on the same cores as the model, while the serving generation stays live. CPU time tells the two costs apart, and is less noisy than the clock here: the pipeline's own work cost %+.0f%% of the model's CPU time; the rest of the gap is time this process did not use the cores — waiting for the registry poll before the build starts, the last objects, or cores taken by other processes on this shared machine (last row), which also make the model's own two runs differ.\n",
		100*(mig.cpu.Seconds()/(mig.embedCPU.Seconds()/2)-1))
	b.WriteString("\nReproduce with `go run ./bench --suite generations` (`--quick`: 100 rounds, 2 copies of the corpus).\n")
	return section{title: "Read-your-writes and model migrations", body: b.String()}, nil
}

// inproc is `freshen run` in this process over an in-memory bucket, with
// its data directory in a temporary directory.
type inproc struct {
	cfg    config.Config
	src    *memsource.Source
	a      *app.App
	api    string
	client *http.Client
	cancel context.CancelFunc
	done   chan error
	dir    string
	halted bool
}

// startInproc opens an App for cfg (with a fresh data directory, the API
// on a free loopback port) and runs the service; onResult observes every
// key the serving generation processes.
func startInproc(ctx context.Context, cfg config.Config, src *memsource.Source, onResult func(pipeline.Result)) (*inproc, error) {
	dir, err := os.MkdirTemp("", "freshen-generations-")
	if err != nil {
		return nil, err
	}
	cfg.Source.Bucket, cfg.DataDir, cfg.Listen = benchBucket, dir, "127.0.0.1:0"
	a, err := app.Open(ctx, cfg, app.Options{Source: src, Exclusive: true})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &inproc{cfg: cfg, src: src, a: a, cancel: cancel, done: make(chan error, 1), dir: dir,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}}
	listening := make(chan string, 1)
	go func() {
		s.done <- daemon.Run(ctx, a, daemon.Options{OnResult: onResult, OnListen: func(u string) { listening <- u }})
	}()
	select {
	case s.api = <-listening:
	case err := <-s.done:
		cancel()
		a.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("run: %w", err)
	}
	return s, nil
}

// halt shuts the service down, keeping its data directory.
func (s *inproc) halt() error {
	if s.halted {
		return nil
	}
	s.halted = true
	s.cancel()
	err := <-s.done
	// Run has closed the Apps it opened itself; the first one is ours.
	s.a.Close()
	s.client.CloseIdleConnections()
	return err
}

// stop shuts the service down and removes its data directory.
func (s *inproc) stop() error {
	err := s.halt()
	os.RemoveAll(s.dir)
	return err
}

// getJSON GETs path from the API and decodes a 200 answer into v.
func (s *inproc) getJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.api+path, nil)
	if err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return json.Unmarshal(body, v)
}

// announce POSTs an S3 event notification for key, as a bucket's webhook
// does after a PUT.
func (s *inproc) announce(key string) error {
	ev, _ := json.Marshal(map[string]any{"Records": []any{map[string]any{
		"eventVersion": "2.2", "eventSource": "aws:s3", "eventName": "s3:ObjectCreated:Put",
		"eventTime": time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		"s3":        map[string]any{"bucket": map[string]any{"name": benchBucket}, "object": map[string]any{"key": key, "size": 1}},
	}}})
	resp, err := s.client.Post(s.api+"/v1/events/s3", "application/json", strings.NewReader(string(ev)))
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("webhook: %s", resp.Status)
	}
	return nil
}

// status reads /v1/status.
func (s *inproc) status(ctx context.Context) (app.Status, error) {
	var st app.Status
	err := s.getJSON(ctx, "/v1/status", &st)
	return st, err
}

// until polls cond every interval until it holds, fails, or limit passes.
func until(limit, every time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(every)
	}
}

// benchBucket is the in-memory bucket's name.
const benchBucket = "docs"

// rywNotes is how many notes the read-your-writes rounds edit in turn.
const rywNotes = 10

type rywResult struct {
	lag, embed, overhead, total []float64 // ms, one per round
	workers, tokens, chunks     int
}

// resultLog records when the serving generation committed each key.
type resultLog struct {
	mu sync.Mutex
	at map[string]time.Time
	// embed is the time the last commit of the key spent embedding.
	embed map[string]time.Duration
	// chunks is the most chunks a committed object had.
	chunks int
}

func (l *resultLog) add(r pipeline.Result) {
	now := time.Now()
	if r.Outcome != pipeline.OutcomeIndexed {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.at[r.Key], l.embed[r.Key] = now, r.EmbedTime
	l.chunks = max(l.chunks, r.Chunks)
}

// since is the commit of key after t, if there was one.
func (l *resultLog) since(key string, t time.Time) (time.Time, time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	at, ok := l.at[key]
	return at, l.embed[key], ok && at.After(t)
}

// readYourWrites writes new versions of notes one at a time and waits for
// each with GET /v1/wait.
func readYourWrites(ctx context.Context, rounds int) (rywResult, error) {
	var res rywResult
	results := &resultLog{at: map[string]time.Time{}, embed: map[string]time.Duration{}}
	s, err := startInproc(ctx, config.Default(), memsource.New(benchBucket), results.add)
	if err != nil {
		return res, err
	}
	defer s.stop()
	res.workers = s.cfg.Workers
	if err := until(time.Minute, 20*time.Millisecond, "the service to be ready", func() (bool, error) {
		resp, err := s.client.Get(s.api + "/readyz")
		if err != nil {
			return false, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	}); err != nil {
		return res, err
	}
	m, err := builtin.Default()
	if err != nil {
		return res, err
	}

	rnd := rand.New(rand.NewSource(7))
	var tokens int
	// once puts version i of a note and, as the bucket's webhook would,
	// announces it while the writer starts waiting.
	once := func(i int, record bool) error {
		key := fmt.Sprintf("notes/note-%02d.md", i%rywNotes)
		body := []byte(fmt.Sprintf("# Note %d, revision %d\n\n%s\n", i%rywNotes, i, paragraph(rnd, 45+rnd.Intn(20))))
		etag := memsource.ETag(body)
		s.src.Put(key, "text/markdown", body)
		wrote := time.Now()
		announced := make(chan error, 1)
		go func() { announced <- s.announce(key) }()
		var w app.WaitResult
		err := s.getJSON(ctx, "/v1/wait?key="+urlEscape(key)+"&etag="+etag+"&timeout=30s", &w)
		returned := time.Now()
		if err := errors.Join(err, <-announced); err != nil {
			return err
		}
		if !w.Searchable || w.Newer || strings.Trim(w.ETag, `"`) != etag {
			return fmt.Errorf("wait for %s@%s answered %+v", key, etag, w)
		}
		// The result hook runs just after the commit wakes the waiter:
		// give it a moment.
		var at time.Time
		var embed time.Duration
		if err := until(2*time.Second, 100*time.Microsecond, "the commit of "+key, func() (bool, error) {
			var ok bool
			at, embed, ok = results.since(key, wrote)
			return ok, nil
		}); err != nil {
			return err
		}
		if record {
			res.lag = append(res.lag, msOf(at.Sub(wrote)))
			res.embed = append(res.embed, msOf(embed))
			res.overhead = append(res.overhead, msOf(returned.Sub(at)))
			res.total = append(res.total, msOf(returned.Sub(wrote)))
			tokens += m.CountTokens(string(body))
		}
		return nil
	}
	// Warm-up: create the notes (and the connections) unmeasured.
	for i := 0; i < rywNotes; i++ {
		if err := once(i, false); err != nil {
			return res, err
		}
	}
	for i := rywNotes; i < rywNotes+rounds; i++ {
		if err := once(i, true); err != nil {
			return res, err
		}
	}
	res.tokens = tokens / rounds
	results.mu.Lock()
	res.chunks = results.chunks
	results.mu.Unlock()
	return res, s.stop()
}

func msOf(d time.Duration) float64 { return d.Seconds() * 1000 }

type migrationResult struct {
	files, objects   int
	gen1Chunks       int
	gen1Reused       int64
	gen1Took         time.Duration
	took, pickup     time.Duration
	gen2Chunks       int
	embedded, reused int64
	tokens           int64
	batch, parallel  int
	embedTexts       int
	embedTokens      int
	// embedBefore and embedAfter are the model alone on the same texts,
	// just before the migration and just after it.
	embedBefore, embedAfter time.Duration
	// cpu is the process's CPU time during the migration; embedCPU, over
	// both runs of the model alone.
	cpu, embedCPU time.Duration
	// others and embedOthers are the CPU time the machine's other
	// processes used meanwhile (this machine is shared).
	others, embedOthers time.Duration
}

func (m migrationResult) chunksPerS() float64 { return float64(m.embedded) / m.took.Seconds() }

// embedChunksPerS is the model's speed alone: that of its faster run,
// the one other processes on this shared machine disturbed least.
func (m migrationResult) embedChunksPerS() float64 {
	return float64(m.embedTexts) / min(m.embedBefore, m.embedAfter).Seconds()
}

func (m migrationResult) embedTokensPerS() float64 {
	return float64(m.embedTokens) / min(m.embedBefore, m.embedAfter).Seconds()
}

func (m migrationResult) utilization() float64 { return m.chunksPerS() / m.embedChunksPerS() }

func (m migrationResult) utilizationFromPickup() float64 {
	return float64(m.embedded) / (m.took - m.pickup).Seconds() / m.embedChunksPerS()
}

// migrationThroughput indexes copies of the demo corpus as generation 1,
// migrates to larger chunks, and embeds the chunk texts generation 2
// needs with the model alone, once just before the migration and once
// after it (this machine is shared: the faster run is the model's speed).
func migrationThroughput(ctx context.Context, copies int) (migrationResult, error) {
	var res migrationResult
	small := chunk.Config{MinTokens: 32, TargetTokens: 80, MaxTokens: 160}
	large := chunk.Config{MinTokens: 64, TargetTokens: 200, MaxTokens: 400}
	src := memsource.New(benchBucket)
	files, err := loadDemoCopies(src, copies)
	if err != nil {
		return res, err
	}
	res.files, res.objects = files, files*copies

	cfgA := config.Default()
	cfgA.Chunk = small
	start := time.Now()
	s, err := startInproc(ctx, cfgA, src, nil)
	if err != nil {
		return res, err
	}
	defer s.stop()
	var st app.Status
	if err := until(20*time.Minute, 100*time.Millisecond, "generation 1 to be indexed", func() (bool, error) {
		var err error
		st, err = s.status(ctx)
		return err == nil && st.Objects+st.SkippedTotal+st.FailedTotal == res.objects && st.Backlog == 0, err
	}); err != nil {
		return res, err
	}
	res.gen1Took, res.gen1Chunks = time.Since(start), st.Chunks
	if st.SkippedTotal+st.FailedTotal > 0 {
		return res, fmt.Errorf("generation 1: %d skipped, %d failed: %+v %+v", st.SkippedTotal, st.FailedTotal, st.Skipped, st.Failed)
	}
	// Only boilerplate (an HTML footer) repeats within a copy.
	if res.gen1Reused = st.ChunksReused; res.gen1Reused > int64(st.Chunks/20) {
		return res, fmt.Errorf("generation 1 reused %d of %d chunks: the copies share chunk texts", st.ChunksReused, st.Chunks)
	}

	// The texts generation 2 will embed: its chunks whose text generation
	// 1 lacks, each once, in the order of the bucket (checked against
	// what it did embed below).
	texts, err := newChunkTexts(ctx, src, s.cfg, small, large)
	if err != nil {
		return res, err
	}
	m, err := builtin.Default()
	if err != nil {
		return res, err
	}
	res.batch, res.parallel = s.cfg.Embedder.Batch.MaxTexts, runtime.GOMAXPROCS(0)
	res.embedTexts = len(texts)
	for _, t := range texts {
		res.embedTokens += m.CountTokens(t)
	}
	var cpu, others time.Duration
	if res.embedBefore, cpu, others, err = embedAlone(ctx, m, texts, res.batch, res.parallel); err != nil {
		return res, err
	}

	// As `freshen migrate start` does: another App on the same data
	// directory records the generation; the service builds it.
	cfgB := s.cfg
	cfgB.Chunk = large
	c, err := app.Open(ctx, cfgB, app.Options{Source: src})
	if err != nil {
		return res, err
	}
	start = time.Now()
	cpu0, busy0 := cpuTime(), machineBusy()
	_, err = c.StartMigration(ctx, cfgB)
	c.Close()
	if err != nil {
		return res, err
	}
	if err := until(30*time.Minute, 100*time.Millisecond, "generation 2 to be built", func() (bool, error) {
		st, err := s.status(ctx)
		if err != nil {
			return false, err
		}
		if st.Migration != nil && res.pickup == 0 {
			res.pickup = time.Since(start)
		}
		p := st.Migration
		return p != nil && p.ID == 2 && p.Objects == p.Of && p.Backlog == 0, nil
	}); err != nil {
		return res, err
	}
	res.took, res.cpu = time.Since(start), cpuTime()-cpu0
	res.others = machineBusy() - busy0 - res.cpu
	// Stop the service (keeping its data) so that what follows has the
	// cores to itself.
	if err := s.halt(); err != nil {
		return res, err
	}

	// What generation 2 embedded: its ledger's counters, and its chunk
	// texts that generation 1 did not have (the others' vectors were
	// reused) — which must be the texts predicted above.
	c, err = app.Open(ctx, cfgB, app.Options{Source: src, Exclusive: true})
	if err != nil {
		return res, err
	}
	defer c.Close()
	if c.Other == nil || c.Other.Gen.ID != 2 {
		return res, errors.New("generation 2 is not beside the serving one")
	}
	counters, err := c.Other.Ledger.Counters(ctx)
	if err != nil {
		return res, err
	}
	sum2, err := c.Other.Ledger.Summary(ctx)
	if err != nil {
		return res, err
	}
	res.embedded, res.reused, res.tokens, res.gen2Chunks = counters.ChunksEmbedded, counters.ChunksReused, counters.TokensEmbedded, sum2.Chunks
	old, err := chunkTexts(ctx, c.Index)
	if err != nil {
		return res, err
	}
	now, err := chunkTexts(ctx, c.Other.Index)
	if err != nil {
		return res, err
	}
	fresh := 0
	for t := range now {
		if !old[t] {
			fresh++
		}
	}
	predicted := map[string]bool{}
	for _, t := range texts {
		predicted[t] = true
		if !now[t] || old[t] {
			return res, fmt.Errorf("generation 2 did not embed a chunk text it was expected to: %.80q", t)
		}
	}
	if int64(fresh) != res.embedded || fresh != len(predicted) {
		return res, fmt.Errorf("generation 2 embedded %d chunks, has %d texts generation 1 lacks, %d were predicted", res.embedded, fresh, len(predicted))
	}
	res.embedCPU, res.embedOthers = cpu, others
	if res.embedAfter, cpu, others, err = embedAlone(ctx, m, texts, res.batch, res.parallel); err != nil {
		return res, err
	}
	res.embedCPU += cpu
	res.embedOthers += others
	return res, nil
}

// newChunkTexts chunks every object of src with both chunk settings, as
// the pipeline does, and returns the distinct texts of the large chunks
// that no small chunk has, in the order of the bucket.
func newChunkTexts(ctx context.Context, src *memsource.Source, cfg config.Config, small, large chunk.Config) ([]string, error) {
	ext := extract.New(extract.Config{MaxBytes: int64(cfg.Limits.MaxObjectBytes)})
	chSmall, err := chunk.New(small)
	if err != nil {
		return nil, err
	}
	chLarge, err := chunk.New(large)
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	var order []string
	err = src.List(ctx, "", "", func(obj freshen.ObjectInfo) error {
		r, err := src.Open(ctx, obj)
		if err != nil {
			return err
		}
		doc, err := ext.Extract(ctx, r, obj)
		r.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", obj.Key, err)
		}
		olds, err := chSmall.Split(doc)
		if err != nil {
			return err
		}
		for _, c := range olds {
			have[c.Text] = true
		}
		news, err := chLarge.Split(doc)
		if err != nil {
			return err
		}
		for _, c := range news {
			order = append(order, c.Text)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var texts []string
	for _, t := range order {
		if !have[t] {
			have[t] = true
			texts = append(texts, t)
		}
	}
	return texts, nil
}

// embedAlone embeds texts with the model alone, as the micro-batcher
// feeds it: batches of size, parallel calls at once.
// It reports the time it took, the CPU time it used, and the CPU time the
// machine's other processes used meanwhile.
func embedAlone(ctx context.Context, m *builtin.Model, texts []string, size, parallel int) (took, cpu, others time.Duration, err error) {
	start, cpu0, busy0 := time.Now(), cpuTime(), machineBusy()
	work := make(chan []string)
	errs := make(chan error, parallel)
	var wg sync.WaitGroup
	for w := 0; w < parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for batch := range work {
				if _, err := m.Embed(ctx, batch); err != nil {
					errs <- err
					for range work { // let the sender finish
					}
					return
				}
			}
		}()
	}
	for i := 0; i < len(texts); i += size {
		work <- texts[i:min(i+size, len(texts))]
	}
	close(work)
	wg.Wait()
	took, cpu = time.Since(start), cpuTime()-cpu0
	others = machineBusy() - busy0 - cpu
	close(errs)
	return took, cpu, others, <-errs
}

// chunkTexts is the set of chunk texts in an index.
func chunkTexts(ctx context.Context, idx freshen.Index) (map[string]bool, error) {
	sc, ok := idx.(freshen.Scanner)
	if !ok {
		return nil, fmt.Errorf("the %T index cannot be scanned", idx)
	}
	out := map[string]bool{}
	err := sc.Scan(ctx, func(rec freshen.Record) error {
		out[rec.Text] = true
		return nil
	})
	return out, err
}

// loadDemoCopies puts copies of the demo corpus into src, under the
// prefixes copy-01/, copy-02/, …; it returns the corpus's file count.
func loadDemoCopies(src *memsource.Source, copies int) (int, error) {
	root := filepath.Join("examples", "corpus")
	files := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		for n := 1; n <= copies; n++ {
			src.Put(fmt.Sprintf("copy-%02d/%s", n, rel), "", varyCopy(rel, body, n))
		}
		files++
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("the demo corpus (run from the repository's root): %w", err)
	}
	if files < 20 {
		return 0, fmt.Errorf("the demo corpus in %s has only %d files (run from the repository's root)", root, files)
	}
	return files, nil
}

// varyCopy makes copy n of a demo document differ from the other copies
// in every block (paragraph, list item, heading, table row, HTML element,
// JSON string) and every few sentences of a long one, so that no chunk of
// one copy has the text of a chunk of another: the embedding cache is
// content-addressed, and would embed identical copies once. Boilerplate
// repeated across the documents of one copy (an HTML footer) stays
// shared, as it would in a real bucket.
func varyCopy(name string, body []byte, n int) []byte {
	tag := fmt.Sprintf("(copy %d)", n)
	s := string(body)
	switch strings.ToLower(path.Ext(name)) {
	case ".html", ".htm":
		// The text between tags, and before every closing tag of a block.
		parts := strings.Split(s, "<")
		for i, p := range parts {
			if j := strings.IndexByte(p, '>'); j >= 0 && i > 0 {
				parts[i] = p[:j+1] + sprinkle(p[j+1:], tag)
			}
		}
		s = strings.Join(parts, "<")
		for _, end := range []string{"</title>", "</h1>", "</h2>", "</h3>", "</h4>", "</p>", "</li>", "</td>", "</th>", "</dt>", "</dd>"} {
			s = strings.ReplaceAll(s, end, " "+tag+end)
		}
	case ".json", ".jsonl":
		// Every string value (not the keys), layout kept.
		var b strings.Builder
		last := 0
		for _, m := range jsonString.FindAllStringIndex(s, -1) {
			rest := strings.TrimLeft(s[m[1]:], " \t\r\n")
			if strings.HasPrefix(rest, ":") {
				continue // a key
			}
			lit := s[m[0]:m[1]]
			b.WriteString(s[last:m[0]])
			b.WriteString(lit[:len(lit)-1] + " " + tag + `"`)
			last = m[1]
		}
		b.WriteString(s[last:])
		s = b.String()
	default:
		// Markdown and text: every line, and every few sentences of a
		// long one; a table row in its first cell; code fences and rules
		// stay as they are.
		lines := strings.Split(s, "\n")
		for i, l := range lines {
			t := strings.TrimSpace(l)
			switch {
			case strings.Trim(t, "-*_=|: ") == "" || strings.HasPrefix(t, "```"):
			case strings.HasPrefix(t, "|"):
				lines[i] = strings.Replace(l, "|", "| "+tag, 1)
			default:
				lines[i] = strings.TrimRight(sprinkle(l, tag), " ") + " " + tag
			}
		}
		s = strings.Join(lines, "\n")
	}
	return []byte(s)
}

// jsonString matches a JSON string literal.
var jsonString = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// sprinkle puts tag after every 25th word of text.
func sprinkle(text, tag string) string {
	words := strings.Split(text, " ")
	n := 0
	for i, w := range words {
		if strings.TrimSpace(w) == "" {
			continue
		}
		if n++; n%25 == 0 {
			words[i] = w + " " + tag
		}
	}
	return strings.Join(words, " ")
}

// machineBusy is the CPU time all of the machine's processes have used,
// from /proc/stat (zero where there is none).
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system irq softirq steal
		var n int64
		fmt.Sscan(f[i], &n)
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// cpuTime is the CPU time this process has used (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
