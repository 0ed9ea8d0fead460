package openaitest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/freshen-io/freshen/embed/openai/openaitest"
)

const key = "sk-fake"

// Servers close, hanging handlers end and connections go with them: no
// test leaves a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type response struct {
	Object string `json:"object"`
	Data   []struct {
		Object    string          `json:"object"`
		Index     int             `json:"index"`
		Embedding json.RawMessage `json:"embedding"`
	} `json:"data"`
	Model string `json:"model"`
	Usage struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
	Error *struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

// post sends body to the server's /v1/embeddings with the key and
// returns the status, headers and decoded body.
func post(t *testing.T, s *openaitest.Server, body string, header ...string) (int, http.Header, response) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL()+"/embeddings", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	for i := 0; i < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	var r response
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("answer is not JSON: %v: %s", err, raw)
	}
	return res.StatusCode, res.Header, r
}

func vector(t *testing.T, raw json.RawMessage) []float32 {
	t.Helper()
	var floats []float32
	if json.Unmarshal(raw, &floats) == nil {
		return floats
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("embedding %s is neither floats nor a string", raw)
	}
	v, err := openaitest.DecodeBase64(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestWireFormat(t *testing.T) {
	s := openaitest.New(t, openaitest.Options{APIKey: key, Model: "m"})
	for _, c := range []struct {
		body   string
		inputs []string
		tokens int
		dim    int
	}{
		{`{"model":"m","input":"one two"}`, []string{"one two"}, 2, 64},
		{`{"model":"m","input":["a","b c"],"encoding_format":"float"}`, []string{"a", "b c"}, 3, 64},
		{`{"model":"m","input":["a","b c"],"encoding_format":"base64"}`, []string{"a", "b c"}, 3, 64},
		{`{"model":"m","input":[1,2,3]}`, []string{"tokens:1 2 3"}, 3, 64},
		{`{"model":"m","input":[[1,2],[3]],"encoding_format":"base64"}`, []string{"tokens:1 2", "tokens:3"}, 3, 64},
		{`{"model":"m","input":["short"],"dimensions":16}`, []string{"short"}, 1, 16},
	} {
		status, _, r := post(t, s, c.body)
		if status != http.StatusOK || r.Object != "list" || r.Model != "m" || len(r.Data) != len(c.inputs) {
			t.Fatalf("%s: %d %+v", c.body, status, r)
		}
		if r.Usage.PromptTokens != c.tokens || r.Usage.TotalTokens != c.tokens {
			t.Errorf("%s: usage %+v, want %d tokens", c.body, r.Usage, c.tokens)
		}
		base64 := strings.Contains(c.body, "base64")
		for i, d := range r.Data {
			if d.Object != "embedding" || d.Index != i {
				t.Errorf("%s: data[%d] = %+v", c.body, i, d)
			}
			if isString := d.Embedding[0] == '"'; isString != base64 {
				t.Errorf("%s: embedding %.20s…: base64 %v", c.body, d.Embedding, isString)
			}
			v := vector(t, d.Embedding)
			want := openaitest.HashVector(c.inputs[i], 64)[:c.dim]
			if c.dim < 64 {
				want = unit(want)
			}
			if maxDiff(v, want) > 1e-6 {
				t.Errorf("%s: input %d: not the hash vector", c.body, i)
			}
		}
	}
	st := s.Stats()
	if st.Requests != 6 || st.Served != 6 || st.Inputs != 9 || st.Tokens != 15 || st.Faults != 0 {
		t.Errorf("Stats = %+v", st)
	}
}

func TestRejects(t *testing.T) {
	s := openaitest.New(t, openaitest.Options{APIKey: key, Model: "m", MaxInputs: 2, MaxInputTokens: 3, MaxRequestTokens: 4})
	for _, c := range []struct {
		body        string
		header      []string
		status      int
		code, param string
	}{
		{`{"model":"m","input":["x"]}`, []string{"Authorization", "Bearer wrong"}, 401, "invalid_api_key", ""},
		{`{"model":"other","input":["x"]}`, nil, 404, "model_not_found", "model"},
		{`{"input":["x"]}`, nil, 400, "", "model"},
		{`{"model":"m","input":[""]}`, nil, 400, "", ""},
		{`{"model":"m","input":[]}`, nil, 400, "", "input"},
		{`{"model":"m","input":[{"x":1}]}`, nil, 400, "", "input"},
		{`{"model":"m","input":["x"],"encoding_format":"hex"}`, nil, 400, "invalid_value", "encoding_format"},
		{`{"model":"m","input":["x"],"dimensions":65}`, nil, 400, "invalid_value", "dimensions"},
		{`{"model":"m","input":["a","b","c"]}`, nil, 400, "array_above_max_length", "input"},
		{`{"model":"m","input":["a b c d"]}`, nil, 400, "context_length_exceeded", "input"},
		{`{"model":"m","input":["a b c","d e"]}`, nil, 400, "max_tokens_per_request", "input"},
		{`not json`, nil, 400, "", ""},
	} {
		status, _, r := post(t, s, c.body, c.header...)
		if status != c.status || r.Error == nil {
			t.Errorf("%s: %d %+v, want %d with an error", c.body, status, r, c.status)
			continue
		}
		if got := deref(r.Error.Code); got != c.code {
			t.Errorf("%s: code %q, want %q", c.body, got, c.code)
		}
		if got := deref(r.Error.Param); got != c.param {
			t.Errorf("%s: param %q, want %q", c.body, got, c.param)
		}
	}
	// The key may come in api-key, as Azure sends it.
	if status, _, _ := post(t, s, `{"model":"m","input":["x"]}`, "Authorization", "", "Api-Key", key); status != http.StatusOK {
		t.Errorf("api-key: status %d", status)
	}
}

func TestFaults(t *testing.T) {
	s := openaitest.New(t, openaitest.Options{})
	body := `{"model":"m","input":["a","b"]}`
	s.Inject(openaitest.RateLimit(1500*time.Millisecond), openaitest.Error(503, ""), openaitest.WrongCount(-1), openaitest.WrongCount(2), openaitest.WrongDim(5))
	status, h, r := post(t, s, body)
	if status != 429 || h.Get("Retry-After") != "2" || h.Get("Retry-After-Ms") != "1500" || h.Get("X-Ratelimit-Reset-Requests") != "1.5s" || deref(r.Error.Code) != "rate_limit_exceeded" {
		t.Errorf("RateLimit: %d %v %+v", status, h, r.Error)
	}
	if status, _, _ := post(t, s, body); status != 503 {
		t.Errorf("Error(503): %d", status)
	}
	if _, _, r := post(t, s, body); len(r.Data) != 1 {
		t.Errorf("WrongCount(-1): %d vectors", len(r.Data))
	}
	if _, _, r := post(t, s, body); len(r.Data) != 4 {
		t.Errorf("WrongCount(2): %d vectors", len(r.Data))
	}
	if _, _, r := post(t, s, body); len(vector(t, r.Data[0].Embedding)) != 5 {
		t.Errorf("WrongDim(5): %d values", len(vector(t, r.Data[0].Embedding)))
	}
	if _, _, r := post(t, s, body); len(r.Data) != 2 {
		t.Errorf("after the faults: %d vectors", len(r.Data))
	}

	s.Inject(openaitest.Reset())
	req, _ := http.NewRequest(http.MethodPost, s.URL()+"/embeddings", strings.NewReader(body))
	if res, err := s.Client().Do(req); err == nil {
		res.Body.Close()
		t.Errorf("Reset: got an answer, %d", res.StatusCode)
	}
	s.Inject(openaitest.Malformed())
	req, _ = http.NewRequest(http.MethodPost, s.URL()+"/embeddings", strings.NewReader(body))
	res, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || json.Valid(raw) {
		t.Errorf("Malformed: %d %s", res.StatusCode, raw)
	}
	if st := s.Stats(); st.Requests != 8 || st.Faults != 7 || st.Served != 4 {
		t.Errorf("Stats = %+v, want 8 requests, 7 faults, 4 served (3 with wrong vectors)", st)
	}
}

func TestHangEndsAtClose(t *testing.T) {
	arrived := make(chan struct{})
	s, err := openaitest.Start(openaitest.Options{OnRequest: func(openaitest.Request) { close(arrived) }})
	if err != nil {
		t.Fatal(err)
	}
	s.Inject(openaitest.Hang())
	done := make(chan error, 1)
	go func() {
		res, err := s.Client().Post(s.URL()+"/embeddings", "application/json", strings.NewReader(`{"model":"m","input":"x"}`))
		if err == nil {
			res.Body.Close()
		}
		done <- err
	}()
	<-arrived
	s.Close()
	s.Close() // harmless
	if err := <-done; err == nil {
		t.Error("a hanging request got an answer")
	}
}

// TestFaultRate checks that random faults follow the seed.
func TestFaultRate(t *testing.T) {
	run := func(seed uint64) []int {
		s := openaitest.New(t, openaitest.Options{FaultRate: 0.3, Seed: seed, Faults: []openaitest.Fault{openaitest.Error(500, ""), openaitest.Error(503, "")}})
		var statuses []int
		for range 100 {
			status, _, _ := post(t, s, `{"model":"m","input":"x"}`)
			statuses = append(statuses, status)
		}
		if st := s.Stats(); st.Faults+st.Served != 100 || st.Faults < 15 || st.Faults > 45 {
			t.Errorf("seed %d: %+v: want about 30 faults in 100 requests", seed, st)
		}
		return statuses
	}
	a, b, c := run(7), run(7), run(8)
	if !slices.Equal(a, b) {
		t.Error("the same seed gave different faults")
	}
	if slices.Equal(a, c) {
		t.Error("different seeds gave the same faults")
	}
}

func TestRateLimits(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := now
	s := openaitest.New(t, openaitest.Options{RPM: 3, TPM: 10, Now: func() time.Time { return clock }})
	body := func(words int) string {
		b, _ := json.Marshal(map[string]any{"model": "m", "input": strings.Repeat("w ", words)})
		return string(b)
	}
	status, h, _ := post(t, s, body(4))
	if status != 200 || h.Get("X-Ratelimit-Remaining-Requests") != "2" || h.Get("X-Ratelimit-Remaining-Tokens") != "6" || h.Get("X-Ratelimit-Limit-Tokens") != "10" {
		t.Errorf("first: %d %v", status, h)
	}
	clock = now.Add(10 * time.Second)
	if status, _, _ := post(t, s, body(4)); status != 200 {
		t.Errorf("second: %d", status)
	}
	// 8 of 10 tokens used: 4 more must wait for the first request's to
	// leave the window, 50s from now.
	status, h, _ = post(t, s, body(4))
	if status != 429 || h.Get("Retry-After") != "50" || h.Get("X-Ratelimit-Remaining-Tokens") != "0" || h.Get("X-Ratelimit-Reset-Tokens") != "50s" {
		t.Errorf("over TPM: %d %v", status, h)
	}
	if status, _, _ := post(t, s, body(2)); status != 200 {
		t.Errorf("2 tokens fit: %d", status)
	}
	// Three requests in the window: the fourth waits for the first.
	status, h, _ = post(t, s, body(1))
	if status != 429 || h.Get("Retry-After-Ms") != "50000" || h.Get("X-Ratelimit-Remaining-Requests") != "0" {
		t.Errorf("over RPM: %d %v", status, h)
	}
	clock = now.Add(time.Minute)
	if status, _, _ := post(t, s, body(1)); status != 200 {
		t.Errorf("after a minute: %d", status)
	}
	if status, _, _ := post(t, s, body(11)); status != http.StatusRequestEntityTooLarge {
		t.Errorf("more than TPM at once: %d, want 413", status)
	}
}

func TestRecord(t *testing.T) {
	seen := make(chan string, 1)
	s := openaitest.New(t, openaitest.Options{Record: true, OnRequest: func(r openaitest.Request) { seen <- r.InputForm }})
	post(t, s, `{"model":"m","input":["a"],"dimensions":8,"encoding_format":"float"}`, "X-Extra", "1")
	reqs := s.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests recorded", len(reqs))
	}
	r := reqs[0]
	if r.Model != "m" || !slices.Equal(r.Input, []string{"a"}) || r.Dimensions == nil || *r.Dimensions != 8 || r.EncodingFormat != "float" || r.Header.Get("X-Extra") != "1" || !bytes.Contains(r.Body, []byte(`"dimensions":8`)) {
		t.Errorf("recorded %+v", r)
	}
	if form := <-seen; form != "strings" {
		t.Errorf("OnRequest saw input form %q", form)
	}
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func unit(v []float32) []float32 {
	var ss float64
	for _, x := range v {
		ss += float64(x) * float64(x)
	}
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(float64(x) / math.Sqrt(ss))
	}
	return out
}

func maxDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var d float64
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}
