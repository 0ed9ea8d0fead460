package webhook

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/freshen-io/freshen/ledger/sqlite"
)

type counts struct {
	mu                  sync.Mutex
	received, malformed int
	ignored             map[string]int
}

func (c *counts) EventReceived(string) { c.mu.Lock(); c.received++; c.mu.Unlock() }
func (c *counts) EventMalformed(string) {
	c.mu.Lock()
	c.malformed++
	c.mu.Unlock()
}
func (c *counts) EventIgnored(_, reason string, n int) {
	c.mu.Lock()
	c.ignored[reason] += n
	c.mu.Unlock()
}

const put = `{"Records":[{"eventVersion":"2.2","eventSource":"aws:s3","eventTime":"2026-11-26T07:42:08Z","eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"docs"},"object":{"key":"KEY","size":14,"eTag":"\"e\"","versionId":null,"sequencer":"1"}}}]}`

func setup(t *testing.T, token string) (*httptest.Server, *sqlite.Ledger, *counts, *atomic.Int64) {
	t.Helper()
	led, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "l.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { led.Close() })
	c := &counts{ignored: map[string]int{}}
	var wakes atomic.Int64
	h := New(Config{Bucket: "docs", Token: token, MaxBodyBytes: 4096, Match: func(k string) bool { return !strings.HasPrefix(k, "private/") }},
		led, c, nil, func() { wakes.Add(1) })
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, led, c, &wakes
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
	if c.ignored["filter"] != 1 || c.ignored["bucket"] != 1 || c.ignored["test"] != 1 {
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
