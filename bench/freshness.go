package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/embed/builtin"
	"github.com/freshen-io/freshen/index/embedded"
	"github.com/freshen-io/freshen/internal/app"
	"github.com/freshen-io/freshen/internal/config"
	"github.com/freshen-io/freshen/internal/daemon"
	"github.com/freshen-io/freshen/internal/pipeline"
	"github.com/freshen-io/freshen/internal/testenv"
	s3source "github.com/freshen-io/freshen/source/s3"
)

const (
	gwAccess = "freshen-bench"
	gwSecret = "freshen-bench-secret"
)

// commits records when each key became searchable.
type commits struct {
	mu   sync.Mutex
	done map[string]pipeline.Result
	at   map[string]time.Time
}

func (c *commits) add(r pipeline.Result) {
	if r.Outcome != pipeline.OutcomeIndexed {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done[r.Key] = r
	c.at[r.Key] = time.Now()
}

func (c *commits) get(key string) (pipeline.Result, time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.done[key]
	return r, c.at[key], ok
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (r *runner) freshness() (section, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gwBin, err := testenv.FindBinary("versitygw")
	if err != nil {
		return section{}, err
	}
	dir, err := os.MkdirTemp("", "freshen-freshness-")
	if err != nil {
		return section{}, err
	}
	defer os.RemoveAll(dir)
	apiPort, gwPort := freePort(), freePort()
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", gwPort)
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": gwAccess, "AWS_SECRET_ACCESS_KEY": gwSecret, "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"} {
		os.Setenv(k, v)
	}
	cfgPath := filepath.Join(dir, "freshen.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf("source:\n  bucket: docs\n  endpoint: %s\n  path-style: true\ndata-dir: data\nlisten: 127.0.0.1:%d\n", endpoint, apiPort)), 0o644)
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		return section{}, err
	}
	a, err := app.Open(ctx, cfg, app.Options{Exclusive: true})
	if err != nil {
		return section{}, err
	}
	defer a.Close()
	cs := &commits{done: map[string]pipeline.Result{}, at: map[string]time.Time{}}
	listening := make(chan string, 1)
	runDone := make(chan error, 1)
	go func() {
		runDone <- daemon.Run(ctx, a, daemon.Options{OnResult: cs.add, OnListen: func(u string) { listening <- u }})
	}()
	api := <-listening

	os.MkdirAll(filepath.Join(dir, "s3/root"), 0o755)
	os.MkdirAll(filepath.Join(dir, "s3/ver"), 0o755)
	gw := exec.Command(gwBin, "--port", fmt.Sprintf("127.0.0.1:%d", gwPort), "--access", gwAccess, "--secret", gwSecret, "--quiet",
		"--event-webhook-url", api+"/v1/events/s3", "posix", "--versioning-dir", filepath.Join(dir, "s3/ver"), filepath.Join(dir, "s3/root"))
	gw.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := gw.Start(); err != nil {
		return section{}, err
	}
	defer func() { gw.Process.Kill(); gw.Wait() }()
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", gwPort)); err == nil {
			c.Close()
			break
		}
		if i > 200 {
			return section{}, errors.New("versitygw did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	src, err := s3source.New(ctx, s3source.Config{Bucket: "docs", Endpoint: endpoint, PathStyle: true})
	if err != nil {
		return section{}, err
	}
	client := src.Client()
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("docs")}); err != nil {
		return section{}, err
	}

	rnd := rand.New(rand.NewSource(42))
	var mu sync.Mutex
	acked := map[string]time.Time{}
	texts := map[string]string{}
	put := func(key string) error {
		mu.Lock()
		body := fmt.Sprintf("# Note %s\n\n%s\n", key, paragraph(rnd, 40+rnd.Intn(30)))
		texts[key] = body
		mu.Unlock()
		_, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("docs"), Key: aws.String(key), Body: strings.NewReader(body), ContentType: aws.String("text/markdown")})
		mu.Lock()
		acked[key] = time.Now()
		mu.Unlock()
		return err
	}
	wait := func(keys []string, limit time.Duration) error {
		deadline := time.Now().Add(limit)
		for _, k := range keys {
			for {
				if _, _, ok := cs.get(k); ok {
					break
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("%s not searchable within %s", k, limit)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		return nil
	}
	type phase struct {
		name           string
		lags, overhead []float64
		embed          []float64
	}
	measure := func(name string, keys []string) phase {
		p := phase{name: name}
		for _, k := range keys {
			res, at, _ := cs.get(k)
			mu.Lock()
			ack := acked[k]
			mu.Unlock()
			lag := at.Sub(ack).Seconds() * 1000
			p.lags = append(p.lags, lag)
			p.embed = append(p.embed, res.EmbedTime.Seconds()*1000)
			p.overhead = append(p.overhead, lag-res.EmbedTime.Seconds()*1000)
		}
		return p
	}

	rates := []int{2, 5, 10}
	dur := 8 * time.Second
	burstN := 1000
	if r.quick {
		rates, dur, burstN = []int{5}, 3*time.Second, 200
	}
	var phases []phase
	var all []float64
	var allOverhead []float64
	for _, rate := range rates {
		n := int(dur.Seconds()) * rate
		keys := make([]string, n)
		var wg sync.WaitGroup
		errs := make(chan error, n)
		tick := time.NewTicker(time.Second / time.Duration(rate))
		for i := range keys {
			<-tick.C
			keys[i] = fmt.Sprintf("rate-%d/%04d.md", rate, i)
			wg.Add(1)
			go func(k string) { defer wg.Done(); errs <- put(k) }(keys[i])
		}
		tick.Stop()
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				return section{}, err
			}
		}
		if err := wait(keys, time.Minute); err != nil {
			return section{}, err
		}
		p := measure(fmt.Sprintf("steady %d PUT/s", rate), keys)
		phases = append(phases, p)
		all = append(all, p.lags...)
		allOverhead = append(allOverhead, p.overhead...)
	}

	// Burst: burstN PUTs as fast as 16 uploaders go.
	keys := make([]string, burstN)
	for i := range keys {
		keys[i] = fmt.Sprintf("burst/%05d.md", i)
	}
	start := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	var perr error
	var perrMu sync.Mutex
	for _, k := range keys {
		wg.Add(1)
		sem <- struct{}{}
		go func(k string) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := put(k); err != nil {
				perrMu.Lock()
				perr = err
				perrMu.Unlock()
			}
		}(k)
	}
	wg.Wait()
	if perr != nil {
		return section{}, perr
	}
	uploaded := time.Since(start)
	if err := wait(keys, 10*time.Minute); err != nil {
		return section{}, err
	}
	var last time.Time
	for _, k := range keys {
		if _, at, _ := cs.get(k); at.After(last) {
			last = at
		}
	}
	drain := last.Sub(start)
	var lastAck time.Time
	mu.Lock()
	for _, k := range keys {
		if acked[k].After(lastAck) {
			lastAck = acked[k]
		}
	}
	mu.Unlock()
	doneBefore := 0
	for _, k := range keys {
		if _, at, _ := cs.get(k); at.Before(lastAck) {
			doneBefore++
		}
	}
	burst := measure(fmt.Sprintf("burst of %d", burstN), keys)

	// What the embedder alone needs for the same texts, with as many
	// concurrent callers as there are workers.
	m, err := builtin.Default()
	if err != nil {
		return section{}, err
	}
	var chunkTexts []string
	a.Index.(*embedded.Index).Scan(ctx, func(rec freshen.Record) error {
		if strings.HasPrefix(rec.Key, "burst/") {
			chunkTexts = append(chunkTexts, rec.Text)
		}
		return nil
	})
	// The embedder's best: batches of 32, one call per core at once.
	t0 := time.Now()
	work := make(chan []string)
	var ewg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		ewg.Add(1)
		go func() {
			defer ewg.Done()
			for batch := range work {
				m.Embed(ctx, batch)
			}
		}()
	}
	for i := 0; i < len(chunkTexts); i += 32 {
		work <- chunkTexts[i:min(i+32, len(chunkTexts))]
	}
	close(work)
	ewg.Wait()
	embedOnly := time.Since(t0)

	// Sanity: the API finds a burst document by its own text.
	var hits []struct{ Key string }
	getJSONInto(api+"/v1/search?k=1&q="+urlEscape(texts[keys[len(keys)/2]]), &hits)
	if len(hits) == 0 || hits[0].Key != keys[len(keys)/2] {
		return section{}, fmt.Errorf("search did not find %s: %v", keys[len(keys)/2], hits)
	}
	flood, err := eventFlood(ctx, r.quick, api, put, acked, &mu, cs, a)
	if err != nil {
		return section{}, err
	}
	cancel()
	<-runDone

	var rows [][]string
	for _, p := range append(phases, burst) {
		rows = append(rows, []string{p.name, fmt.Sprint(len(p.lags)), ms(percentile(p.lags, 50)), ms(percentile(p.lags, 95)), ms(percentile(p.lags, 99)),
			ms(percentile(p.embed, 50)), ms(percentile(p.overhead, 50)), ms(percentile(p.overhead, 99))})
	}
	var loads []string
	stats := map[string][]float64{}
	for _, p := range append(phases, burst) {
		loads = append(loads, p.name)
		stats[p.name] = []float64{percentile(p.lags, 50), percentile(p.lags, 95), percentile(p.lags, 99)}
	}
	if err := barChart(filepath.Join(r.results, "freshness.png"), "PUT acknowledged -> searchable, ms (log scale)", loads,
		[]string{"p50", "p95", "p99"}, func(g string, s int) float64 { return stats[g][s] }); err != nil {
		return section{}, err
	}
	r.summary["freshness_p50_ms"] = round(percentile(all, 50), 1)
	r.summary["freshness_p99_ms"] = round(percentile(all, 99), 1)
	r.summary["pipeline_overhead_p99_ms"] = round(percentile(allOverhead, 99), 1)
	r.summary["burst_1000_drain_s"] = round(drain.Seconds(), 2)
	if burstN != 1000 {
		delete(r.summary, "burst_1000_drain_s")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "versitygw on loopback sends S3 event notifications (webhook) to `freshen run` (in-process here, so each object's embedding time is known; default settings: %d workers, the built-in model behind the micro-batcher, a reconcile pass every 5 minutes — so a lost event would show as a multi-minute outlier). Small Markdown notes (~60 tokens, one chunk) are PUT at steady rates, then in a burst by 16 concurrent uploaders. Lag = PUT acknowledged → the object's chunks committed to the index (the ledger commit follows the index write, so this bounds searchability from above). Overhead = lag − time spent in the embedder for that object.\n\n", cfg.Workers)
	b.WriteString(table([]string{"load", "objects", "lag p50 ms", "lag p95 ms", "lag p99 ms", "embed p50 ms", "overhead p50 ms", "overhead p99 ms"}, rows))
	fmt.Fprintf(&b, "\nBurst of %d: uploads took %s (by the last acknowledgement %d objects were already searchable, while the uploads and the S3 server shared the cores); all searchable %.2f s after the first PUT. The embedder alone, at its best (batches of 32, %d calls at once), needs %.2f s for the same %d chunks: the whole pipeline — webhooks, queue, HEAD/GET, extraction, chunking, index and ledger writes — adds %.0f%%.\n",
		burstN, uploaded.Round(time.Millisecond), doneBefore, drain.Seconds(), runtime.GOMAXPROCS(0), embedOnly.Seconds(), len(chunkTexts), 100*(drain.Seconds()/embedOnly.Seconds()-1))
	fmt.Fprintf(&b, "\nFlood: %d webhook events for keys that do not exist (junk, as a hostile or broken sender makes), posted by 32 senders in %s (%.0f events/s accepted); one real PUT made after a quarter of them was searchable **%.2f s** after its acknowledgement, and every junk key was checked and dropped %.2f s after the flood began.\n",
		flood.n, flood.sent.Round(time.Millisecond), float64(flood.n)/flood.sent.Seconds(), flood.real.Seconds(), flood.drained.Seconds())
	r.summary["flood_real_put_s"] = round(flood.real.Seconds(), 2)
	b.WriteString("\n![freshness lag](bench/results/freshness.png)\n")
	r.summary["burst_embedder_only_s"] = round(embedOnly.Seconds(), 2)
	return section{title: "Freshness under load", body: b.String()}, nil
}

func ms(x float64) string { return fmt.Sprintf("%.0f", x) }

type floodResult struct {
	n                   int
	sent, real, drained time.Duration
}

// eventFlood posts junk events for absent keys as fast as 32 senders go
// and PUTs one real object a quarter of the way in: how long the real
// change waits behind the junk is what a flood costs.
func eventFlood(ctx context.Context, quick bool, api string, put func(string) error, acked map[string]time.Time, mu *sync.Mutex, cs *commits, a *app.App) (floodResult, error) {
	res := floodResult{n: 24000}
	if quick {
		res.n = 4000
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	defer client.CloseIdleConnections()
	var sent atomic.Int64
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				ev := fmt.Sprintf(`{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","eventTime":"2024-01-01T00:00:00.000Z","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"docs"},"object":{"key":"junk/%06d.md","size":1}}}]}`, i)
				resp, err := client.Post(api+"/v1/events/s3", "application/json", strings.NewReader(ev))
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				sent.Add(1)
			}
		}()
	}
	start := time.Now()
	realErr := make(chan error, 1)
	go func() {
		for sent.Load() < int64(res.n/4) {
			time.Sleep(time.Millisecond)
		}
		realErr <- put("flood/real.md")
	}()
	for i := 0; i < res.n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	res.sent = time.Since(start)
	if err := <-realErr; err != nil {
		return res, err
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		if _, at, ok := cs.get("flood/real.md"); ok {
			mu.Lock()
			res.real = at.Sub(acked["flood/real.md"])
			mu.Unlock()
			break
		}
		if time.Now().After(deadline) {
			return res, errors.New("the real PUT was not searchable within 5 minutes of a flood")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for {
		if n, _, err := a.Ledger.Backlog(ctx); err == nil && n == 0 {
			res.drained = time.Since(start)
			return res, nil
		}
		if time.Now().After(deadline) {
			return res, errors.New("the flood did not drain within 5 minutes")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
