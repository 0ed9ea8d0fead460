package webhook

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/feed/feedtest"
	"github.com/freshen-io/freshen/feed/sns"
	"github.com/freshen-io/freshen/feed/sns/snstest"
	"github.com/freshen-io/freshen/internal/intake"
	"github.com/freshen-io/freshen/ledger/sqlite"
)

type counts struct {
	mu                  sync.Mutex
	received, malformed int
	ignored             map[string]int
}

func (c *counts) Received(_ string, n int) { c.mu.Lock(); c.received += n; c.mu.Unlock() }
func (c *counts) Malformed(_ string, n int) {
	c.mu.Lock()
	c.malformed += n
	c.mu.Unlock()
}
func (c *counts) Ignored(_, reason string, n int) {
	c.mu.Lock()
	c.ignored[reason] += n
	c.mu.Unlock()
}

const put = `{"Records":[{"eventVersion":"2.2","eventSource":"aws:s3","eventTime":"2026-11-26T07:42:08Z","eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"docs"},"object":{"key":"KEY","size":14,"eTag":"\"e\"","versionId":null,"sequencer":"1"}}}]}`

// setup runs a webhook feed into the real intake over a SQLite ledger.
func setup(t *testing.T, token string, edit ...func(*Config)) (*httptest.Server, *sqlite.Ledger, *counts, *atomic.Int64) {
	t.Helper()
	led, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "l.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { led.Close() })
	c := &counts{ignored: map[string]int{}}
	var wakes atomic.Int64
	sink := intake.New(intake.Config{Bucket: "docs", Match: func(k string) bool { return !strings.HasPrefix(k, "private/") }},
		led, c, func() { wakes.Add(1) })
	cfg := Config{Token: token, MaxBodyBytes: 4096}
	for _, e := range edit {
		e(&cfg)
	}
	f := New(cfg, nil)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	run(t, f, sink)
	return srv, led, c, &wakes
}

// run runs f until the test ends.
func run(t *testing.T, f *Feed, sink freshen.Sink) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx, sink); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	for f.sink.Load() == nil {
		runtime.Gosched()
	}
}

func TestConformance(t *testing.T) {
	feedtest.Run(t, func(t *testing.T) feedtest.Harness {
		f := New(Config{}, nil)
		srv := httptest.NewServer(f)
		t.Cleanup(srv.Close)
		return feedtest.Harness{Feed: f, Bucket: "docs", Publish: func(ctx context.Context, body []byte) *feedtest.Delivery {
			d, settle := feedtest.NewDelivery()
			go func() {
				for {
					req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						settle(false)
						return
					}
					resp.Body.Close()
					if resp.StatusCode == http.StatusServiceUnavailable && f.sink.Load() == nil {
						continue // Run has not started yet
					}
					// 2xx and 4xx are final for the sender; 5xx asks it to retry.
					settle(resp.StatusCode < 500)
					return
				}
			}()
			return d
		}}
	})
}

func TestNotReadyBeforeRun(t *testing.T) {
	srv := httptest.NewServer(New(Config{}, nil))
	defer srv.Close()
	if code := post(t, srv.URL, "application/json", strings.Replace(put, "KEY", "a.md", 1)); code != http.StatusServiceUnavailable {
		t.Fatalf("status %d before Run, want 503", code)
	}
}

// TestSNSSubscriptionIsConfirmed: an SNS HTTP subscription works end to
// end: the confirmation is fetched, signed notifications are queued, and
// unsigned, forged or foreign-topic messages are refused.
func TestSNSSubscriptionIsConfirmed(t *testing.T) {
	fake := snstest.New(t)
	srv, led, c, _ := setup(t, "", func(cfg *Config) {
		cfg.SNS = SNSConfig{Verify: true, Hosts: []string{snstest.Host}, Client: fake.Client()}
	})
	if code := post(t, srv.URL, "text/plain", string(snstest.JSON(fake.Confirmation()))); code != 200 {
		t.Fatalf("confirmation: status %d", code)
	}
	if fake.Confirmed.Load() != 1 {
		t.Fatalf("SubscribeURL fetched %d times, want 1", fake.Confirmed.Load())
	}
	note := fake.Notification(strings.Replace(put, "KEY", "sns.md", 1))
	if code := post(t, srv.URL, "text/plain", string(snstest.JSON(note))); code != 200 {
		t.Fatalf("notification: status %d", code)
	}
	if q, _ := led.Queued(context.Background(), "docs", "sns.md"); !q {
		t.Fatal("the notification's change was not queued")
	}
	forged := note
	forged.Message = strings.Replace(put, "KEY", "forged.md", 1)
	unsigned := fake.Notification(strings.Replace(put, "KEY", "unsigned.md", 1))
	unsigned.Signature, unsigned.SignatureVersion = "", ""
	for name, m := range map[string]sns.Message{"forged": forged, "unsigned": unsigned} {
		if code := post(t, srv.URL, "text/plain", string(snstest.JSON(m))); code != http.StatusForbidden {
			t.Errorf("%s notification: status %d, want 403", name, code)
		}
	}
	if c.ignored["unauthorized"] != 2 {
		t.Fatalf("ignored = %v, want 2 unauthorized", c.ignored)
	}
	for _, k := range []string{"forged.md", "unsigned.md"} {
		if q, _ := led.Queued(context.Background(), "docs", k); q {
			t.Errorf("%s was queued", k)
		}
	}
}

func TestSNSRejectsUntrustedConfirmation(t *testing.T) {
	fake := snstest.New(t)
	// Default hosts (AWS only): the loopback SubscribeURL is not fetched.
	srv, _, c, _ := setup(t, "", func(cfg *Config) { cfg.SNS = SNSConfig{Verify: true, Client: fake.Client()} })
	if code := post(t, srv.URL, "text/plain", string(snstest.JSON(fake.Confirmation()))); code != http.StatusForbidden {
		t.Fatalf("status %d, want 403", code)
	}
	if fake.Confirmed.Load() != 0 || c.ignored["unauthorized"] != 1 {
		t.Fatalf("confirmed %d, ignored %v", fake.Confirmed.Load(), c.ignored)
	}
	// A topic outside webhook.sns-topics is refused too.
	srv2, _, _, _ := setup(t, "", func(cfg *Config) {
		cfg.SNS = SNSConfig{Verify: true, Hosts: []string{snstest.Host}, Client: fake.Client(), Topics: []string{"arn:aws:sns:us-east-1:1:other"}}
	})
	if code := post(t, srv2.URL, "text/plain", string(snstest.JSON(fake.Confirmation()))); code != http.StatusForbidden {
		t.Fatalf("foreign topic: status %d, want 403", code)
	}
	if fake.Confirmed.Load() != 0 {
		t.Fatal("a foreign topic's subscription was confirmed")
	}
}

func post(t *testing.T, url, contentType, body string, header ...string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestQueuesBeforeAnswering(t *testing.T) {
	srv, led, c, wakes := setup(t, "")
	if code := post(t, srv.URL, "application/json", strings.Replace(put, "KEY", "a b+c.md", 1)); code != 200 {
		t.Fatalf("status %d", code)
	}
	n, _, _ := led.Backlog(context.Background())
	if n != 2 || wakes.Load() != 1 || c.received != 1 {
		t.Fatalf("backlog %d (both key readings), wakes %d, received %d", n, wakes.Load(), c.received)
	}
	// Outside the filter, other bucket, test event: ignored and counted.
	post(t, srv.URL, "application/json", strings.Replace(put, "KEY", "private/x.md", 1))
	post(t, srv.URL, "application/json", strings.Replace(strings.Replace(put, "KEY", "x.md", 1), `"docs"`, `"other"`, 1))
	post(t, srv.URL, "", `{"Event":"s3:TestEvent"}`)
	if c.ignored["filter"] != 1 || c.ignored["bucket"] != 1 || c.ignored["test"] != 1 || c.received != 4 {
		t.Fatalf("ignored = %v", c.ignored)
	}
	if n, _, _ := led.Backlog(context.Background()); n != 2 {
		t.Fatalf("backlog %d after ignored events", n)
	}
}

func TestBadInput(t *testing.T) {
	srv, led, c, _ := setup(t, "s3cret")
	auth := []string{"Authorization", "Bearer s3cret"}
	for _, tc := range []struct {
		name, ct, body string
		header         []string
		want           int
	}{
		{"malformed json", "application/json", `{"Records":[`, auth, 400},
		{"not an event", "application/json", `{"hello":1}`, auth, 400},
		{"wrong content type", "application/x-www-form-urlencoded", put, auth, 415},
		{"oversized", "application/json", strings.Repeat(" ", 5000) + put, auth, 413},
		{"no token", "application/json", put, nil, 401},
		{"wrong token", "application/json", put, []string{"Authorization", "Bearer nope"}, 401},
		{"token header", "application/json", strings.Replace(put, "KEY", "h.md", 1), []string{"X-Freshen-Token", "s3cret"}, 200},
	} {
		if got := post(t, srv.URL, tc.ct, tc.body, tc.header...); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
	if code := post(t, srv.URL+"?token=s3cret", "application/json", strings.Replace(put, "KEY", "q.md", 1)); code != 200 {
		t.Errorf("query token: %d", code)
	}
	resp, _ := http.Get(srv.URL)
	if resp.StatusCode != 405 {
		t.Errorf("GET: %d", resp.StatusCode)
	}
	if c.malformed != 4 {
		t.Errorf("malformed = %d, want 4", c.malformed)
	}
	if n, _, _ := led.Backlog(context.Background()); n != 2 {
		t.Errorf("backlog = %d, want 2", n)
	}
}

func TestBurstOfEventsLosesNothing(t *testing.T) {
	srv, led, _, _ := setup(t, "")
	const n = 1000
	var wg sync.WaitGroup
	var failed atomic.Int64
	sem := make(chan struct{}, 32)
	start := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			body := strings.Replace(put, "KEY", "burst/"+strings.Repeat("k", 1+i%7)+"-"+strconv.Itoa(i)+".md", 1)
			if post(t, srv.URL, "application/json", body) != 200 {
				failed.Add(1)
			}
		}(i)
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d events rejected", failed.Load(), n)
	}
	if got, _, _ := led.Backlog(context.Background()); got != n {
		t.Fatalf("backlog = %d, want %d", got, n)
	}
	t.Logf("%d events accepted in %s", n, time.Since(start).Round(time.Millisecond))
}
