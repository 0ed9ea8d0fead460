package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/internal/app"
	"github.com/freshen-io/freshen/internal/config"
	"github.com/freshen-io/freshen/internal/memsource"
	"github.com/freshen-io/freshen/internal/sqlitedb"
	"github.com/freshen-io/freshen/internal/testenv"
)

// TestMain fails the package if any goroutine outlives its test: Run
// must stop every service it started before it returns.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type testBundle struct {
	src    *memsource.Source
	base   string
	client *http.Client
	cancel context.CancelFunc
	done   chan error
}

// setup runs the whole service on an in-memory bucket and a fake model.
func setup(t *testing.T) *testBundle { return setupAt(t, t.TempDir()) }

// setupAt is setup with the data directory at dir.
func setupAt(t *testing.T, dir string) *testBundle { return setupWith(t, dir, nil) }

// setupWith is setupAt with edit applied to the configuration.
func setupWith(t *testing.T, dir string, edit func(*config.Config)) *testBundle {
	t.Helper()
	cfg := config.Default()
	cfg.Source.Bucket = "docs"
	cfg.DataDir = dir
	cfg.Listen = "127.0.0.1:0"
	cfg.ReconcileInterval = config.Duration(time.Hour)
	if edit != nil {
		edit(&cfg)
	}
	return serve(t, cfg, memsource.New("docs"), &testenv.HashEmbedder{Dimension: 16})
}

// serve runs the service on cfg with src as the bucket and emb as the
// model until the test ends.
func serve(t *testing.T, cfg config.Config, src *memsource.Source, emb freshen.Embedder) *testBundle {
	t.Helper()
	b := &testBundle{src: src, client: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}, done: make(chan error, 1)}
	a, err := app.Open(context.Background(), cfg, app.Options{Source: b.src, Embedder: emb, Exclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	listening := make(chan string, 1)
	go func() {
		b.done <- Run(ctx, a, Options{OnListen: func(u string) { listening <- u }})
		a.Close()
	}()
	select {
	case b.base = <-listening:
	case err := <-b.done:
		t.Fatalf("Run: %v", err)
	}
	t.Cleanup(func() { b.stop(t) })
	return b
}

func (b *testBundle) stop(t *testing.T) {
	t.Helper()
	b.cancel()
	select {
	case err := <-b.done:
		if err != nil {
			t.Errorf("Run returned %v after a clean shutdown", err)
		}
		b.done <- nil // a second stop returns at once
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s of its context being cancelled")
	}
}

func (b *testBundle) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := b.client.Get(b.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRunEndToEndAndStopsCleanly: readiness after the first pass, a
// webhook event searchable, then a shutdown that leaves no goroutine.
func TestRunEndToEndAndStopsCleanly(t *testing.T) {
	b := setup(t)
	b.src.Put("listed.md", "text/markdown", []byte("# Listed\n\nFound by the first reconcile pass about lighthouses.\n"))
	eventually(t, "readiness", func() bool { code, _ := b.get(t, "/readyz"); return code == 200 })

	b.src.Put("hooked.md", "text/markdown", []byte("# Hooked\n\nAnnounced by a webhook event about harbors.\n"))
	ev := `{"Records":[{"eventVersion":"2.2","eventSource":"aws:s3","eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"docs"},"object":{"key":"hooked.md","size":1}}}]}`
	resp, err := b.client.Post(b.base+"/v1/events/s3", "application/json", strings.NewReader(ev))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("webhook: %d", resp.StatusCode)
	}
	q := "Announced by a webhook event about harbors."
	eventually(t, "the webhook's object to be searchable", func() bool {
		code, body := b.get(t, "/v1/search?q="+strings.ReplaceAll(q, " ", "+")+"&k=1")
		var hits []app.SearchHit
		json.Unmarshal([]byte(body), &hits)
		return code == 200 && len(hits) == 1 && hits[0].Key == "hooked.md"
	})
	// The index is written before the ledger commits: wait for the commit.
	eventually(t, "the ledger to record hooked.md", func() bool {
		code, body := b.get(t, "/v1/objects/hooked.md")
		return code == 200 && strings.Contains(body, `"state":"indexed"`)
	})
	code, body := b.get(t, "/metrics")
	if code != 200 || !strings.Contains(body, `freshen_events_received_total{origin="webhook"} 1`) {
		t.Fatalf("metrics lack the webhook event: %d", code)
	}
	eventually(t, "the cost gauges", func() bool {
		_, body := b.get(t, "/metrics")
		return strings.Contains(body, "\nfreshen_budget_remaining_tokens -1\n") && !strings.Contains(body, "\nfreshen_tokens_today 0\n")
	})
	b.stop(t)
	if _, err := b.client.Get(b.base + "/healthz"); err == nil {
		t.Fatal("the API still answers after Run returned")
	}
}

// TestListenFailureStopsWhatStarted: a start that fails half-way stops
// the services it started (goleak checks) and says why.
func TestListenFailureStopsWhatStarted(t *testing.T) {
	b := setup(t)
	cfg := config.Default()
	cfg.Source.Bucket, cfg.DataDir, cfg.Listen = "docs", t.TempDir(), strings.TrimPrefix(b.base, "http://")
	a, err := app.Open(context.Background(), cfg, app.Options{Source: memsource.New("docs"), Embedder: &testenv.HashEmbedder{Dimension: 16}, Exclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	err = Run(context.Background(), a, Options{})
	if err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("Run on a busy address: %v", err)
	}
}

// TestRefusesExposureWithoutTokens: listening beyond loopback without
// both tokens is refused before anything starts.
func TestRefusesExposureWithoutTokens(t *testing.T) {
	cfg := config.Default()
	cfg.Source.Bucket, cfg.DataDir, cfg.Listen = "docs", t.TempDir(), "0.0.0.0:0"
	a, err := app.Open(context.Background(), cfg, app.Options{Source: memsource.New("docs"), Embedder: &testenv.HashEmbedder{Dimension: 16}, Exclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	err = Run(context.Background(), a, Options{})
	if err == nil || !strings.Contains(err.Error(), "without api-token and webhook-token") {
		t.Fatalf("Run on 0.0.0.0 without tokens: %v", err)
	}
}

// startHTTP serves a handler that reads whole bodies, with limits.
func startHTTP(t *testing.T, limits httpLimits) *httpService {
	t.Helper()
	s := &httpService{addr: "127.0.0.1:0", timeout: time.Second, limits: limits,
		handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body); w.Write([]byte("ok")) })}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// TestSlowBodyIsTimedOut: a sender that trickles its body loses the
// connection instead of holding it (and a file descriptor) forever.
func TestSlowBodyIsTimedOut(t *testing.T) {
	s := startHTTP(t, httpLimits{ReadHeader: time.Second, Read: 300 * time.Millisecond, Write: time.Second, Idle: time.Second, MaxConns: 8})
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /v1/events/s3 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 512)
	for {
		if _, err := c.Read(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("the server kept a slow body's connection open for 10s")
			}
			return // closed by the server: good
		}
	}
}

// TestConnectionCap: connections over the cap wait until one closes.
func TestConnectionCap(t *testing.T) {
	s := startHTTP(t, httpLimits{ReadHeader: 10 * time.Second, Read: 10 * time.Second, Write: 10 * time.Second, Idle: 10 * time.Second, MaxConns: 2})
	var held []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := c.Read(make([]byte, 64)); err == nil {
		t.Fatal("a third connection was served while two were held and the cap is 2")
	}
	held[0].Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if !strings.Contains(string(b), "200 OK") {
		t.Fatalf("after a slot freed: %q, %v", b, err)
	}
	held[1].Close()
}

func (b *testBundle) post(t *testing.T, key string) int {
	t.Helper()
	ev := `{"Records":[{"eventVersion":"2.2","eventSource":"aws:s3","eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"docs"},"object":{"key":"` + key + `","size":1}}}]}`
	resp, err := b.client.Post(b.base+"/v1/events/s3", "application/json", strings.NewReader(ev))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestFullDiskIsReportedAndRecovers: with no space left for the data
// directory, run says so in /readyz, /v1/status and a metric, answers
// events with 503, and resumes by itself once space is freed.
func TestFullDiskIsReportedAndRecovers(t *testing.T) {
	disk := testenv.SmallDisk(t, 16<<20)
	b := setupAt(t, filepath.Join(disk, "data"))
	eventually(t, "readiness", func() bool { code, _ := b.get(t, "/readyz"); return code == 200 })
	free := testenv.FillDisk(t, disk)
	for i := 0; i < 20; i++ {
		key := fmt.Sprintf("doc-%02d.md", i)
		b.src.Put(key, "text/markdown", []byte(fmt.Sprintf("# Doc %d\n\n%s\n", i, strings.Repeat("Text about lighthouses and ferries. ", 300))))
		b.post(t, key)
	}
	eventually(t, "/readyz to report the full disk", func() bool {
		code, body := b.get(t, "/readyz")
		return code == 503 && strings.Contains(body, "no space left")
	})
	if _, body := b.get(t, "/v1/status"); !strings.Contains(body, `"problem":"no space left`) {
		t.Fatalf("status does not say: %s", body)
	}
	eventually(t, "freshen_stalled 1", func() bool {
		_, body := b.get(t, "/metrics")
		return strings.Contains(body, "\nfreshen_stalled 1\n")
	})
	free()
	// Space is back: the next events are queued and everything converges.
	eventually(t, "recovery", func() bool {
		for i := 0; i < 20; i++ {
			b.post(t, fmt.Sprintf("doc-%02d.md", i))
		}
		code, _ := b.get(t, "/readyz")
		return code == 200
	})
	eventually(t, "every document indexed", func() bool {
		_, body := b.get(t, "/v1/status")
		return strings.Contains(body, `"objects":20`) && strings.Contains(body, `"backlog":0`)
	})
	_, body := b.get(t, "/metrics")
	if !strings.Contains(body, "\nfreshen_stalled 0\n") {
		eventually(t, "freshen_stalled 0", func() bool { _, body := b.get(t, "/metrics"); return strings.Contains(body, "\nfreshen_stalled 0\n") })
	}
}

// TestPeriodicVerifyRepairs: with verify-interval set, a row deleted
// behind freshen's back is found and rewritten, and the metrics say so.
func TestPeriodicVerifyRepairs(t *testing.T) {
	dir := t.TempDir()
	// (The object is put after the start: a reconcile every second finds
	// it even when the first pass ran before the put.)
	b := setupWith(t, dir, func(c *config.Config) {
		c.VerifyInterval, c.ReconcileInterval = config.Duration(time.Second), config.Duration(time.Second)
	})
	b.src.Put("kept.md", "text/markdown", []byte("# Kept\n\nA paragraph about lighthouses and their keepers.\n"))
	eventually(t, "readiness", func() bool { code, _ := b.get(t, "/readyz"); return code == 200 })
	eventually(t, "kept.md to be indexed", func() bool {
		code, body := b.get(t, "/v1/objects/kept.md")
		return code == 200 && strings.Contains(body, `"state":"indexed"`)
	})
	db, err := sqlitedb.Open(context.Background(), filepath.Join(dir, "index.db"), "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DELETE FROM records`); err != nil {
		t.Fatal(err)
	}
	db.Exec(`UPDATE meta SET v = v + 1 WHERE k = 'generation'`)
	eventually(t, "the verify pass to repair the row", func() bool {
		_, body := b.get(t, "/metrics")
		var n int
		// (The drift gauge is the last pass's: it is back to 0 once a
		// pass runs after the repair, so it is not waited for.)
		return db.QueryRow(`SELECT count(*) FROM records`).Scan(&n) == nil && n > 0 &&
			strings.Contains(body, "freshen_verify_repaired_rows_total 1") && strings.Contains(body, `freshen_verify_passes_total{result="ok"}`)
	})
}
