package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/embed/builtin"
	"github.com/freshen-io/freshen/internal/app"
)

// fakeBackend answers searches with search, if set, else with no hits.
type fakeBackend struct {
	search func(ctx context.Context, query string) ([]app.SearchHit, error)
	wait   func(ctx context.Context, key, etag, versionID string) (app.WaitResult, error)
	oldest time.Time
	// redriven collects the keys Redrive was given.
	redriven []string
}

func (b *fakeBackend) Search(ctx context.Context, query string, k int, prefix string, filters ...freshen.Filter) ([]app.SearchHit, error) {
	if b.search != nil {
		return b.search(ctx, query)
	}
	return []app.SearchHit{}, nil
}

func (b *fakeBackend) Status(ctx context.Context) (app.Status, error) { return app.Status{}, nil }

func (b *fakeBackend) Wait(ctx context.Context, key, etag, versionID string) (app.WaitResult, error) {
	if b.wait != nil {
		return b.wait(ctx, key, etag, versionID)
	}
	return app.WaitResult{Key: key, State: "indexed", ETag: etag, Searchable: true}, nil
}

func (b *fakeBackend) DeadLetters(ctx context.Context, skipped bool, reason string, limit int) ([]app.DeadLetter, error) {
	out := []app.DeadLetter{{Key: "bad.pdf", State: freshen.StateFailed, Reason: "embed: 500"}}
	if skipped {
		out = append(out, app.DeadLetter{Key: "big.bin", State: freshen.StateSkipped, Reason: "binary"})
	}
	return out, nil
}

func (b *fakeBackend) Redrive(ctx context.Context, keys []string) (int, error) {
	if keys[0] != "bad.pdf" && keys[0] != "dir/a b+c.md" {
		return 0, fmt.Errorf("no object %q: %w", keys[0], freshen.ErrNotFound)
	}
	b.redriven = append(b.redriven, keys...)
	return len(keys), nil
}

func (b *fakeBackend) Activity(ctx context.Context) (app.Activity, error) { return app.Activity{}, nil }

func (b *fakeBackend) OldestPending(ctx context.Context) (time.Time, error) { return b.oldest, nil }

func (b *fakeBackend) State(ctx context.Context, key string) (freshen.KeyState, bool, error) {
	return freshen.KeyState{}, false, nil
}

type testBundle struct {
	backend *fakeBackend
	srv     *Server
	h       http.Handler
}

func setup(t *testing.T, edit ...func(*Config)) *testBundle {
	t.Helper()
	b := &testBundle{backend: &fakeBackend{}}
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "freshen_test_total", Help: "test"}))
	cfg := Config{Backend: b.backend, Gather: reg}
	for _, e := range edit {
		e(&cfg)
	}
	b.srv = New(cfg)
	b.h = b.srv.Handler()
	return b
}

// get serves one GET in-process and returns the response.
func (b *testBundle) get(ctx context.Context, target string, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	b.h.ServeHTTP(w, r)
	return w
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestQueryOverLimitIs400(t *testing.T) {
	b := setup(t, func(c *Config) { c.MaxQueryBytes = 100 })
	called := false
	b.backend.search = func(ctx context.Context, query string) ([]app.SearchHit, error) {
		called = true
		return []app.SearchHit{}, nil
	}
	w := b.get(context.Background(), "/v1/search?q="+strings.Repeat("a", 101))
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "limit of 100 bytes (search.max-query-bytes)") {
		t.Fatalf("101 bytes: %d %s", w.Code, w.Body)
	}
	if called {
		t.Error("an over-long query reached the backend")
	}
	if w := b.get(context.Background(), "/v1/search?q="+strings.Repeat("a", 100)); w.Code != http.StatusOK {
		t.Fatalf("100 bytes: %d %s", w.Code, w.Body)
	}

	// The default limit is 4 KiB.
	b = setup(t)
	if w := b.get(context.Background(), "/v1/search?q="+strings.Repeat("a", DefaultMaxQueryBytes+1)); w.Code != http.StatusBadRequest {
		t.Fatalf("default limit: %d %s", w.Code, w.Body)
	}
}

// countingEmbedder records what it was asked to embed; it counts a token
// per word, like a model with a window of window tokens.
type countingEmbedder struct {
	window int
	mu     sync.Mutex
	texts  []string
}

func (e *countingEmbedder) Model() freshen.ModelInfo {
	return freshen.ModelInfo{Name: "test/count", Dim: 2, MaxTokens: e.window}
}

func (e *countingEmbedder) CountTokens(text string) int { return len(strings.Fields(text)) }

func (e *countingEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.texts = append(e.texts, texts...)
	out := make([][]float32, len(texts))
	for i := range out {
		out[i] = []float32{1, 0}
	}
	return out, nil
}

// noIndex answers every search with nothing; its other methods are not
// called by searches.
type noIndex struct{ freshen.Index }

func (noIndex) Search(ctx context.Context, q freshen.Query) ([]freshen.Hit, error) { return nil, nil }

// TestLongQueryCostsOneWindow: a query under the byte limit but longer
// than the model's window is cut to the window, not embedded window by
// window like a document.
func TestLongQueryCostsOneWindow(t *testing.T) {
	emb := &countingEmbedder{window: 128}
	b := setup(t, func(c *Config) { c.Backend = &app.App{Embedder: emb, Index: noIndex{}} })
	words := strings.Fields(strings.Repeat("how long may I work from home ", 80)) // 3 KB, 560 words
	w := b.get(context.Background(), "/v1/search?q="+url.QueryEscape(strings.Join(words, " ")))
	if w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if len(emb.texts) != 1 {
		t.Fatalf("embedded %d texts, want 1", len(emb.texts))
	}
	if got, want := emb.texts[0], strings.Join(words[:128], " "); got != want {
		t.Errorf("embedded %d words, want the first 128 whole words:\n%q", emb.CountTokens(got), got)
	}
	// A query within the window is embedded as it is.
	emb.texts = nil
	if w := b.get(context.Background(), "/v1/search?q=work+from+home"); w.Code != http.StatusOK || len(emb.texts) != 1 || emb.texts[0] != "work from home" {
		t.Fatalf("short query: %d, embedded %q", w.Code, emb.texts)
	}
}

// TestLongQueryCostsOneWindowBuiltin: the same with the built-in model's
// own tokens: what reaches it fits one window, so it runs one.
func TestLongQueryCostsOneWindowBuiltin(t *testing.T) {
	m, err := builtin.Default()
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingEmbedder{m: m}
	b := setup(t, func(c *Config) { c.Backend = &app.App{Embedder: rec, Index: noIndex{}} })
	for _, q := range []string{
		strings.Repeat("The orchestra rehearsed the symphony all night. ", 60), // sentences
		strings.Repeat("xq", 1500),              // one "word"
		strings.Repeat("0123456789abcdef", 200), // no spaces
		strings.Repeat("Ça évolue déjà. ", 200), // runes of two bytes
	} {
		rec.texts = nil
		if w := b.get(context.Background(), "/v1/search?q="+url.QueryEscape(q)); w.Code != http.StatusOK {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		if len(rec.texts) != 1 {
			t.Fatalf("embedded %d texts", len(rec.texts))
		}
		n := m.CountTokens(rec.texts[0])
		if n > builtin.MaxTokens || n < builtin.MaxTokens/2 || !strings.HasPrefix(q, rec.texts[0]) {
			t.Errorf("query %.20q… of %d tokens: embedded a prefix of %d tokens (window %d)", q, m.CountTokens(q), n, builtin.MaxTokens)
		}
	}
}

// recordingEmbedder is the built-in model, recording its inputs.
type recordingEmbedder struct {
	m     *builtin.Model
	texts []string
}

func (e *recordingEmbedder) Model() freshen.ModelInfo    { return e.m.Model() }
func (e *recordingEmbedder) CountTokens(text string) int { return e.m.CountTokens(text) }

func (e *recordingEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	e.texts = append(e.texts, texts...)
	return e.m.Embed(ctx, texts)
}

// TestSearchConcurrencyBound: at most MaxConcurrent searches run; the
// next waits, and stops waiting when its client leaves.
func TestSearchConcurrencyBound(t *testing.T) {
	const limit = 2
	b := setup(t, func(c *Config) { c.MaxConcurrent = limit })
	var mu sync.Mutex
	running, peak := 0, 0
	entered := make(chan struct{}, 10)
	release := make(chan struct{})
	b.backend.search = func(ctx context.Context, query string) ([]app.SearchHit, error) {
		mu.Lock()
		running++
		peak = max(peak, running)
		mu.Unlock()
		entered <- struct{}{}
		<-release
		mu.Lock()
		running--
		mu.Unlock()
		return []app.SearchHit{}, nil
	}
	codes := make(chan int, 10)
	for range limit {
		go func() { codes <- b.get(context.Background(), "/v1/search?q=x").Code }()
	}
	for range limit {
		<-entered
	}
	// One more: it must wait, not run.
	ctx, leave := context.WithCancel(context.Background())
	left := make(chan int, 1)
	go func() { left <- b.get(ctx, "/v1/search?q=x").Code }()
	waitFor(t, "the third search to wait for a turn", func() bool { return b.srv.waiting.Load() == 1 })
	select {
	case <-entered:
		t.Fatal("a third search ran beside two others")
	default:
	}
	// Its client leaves: it stops waiting at once, holding nothing.
	leave()
	if code := <-left; code != http.StatusServiceUnavailable {
		t.Errorf("abandoned search: %d", code)
	}
	if n := b.srv.waiting.Load(); n != 0 {
		t.Errorf("%d searches still waiting", n)
	}
	close(release)
	for range limit {
		if code := <-codes; code != http.StatusOK {
			t.Errorf("search: %d", code)
		}
	}
	// The abandoned one took no turn: two more run at once.
	for range limit {
		go func() { codes <- b.get(context.Background(), "/v1/search?q=x").Code }()
	}
	for range limit {
		if code := <-codes; code != http.StatusOK {
			t.Errorf("search: %d", code)
		}
	}
	if peak > limit {
		t.Errorf("%d searches ran at once, limit %d", peak, limit)
	}
}

// TestSearchStopsWhenClientLeaves: the backend's context ends with the
// request's.
func TestSearchStopsWhenClientLeaves(t *testing.T) {
	b := setup(t)
	started := make(chan struct{})
	b.backend.search = func(ctx context.Context, query string) ([]app.SearchHit, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	ctx, leave := context.WithCancel(context.Background())
	done := make(chan *httptest.ResponseRecorder, 1)
	go func() { done <- b.get(ctx, "/v1/search?q=x") }()
	<-started
	leave()
	if w := <-done; w.Code != http.StatusServiceUnavailable {
		t.Errorf("%d %s", w.Code, w.Body)
	}
}

func TestAuth(t *testing.T) {
	for _, public := range []bool{false, true} {
		b := setup(t, func(c *Config) { c.Token = "s3cret"; c.MetricsPublic = public })
		for _, tc := range []struct {
			header string
			want   int
		}{
			{"", 401},
			{"Bearer s3cret", 200},
			{"bearer s3cret", 200},
			{"BEARER  s3cret", 200},
			{"s3cret", 401},
			{"Bearer", 401},
			{"Bearer nope", 401},
			{"Basic s3cret", 401},
			{"Bearers3cret", 401},
		} {
			for _, path := range []string{"/v1/search?q=x", "/v1/status", "/metrics"} {
				want := tc.want
				if path == "/metrics" && public {
					want = 200
				}
				var h []string
				if tc.header != "" {
					h = []string{"Authorization", tc.header}
				}
				if w := b.get(context.Background(), path, h...); w.Code != want {
					t.Errorf("metrics-public %v, %s, Authorization %q: %d, want %d", public, path, tc.header, w.Code, want)
				}
			}
		}
		// Health and readiness stay open: probes carry no token.
		for _, path := range []string{"/healthz", "/readyz"} {
			if w := b.get(context.Background(), path); w.Code != 200 {
				t.Errorf("%s: %d", path, w.Code)
			}
		}
	}
	// Without a token everything is open, /metrics included.
	b := setup(t)
	if w := b.get(context.Background(), "/metrics"); w.Code != 200 || !strings.Contains(w.Body.String(), "freshen_test_total") {
		t.Errorf("/metrics without a token: %d", w.Code)
	}
}

func TestBackendErrors(t *testing.T) {
	b := setup(t)
	b.backend.search = func(ctx context.Context, query string) ([]app.SearchHit, error) {
		if query == "" {
			return nil, app.ErrEmptyQuery
		}
		return nil, errors.New("index down")
	}
	if w := b.get(context.Background(), "/v1/search?q="); w.Code != 400 {
		t.Errorf("empty: %d", w.Code)
	}
	w := b.get(context.Background(), "/v1/search?q=x")
	var body map[string]string
	json.Unmarshal(w.Body.Bytes(), &body)
	if w.Code != 500 || body["error"] != "index down" {
		t.Errorf("error: %d %v", w.Code, body)
	}
	// A failed search gives its turn back.
	b.backend.search = nil
	for range 2 * b.srv.cfg.MaxConcurrent {
		if w := b.get(context.Background(), "/v1/search?q=x"); w.Code != 200 {
			t.Fatalf("after errors: %d", w.Code)
		}
	}
}

// TestWait: 200 once searchable, 408 with the state on timeout, 404 for a
// gone key, 400 for a bad request.
func TestWait(t *testing.T) {
	b := &fakeBackend{wait: func(ctx context.Context, key, etag, versionID string) (app.WaitResult, error) {
		switch key {
		case "gone.md":
			return app.WaitResult{Key: key, State: "deleted"}, app.ErrGone
		case "slow.md":
			<-ctx.Done()
			return app.WaitResult{Key: key, State: "pending"}, ctx.Err()
		}
		return app.WaitResult{Key: key, State: "indexed", ETag: etag, Searchable: true}, nil
	}}
	h := New(Config{Backend: b}).Handler()
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := get("/v1/wait?key=a%2Bb.md&etag=e1"); code != 200 || !strings.Contains(body, `"searchable":true`) || !strings.Contains(body, `"key":"a+b.md"`) {
		t.Errorf("searchable: %d %s", code, body)
	}
	if code, body := get("/v1/wait?key=slow.md&etag=e1&timeout=50ms"); code != http.StatusRequestTimeout || !strings.Contains(body, `"state":"pending"`) {
		t.Errorf("timeout: %d %s", code, body)
	}
	if code, _ := get("/v1/wait?key=gone.md&etag=e1"); code != http.StatusNotFound {
		t.Errorf("gone: %d", code)
	}
	for _, bad := range []string{"/v1/wait", "/v1/wait?key=a&timeout=1h", "/v1/wait?key=a&timeout=soon"} {
		if code, _ := get(bad); code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", bad, code)
		}
	}
}

// TestSearchFreshAsOf: a search waits for its fresh-as-of versions, names
// the ones still stale in a header, and says how old the oldest pending
// change is.
func TestSearchFreshAsOf(t *testing.T) {
	var waited []string
	b := &fakeBackend{oldest: time.Now().Add(-90 * time.Second), wait: func(ctx context.Context, key, etag, versionID string) (app.WaitResult, error) {
		waited = append(waited, key+"@"+etag)
		if key == "late:doc.md" {
			<-ctx.Done()
			return app.WaitResult{Key: key, State: "pending"}, ctx.Err()
		}
		return app.WaitResult{Key: key, Searchable: true}, nil
	}}
	h := New(Config{Backend: b}).Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/search?q=x&fresh-as-of=a.md:e1&fresh-as-of=late:doc.md:e2&fresh-timeout=50ms", nil))
	if rec.Code != 200 || fmt.Sprint(waited) != "[a.md@e1 late:doc.md@e2]" || rec.Header().Get("Freshen-Stale") != "late%3Adoc.md" {
		t.Fatalf("search: %d, waited %v, stale %q", rec.Code, waited, rec.Header().Get("Freshen-Stale"))
	}
	if age, err := strconv.ParseFloat(rec.Header().Get("Freshen-Oldest-Pending-Seconds"), 64); err != nil || age < 89 || age > 120 {
		t.Fatalf("Freshen-Oldest-Pending-Seconds = %q", rec.Header().Get("Freshen-Oldest-Pending-Seconds"))
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/search?q=x&fresh-as-of=no-etag", nil))
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("fresh-as-of without an etag: %d", rec.Code)
	}
}

// TestDeadLettersAndRedrive: the dead letters as JSON (skipped ones on
// request); POST /v1/objects/{key}/redrive queues a known key (202),
// refuses an unknown one (404) and any other action, and needs the token.
func TestDeadLettersAndRedrive(t *testing.T) {
	b := setup(t, func(c *Config) { c.Token = "s3cret" })
	auth := []string{"Authorization", "Bearer s3cret"}
	ctx := context.Background()
	w := b.get(ctx, "/v1/dead-letters", auth...)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"key":"bad.pdf"`) || strings.Contains(w.Body.String(), "big.bin") {
		t.Fatalf("dead letters: %d %s", w.Code, w.Body)
	}
	if w := b.get(ctx, "/v1/dead-letters?skipped=true", auth...); !strings.Contains(w.Body.String(), "big.bin") {
		t.Fatalf("dead letters with skipped: %s", w.Body)
	}
	post := func(target string, header ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequestWithContext(ctx, http.MethodPost, target, nil)
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		w := httptest.NewRecorder()
		b.h.ServeHTTP(w, r)
		return w
	}
	if w := post("/v1/objects/bad.pdf/redrive"); w.Code != http.StatusUnauthorized {
		t.Fatalf("redrive without the token: %d", w.Code)
	}
	if w := post("/v1/objects/bad.pdf/redrive", auth...); w.Code != http.StatusAccepted || !strings.Contains(w.Body.String(), `"queued":true`) {
		t.Fatalf("redrive: %d %s", w.Code, w.Body)
	}
	if w := post("/v1/objects/dir%2Fa%20b+c.md/redrive", auth...); w.Code != http.StatusAccepted {
		t.Fatalf("redrive of an odd key: %d %s", w.Code, w.Body)
	}
	if w := post("/v1/objects/nope.md/redrive", auth...); w.Code != http.StatusNotFound {
		t.Fatalf("redrive of an unknown key: %d %s", w.Code, w.Body)
	}
	if w := post("/v1/objects/bad.pdf/explode", auth...); w.Code != http.StatusNotFound {
		t.Fatalf("unknown action: %d %s", w.Code, w.Body)
	}
	if !slices.Equal(b.backend.redriven, []string{"bad.pdf", "dir/a b+c.md"}) {
		t.Fatalf("redriven %q", b.backend.redriven)
	}
}
