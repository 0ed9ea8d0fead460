package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/freshen-io/freshen/internal/testenv"
)

// daemon is a running `freshen run`.
type daemon struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string
	log  *syncBuffer
	done chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// world is a bucket on versitygw whose webhook points at freshen (maybe
// through a proxy), with a `freshen run` that can be killed and restarted.
type world struct {
	*bundle
	port   int // freshen's
	d      *daemon
	hook   string // where versitygw sends events
	events *eventProxy
}

// newWorld starts freshen first (versitygw refuses to start without a
// listening webhook), then versitygw.
func newWorld(t *testing.T, interval string, dropEvery int) *world {
	t.Helper()
	return newWorldWith(t, interval, dropEvery, "")
}

// newWorldWith is newWorld with more configuration (YAML).
func newWorldWith(t *testing.T, interval string, dropEvery int, extraYAML string) *world {
	t.Helper()
	w := &world{bundle: &bundle{t: t, bucket: "docs", data: t.TempDir() + "/data"}, port: testenv.FreePort(t)}
	w.events = newEventProxy(t, fmt.Sprintf("http://127.0.0.1:%d/v1/events/s3", w.port), dropEvery)
	gwPort := testenv.FreePort(t)
	// The config needs the gateway's endpoint before it runs.
	w.gw = &testenv.VersityGW{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", gwPort)}
	w.cfg = t.TempDir() + "/freshen.yaml"
	w.writeConfig(fmt.Sprintf("reconcile-interval: %s\nlisten: 127.0.0.1:%d\n%s", interval, w.port, extraYAML))
	w.start()
	w.gw = testenv.StartVersityGW(t, testenv.GWOptions{WebhookURL: w.events.URL(), Port: gwPort})
	w.client = w.gw.CreateBucket(t, w.bucket)
	// The first reconcile pass fails until the bucket exists; wait for one
	// to succeed so that passes never race the test's first writes.
	waitFor(t, 15*time.Second, "first reconcile pass", func() (bool, string) { return w.get("/readyz", nil) == 200, "" })
	return w
}

func (w *world) start() {
	w.t.Helper()
	d := &daemon{t: w.t, addr: fmt.Sprintf("127.0.0.1:%d", w.port), log: &syncBuffer{}, done: make(chan error, 1)}
	d.cmd = exec.Command(freshenBin, "run", "--config", w.cfg, "-v")
	d.cmd.Env = append(os.Environ(), w.gw.Env()...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	w.t.Cleanup(func() { d.cmd.Process.Kill(); <-d.done })
	waitFor(w.t, 15*time.Second, "freshen run listening", func() (bool, string) {
		c, err := net.DialTimeout("tcp", d.addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return true, ""
		}
		select {
		case err := <-d.done:
			w.t.Fatalf("freshen run exited: %v\n%s", err, d.log)
		default:
		}
		return false, err.Error()
	})
	w.d = d
}

func (w *world) kill() {
	w.d.cmd.Process.Signal(syscall.SIGKILL)
	<-w.d.done
	w.d.done <- nil // for the cleanup
}

// get fetches an API path as JSON into v and returns the status code;
// header holds name, value pairs to send.
func (w *world) get(path string, v any, header ...string) int {
	w.t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+w.d.addr+path, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if v != nil {
		json.Unmarshal(body, v)
	}
	return resp.StatusCode
}

func (w *world) metric(name string) float64 {
	w.t.Helper()
	resp, err := http.Get("http://" + w.d.addr + "/metrics")
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	total, found := 0.0, false
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, name+" ") || strings.HasPrefix(line, name+"{") {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			total += v
			found = true
		}
	}
	if !found {
		w.t.Fatalf("metric %s not exposed", name)
	}
	return total
}

// exact polls until the index equals the ground truth, and returns how
// long it took.
func (w *world) exact(within time.Duration) time.Duration {
	w.t.Helper()
	start := time.Now()
	defer func() {
		if w.t.Failed() {
			w.t.Logf("freshen run log:\n%s", w.d.log)
		}
	}()
	waitFor(w.t, within, "index equals the bucket", func() (bool, string) {
		want := w.groundTruth()
		got, _ := w.indexRows()
		if len(want) != len(got) {
			return false, fmt.Sprintf("%d chunks in the index, %d in the bucket", len(got), len(want))
		}
		for i := range want {
			if !want[i].same(got[i]) {
				var obj map[string]any
				w.get("/v1/objects/"+urlPath(want[i].Key), &obj)
				return false, fmt.Sprintf("differs at %q: want %+v, index has %+v; ledger: %v", want[i].Key, want[i], got[i], obj)
			}
		}
		return true, ""
	})
	took := time.Since(start)
	w.assertExact()
	return took
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	last := ""
	for {
		ok, why := cond()
		if ok {
			return
		}
		if why != "" {
			last = why
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s (%s)", what, within, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// eventProxy forwards versitygw's webhook calls to freshen, recording
// them, and drops every dropEvery-th object event (answering 200 as if
// delivered) to simulate lost events.
type eventProxy struct {
	srv       *http.Server
	ln        net.Listener
	target    string
	dropEvery int
	mu        sync.Mutex
	n         int
	dropped   []string
	forwarded map[string]bool
	captured  [][]byte
}

func newEventProxy(t *testing.T, target string, dropEvery int) *eventProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &eventProxy{ln: ln, target: target, dropEvery: dropEvery, forwarded: map[string]bool{}}
	p.srv = &http.Server{Handler: p}
	go p.srv.Serve(ln)
	t.Cleanup(func() { p.srv.Close() })
	return p
}

func (p *eventProxy) URL() string { return "http://" + p.ln.Addr().String() + "/" }

func (p *eventProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	test := bytes.Contains(body, []byte("s3:TestEvent"))
	p.mu.Lock()
	drop := false
	if !test {
		p.n++
		drop = p.dropEvery > 0 && p.n%p.dropEvery == 0
		if drop {
			var ev struct {
				Records []struct {
					S3 struct{ Object struct{ Key string } }
				}
			}
			json.Unmarshal(body, &ev)
			for _, rec := range ev.Records {
				p.dropped = append(p.dropped, rec.S3.Object.Key)
			}
		} else {
			p.captured = append(p.captured, body)
			var ev struct {
				Records []struct {
					S3 struct{ Object struct{ Key string } }
				}
			}
			json.Unmarshal(body, &ev)
			for _, rec := range ev.Records {
				p.forwarded[rec.S3.Object.Key] = true
			}
		}
	}
	p.mu.Unlock()
	if drop {
		w.WriteHeader(http.StatusOK)
		return
	}
	resp, err := http.Post(p.target, r.Header.Get("Content-Type"), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	resp.Body.Close()
	w.WriteHeader(resp.StatusCode)
}

func (p *eventProxy) seen() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

func (p *eventProxy) snapshot() (dropped []string, captured [][]byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.dropped...), append([][]byte(nil), p.captured...)
}

func TestRunEventsKeepIndexFresh(t *testing.T) {
	w := newWorld(t, "1h", 0) // no reconcile after the first: events alone
	// PUTs, with odd keys.
	keys := []string{"a.md", "with space.md", "plus+sign.md", "percent%41.md", "ünï/cödé.md", "deep/x/y/z.txt"}
	// One at a time, each searchable within 5 s (see below on versitygw
	// and back-to-back requests).
	for i, k := range keys {
		w.put(k, contentType(k), []byte(fmt.Sprintf("# Doc %d\n\n%s\n", i, paragraph(rand.New(rand.NewSource(int64(i))), 40))))
		t.Logf("PUT %q converged in %s", k, w.exact(5*time.Second))
	}

	// Freshness: a new document is searchable within 5 s.
	start := time.Now()
	w.put("fresh.md", "text/markdown", []byte("# Fresh\n\n"+uniqueOld+"\n"))
	waitFor(t, 5*time.Second, "PUT searchable", func() (bool, string) {
		var hits []hit
		w.get("/v1/search?q="+urlQuery(uniqueOld)+"&k=1", &hits)
		return len(hits) > 0 && hits[0].Key == "fresh.md", ""
	})
	t.Logf("PUT searchable after %s", time.Since(start).Round(time.Millisecond))
	// Overwrite, delete, copy, DeleteObjects: each converges within 5 s.
	// One at a time: versitygw v1.8.0 builds an event from request buffers
	// that the next request may reuse before the event is marshalled, so
	// back-to-back requests can emit an event with a garbled key (seen in
	// CI: "with space.md" announced as "a.md space.md"). Such an event is a
	// lost event, which only the reconciler (disabled here) recovers.
	for _, op := range []struct {
		name string
		do   func()
	}{
		{"overwrite", func() { w.put("a.md", "text/markdown", []byte("# Doc 0\n\nRewritten entirely: "+uniqueNew+"\n")) }},
		{"delete", func() { testenv.Delete(t, w.client, w.bucket, "with space.md") }},
		{"copy", func() { testenv.Copy(t, w.client, w.bucket, "plus+sign.md", "copy of plus+sign.md", nil) }},
		{"DeleteObjects", func() {
			_, err := w.client.DeleteObjects(t.Context(), &s3.DeleteObjectsInput{Bucket: aws.String(w.bucket), Delete: &types.Delete{
				Objects: []types.ObjectIdentifier{{Key: aws.String("percent%41.md")}, {Key: aws.String("deep/x/y/z.txt")}}}})
			if err != nil {
				t.Fatal(err)
			}
		}},
	} {
		op.do()
		t.Logf("%s converged in %s", op.name, w.exact(5*time.Second))
	}
	// A deleted document disappears within 5 s.
	start = time.Now()
	testenv.Delete(t, w.client, w.bucket, "fresh.md")
	waitFor(t, 5*time.Second, "deleted document gone", func() (bool, string) {
		var hits []hit
		w.get("/v1/search?q="+urlQuery(uniqueOld)+"&k=5", &hits)
		for _, h := range hits {
			if h.Key == "fresh.md" {
				return false, ""
			}
		}
		return true, ""
	})
	t.Logf("DELETE gone after %s", time.Since(start).Round(time.Millisecond))
	w.exact(5 * time.Second)
	if found := w.metric("freshen_changes_found_by_reconcile_total"); found != 0 {
		t.Errorf("with every event delivered, the reconciler found %v changes", found)
	}
	var obj map[string]any
	if code := w.get("/v1/objects/"+urlPath("copy of plus+sign.md"), &obj); code != 200 || obj["state"] != "indexed" {
		t.Errorf("GET /v1/objects: %d %v", code, obj)
	}
	if code := w.get("/v1/objects/never-existed.md", nil); code != 404 {
		t.Errorf("GET /v1/objects of an unknown key: %d", code)
	}

	// Duplicated and reordered events: replay everything captured,
	// shuffled, three times. Same index, no new embeddings.
	before, _ := w.indexRows()
	embedded := w.metric("freshen_chunks_embedded_total")
	_, captured := w.events.snapshot()
	r := rand.New(rand.NewSource(7))
	for round := 0; round < 3; round++ {
		r.Shuffle(len(captured), func(i, j int) { captured[i], captured[j] = captured[j], captured[i] })
		for _, body := range captured {
			resp, err := http.Post("http://"+w.d.addr+"/v1/events/s3", "application/json", bytes.NewReader(body))
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("replay: %v %v", resp, err)
			}
			resp.Body.Close()
		}
	}
	waitFor(t, 10*time.Second, "replayed events processed", func() (bool, string) {
		var st status
		w.get("/v1/status", &st)
		return st.Backlog == 0, fmt.Sprintf("backlog %d", st.Backlog)
	})
	after, _ := w.indexRows()
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("replaying events changed the index")
	}
	if got := w.metric("freshen_chunks_embedded_total"); got != embedded {
		t.Errorf("replaying events embedded %v more chunks", got-embedded)
	}
	w.exact(time.Second)

	// Metrics after the workload.
	for name, min := range map[string]float64{
		"freshen_events_received_total": 10, "freshen_objects_processed_total": 10, "freshen_chunks_embedded_total": 5,
		"freshen_freshness_lag_seconds_count": 10, "freshen_reconcile_passes_total": 1, "freshen_reconcile_keys_scanned_total": 0, "freshen_tokens_reused_total": 1, "freshen_chunks_reused_total": 1,
	} {
		if v := w.metric(name); v < min {
			t.Errorf("%s = %v, want >= %v", name, v, min)
		}
	}
	// The gauge is sampled every second: give it one sample.
	waitFor(t, 3*time.Second, "freshen_backlog_keys to read 0 after draining", func() (bool, string) {
		v := w.metric("freshen_backlog_keys")
		return v == 0, fmt.Sprintf("freshen_backlog_keys = %v", v)
	})
}

func TestRunConvergesWhenEventsAreLost(t *testing.T) {
	const interval = 3 * time.Second
	w := newWorld(t, "3s", 2) // every second event is dropped
	var keys []string
	for i := 0; i < 12; i++ {
		keys = append(keys, fmt.Sprintf("lost/doc-%02d.md", i))
		w.put(keys[i], "text/markdown", []byte(fmt.Sprintf("# Doc %d\n\n%s\n", i, paragraph(rand.New(rand.NewSource(int64(i))), 30))))
	}
	// versitygw delivers each event from its own goroutine: wait for all 12.
	waitFor(t, 10*time.Second, "12 events delivered to the proxy", func() (bool, string) {
		return w.events.seen() == 12, fmt.Sprintf("%d seen", w.events.seen())
	})
	dropped, _ := w.events.snapshot()
	if len(dropped) != 6 {
		t.Fatalf("dropped %d events, want 6", len(dropped))
	}
	// Within one reconcile interval (plus the time to process).
	took := w.exact(interval + 5*time.Second)
	t.Logf("converged %s after the last write, %d of 12 events lost", took.Round(time.Millisecond), len(dropped))
	// Exactly the changes whose event never reached freshen intact: the
	// dropped ones, plus any versitygw garbled (see TestRunEventsKeepIndexFresh);
	// one more if a pass listed a key between its PUT and its event.
	w.events.mu.Lock()
	lost := 0
	for _, k := range keys {
		if !w.events.forwarded[k] {
			lost++
		}
	}
	w.events.mu.Unlock()
	if found := w.metric("freshen_changes_found_by_reconcile_total"); int(found) < lost || int(found) > lost+1 {
		t.Errorf("changes_found_by_reconcile_total = %v, want %d (the lost events, %d of them dropped)", found, lost, len(dropped))
	}
}

func TestRunCrashAndGracefulShutdown(t *testing.T) {
	w := newWorld(t, "2s", 0)
	writer := func(from, to int) {
		for i := from; i < to; i++ {
			w.put(fmt.Sprintf("burst/%03d.md", i), "text/markdown", []byte(markdownDoc(int64(i), 1, 2)))
		}
	}
	// kill -9 in the middle of a burst; events sent while it is down are
	// lost (connection refused), so the reconciler must find them.
	go writer(0, 40)
	time.Sleep(700 * time.Millisecond)
	w.kill()
	writer(40, 50)
	w.start()
	t.Logf("after kill -9: converged in %s", w.exact(30*time.Second))

	// SIGTERM under load: in-flight objects finish, the process exits 0.
	go writer(50, 80)
	time.Sleep(500 * time.Millisecond)
	w.d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-w.d.done:
		if err != nil {
			t.Fatalf("graceful shutdown exited with %v\n%s", err, w.d.log)
		}
		w.d.done <- nil
	case <-time.After(20 * time.Second):
		t.Fatal("freshen run did not stop within 20s of SIGTERM")
	}
	if !strings.Contains(w.d.log.String(), "stopped cleanly") {
		t.Errorf("no clean stop in the log:\n%s", w.d.log)
	}
	w.start()
	t.Logf("after SIGTERM: converged in %s", w.exact(30*time.Second))
}

func TestRunRejectsBadInput(t *testing.T) {
	w := newWorld(t, "1h", 0)
	url := "http://" + w.d.addr + "/v1/events/s3"
	post := func(ct, body string) int {
		resp, err := http.Post(url, ct, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		ct, body string
		want     int
	}{
		{"application/json", `{"Records":[`, 400},
		{"application/json", `{"not":"an event"}`, 400},
		{"image/png", `{}`, 415},
		{"application/json", `{"Records":[]}` + strings.Repeat(" ", 300<<10), 413},
	} {
		if got := post(c.ct, c.body); got != c.want {
			t.Errorf("POST %s %.30q: %d, want %d", c.ct, c.body, got, c.want)
		}
	}
	if v := w.metric("freshen_events_malformed_total"); v != 4 {
		t.Errorf("malformed = %v, want 4", v)
	}
	// A burst of 1,000 events in a few seconds: all accepted, all processed.
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	failures := 0
	sem := make(chan struct{}, 16)
	for i := 0; i < 1000; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			body := fmt.Sprintf(`{"Records":[{"eventName":"s3:ObjectCreated:Put","eventTime":"2026-11-26T07:42:08Z","s3":{"bucket":{"name":"docs"},"object":{"key":"ghost/%04d.md","size":1}}}]}`, i)
			if post("application/json", body) != 200 {
				mu.Lock()
				failures++
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	accepted := time.Since(start)
	if failures > 0 {
		t.Fatalf("%d of 1000 events rejected", failures)
	}
	waitFor(t, 60*time.Second, "1000 events processed", func() (bool, string) {
		v := w.metric(`freshen_objects_processed_total{outcome="absent"}`)
		return v >= 1000, fmt.Sprintf("%v processed", v)
	})
	t.Logf("1000 events accepted in %s", accepted.Round(time.Millisecond))
	if code := w.get("/healthz", nil); code != 200 {
		t.Errorf("healthz after bad input: %d", code)
	}
}

func urlQuery(s string) string { return strings.ReplaceAll(s, " ", "+") }

func urlPath(s string) string {
	return strings.NewReplacer(" ", "%20", "+", "%2B", "%", "%25").Replace(s)
}

// TestReadYourWrites: a writer PUTs a document and waits on freshen for
// that version; the wait answers once it is searchable (within the
// event's round trip), and a search with fresh-as-of finds it.
func TestReadYourWrites(t *testing.T) {
	w := newWorld(t, "1h", 0)
	key := "notes/read your writes+ü.md"
	put := func(body string) string {
		t.Helper()
		out, err := w.client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(w.bucket), Key: aws.String(key),
			ContentType: aws.String("text/markdown"), Body: strings.NewReader(body)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.ETag)
	}
	// 100 sequential round trips: PUT, wait, search; each finds its text.
	var took []time.Duration
	for i := range 100 {
		word := fmt.Sprintf("marmalade%03d", i)
		etag := put(fmt.Sprintf("# Fresh\n\nRevision %d: a note about %s and lighthouses.\n", i, word))
		start := time.Now()
		var res map[string]any
		code := w.get("/v1/wait?key="+url.QueryEscape(key)+"&etag="+url.QueryEscape(etag)+"&timeout=20s", &res)
		if code != 200 || res["searchable"] != true {
			t.Fatalf("round %d: wait: %d %v\n%s", i, code, res, w.d.log)
		}
		took = append(took, time.Since(start))
		var hits []map[string]any
		q := "/v1/search?q=" + word + "&k=1&prefix=" + url.QueryEscape(key) + "&fresh-as-of=" + url.QueryEscape(key+":"+etag)
		if code := w.get(q, &hits); code != 200 || len(hits) == 0 || !strings.Contains(fmt.Sprint(hits[0]["text"]), word) {
			t.Fatalf("round %d: search after the wait: %d %v", i, code, hits)
		}
	}
	slices.Sort(took)
	t.Logf("100/100 round trips found their text; PUT returned -> searchable: p50 %s, p99 %s", took[49].Round(time.Millisecond), took[98].Round(time.Millisecond))

	// A version whose change never arrives (its event is lost, and the
	// reconciler runs hourly): the wait times out with 408 and the state.
	w.events.mu.Lock()
	w.events.dropEvery, w.events.n = 1, 0
	w.events.mu.Unlock()
	etag := put("# Fresh\n\nA revision nobody announces.\n")
	var res map[string]any
	if code := w.get("/v1/wait?key="+url.QueryEscape(key)+"&etag="+url.QueryEscape(etag)+"&timeout=1s", &res); code != 408 || fmt.Sprint(res["state"]) == "<nil>" || res["state"].(map[string]any)["searchable"] != false {
		t.Fatalf("wait for a version never announced: %d %v", code, res)
	}
}
