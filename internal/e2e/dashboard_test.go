package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/freshen-io/freshen/embed/openai/openaitest"
)

const dashToken = "dash-s3cret-token"

// authGet fetches an API path with the api-token as JSON into v.
func (w *world) authGet(path string, v any) int {
	w.t.Helper()
	return w.get(path, v, "Authorization", "Bearer "+dashToken)
}

// chromium finds the browser; the test fails without it (scripts/test.sh
// installs Debian's chromium package).
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH: scripts/test.sh installs it (apt-get install chromium)")
	return ""
}

// TestDashboard drives the dashboard in a real headless Chromium: with
// api-token set the page asks for it and shows nothing without it; its
// numbers equal /v1/status; after a PUT the newest objects and the lag
// chart update without a reload; the search box finds an edit's new
// text; and re-drive moves a failed object back to indexed once its
// cause is fixed. It writes a screenshot (to $FRESHEN_SCREENSHOT too,
// which is how the README's is made).
func TestDashboard(t *testing.T) {
	exe := chromium(t)
	fake := openaitest.New(t, openaitest.Options{Model: "test-embed", Embedder: openaitest.Hash{Dim: 32, MaxTokens: 512}})
	w := newWorldWith(t, "1h", 0, fmt.Sprintf(`api-token: %s
embedder:
  type: openai
  base-url: %s
  model: test-embed
  dim: 32
  max-tokens: 512
  price-per-million-tokens: 0.02
`, dashToken, fake.URL()))
	docs := map[string]string{
		"handbook/onboarding.md": "# Onboarding\n\nWelcome aboard. Your first week starts with a tour of the workshop.\n\n## Accounts\n\nYou get a laptop and a password manager.\n",
		"handbook/expenses.md":   "# Expenses\n\nTravel is reimbursed at cost.\n\n## Meals\n\nUp to 30 euros a day when travelling.\n",
		"products/city-loop.md":  "# City Loop\n\nA commuter bike with a hub dynamo.\n\n## Warranty\n\nFive years on the frame.\n",
	}
	for k, v := range docs {
		w.put(k, "text/markdown", []byte(v))
	}
	type status struct {
		Objects        int     `json:"objects"`
		Chunks         int     `json:"chunks"`
		Backlog        int     `json:"backlog"`
		TokensEmbedded int64   `json:"tokens_embedded"`
		TokensToday    int64   `json:"tokens_today"`
		USDSpent       float64 `json:"usd_spent"`
	}
	var st status
	waitFor(t, time.Minute, "the documents indexed", func() (bool, string) {
		w.authGet("/v1/status", &st)
		return st.Objects == len(docs) && st.Backlog == 0, fmt.Sprintf("%+v", st)
	})
	// Nothing leaks without the token.
	if code := w.get("/v1/status", nil); code != http.StatusUnauthorized {
		t.Fatalf("/v1/status without the token: %d", code)
	}
	resp, err := http.Get("http://" + w.d.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	leaks := func(s string) bool {
		return strings.Contains(s, "Welcome aboard") || strings.Contains(s, "city-loop") || strings.Contains(s, "handbook/")
	}
	if resp.StatusCode != 200 || leaks(string(page)) {
		t.Fatalf("the page itself: %d, %d bytes, with data in it: %v", resp.StatusCode, len(page), leaks(string(page)))
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(1280, 1100))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancel()
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// The page redraws its tables every second: read in one evaluation,
	// not by node (a node found can be replaced before it is read).
	text := func(sel string) string {
		t.Helper()
		q, _ := json.Marshal(sel)
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => { const e = document.querySelector(`+string(q)+`); return e ? e.innerText : "" })()`))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	count := func(sel string) int {
		t.Helper()
		q, _ := json.Marshal(sel)
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+string(q)+`).length`))
		if err != nil {
			t.Fatalf("count %s: %v", sel, err)
		}
		return n
	}
	attr := func(js string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("evaluate %s: %v", js, err)
		}
		return s
	}
	until := func(what string, cond func() (bool, string)) {
		t.Helper()
		waitFor(t, 30*time.Second, what, cond)
	}

	// The page asks for the token, and shows no data before it has it.
	base := "http://" + w.d.addr + "/"
	run("open the dashboard", chromedp.Navigate(base), chromedp.WaitVisible(chromedp.CSS("#login")))
	body := attr(`document.body.innerText`)
	if leaks(body) {
		t.Fatalf("the page shows data before the token: %q", body)
	}
	run("a wrong token", chromedp.SendKeys(chromedp.CSS("#token"), "wrong"), chromedp.Click(chromedp.CSS("#login-form button")))
	until("the wrong token refused", func() (bool, string) {
		s := text("#login-error")
		return strings.Contains(s, "not the api-token"), s
	})
	run("the right token", chromedp.SetValue(chromedp.CSS("#token"), dashToken), chromedp.Click(chromedp.CSS("#login-form button")),
		chromedp.WaitVisible(chromedp.CSS("#app")))

	// The numbers equal /v1/status.
	num := func(sel string) int64 {
		n, err := strconv.ParseInt(strings.ReplaceAll(text(sel), ",", ""), 10, 64)
		if err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		return n
	}
	until("the page's numbers equal /v1/status", func() (bool, string) {
		w.authGet("/v1/status", &st)
		got := [4]int64{num("#objects"), num("#chunks"), num("#backlog"), num("#tokens-total")}
		want := [4]int64{int64(st.Objects), int64(st.Chunks), int64(st.Backlog), st.TokensEmbedded}
		return got == want && text("#usd-total") == fmt.Sprintf("%.4f", st.USDSpent), fmt.Sprintf("page %v, status %v", got, want)
	})

	// A PUT: the newest objects and the lag chart update, no reload.
	samples := func() int {
		n, _ := strconv.Atoi(attr(`document.getElementById("lag-chart").getAttribute("data-samples")`))
		return n
	}
	before := samples()
	navs := attr(`String(performance.timeOrigin)`)
	w.put("handbook/onboarding.md", "text/markdown", []byte("# Onboarding\n\nWelcome aboard. Bring a helmet for the zebra crossing drill.\n"))
	until("the newest object on the page", func() (bool, string) {
		first := text("#recent tr:first-child td.key")
		return first == "handbook/onboarding.md" && samples() > before, fmt.Sprintf("first %q, samples %d (was %d)", first, samples(), before)
	})
	if attr(`String(performance.timeOrigin)`) != navs {
		t.Fatal("the page reloaded")
	}

	// The search box shows the edit's new text.
	run("search", chromedp.SetValue(chromedp.CSS("#q"), "zebra crossing drill"), chromedp.Click(chromedp.CSS("#search-form button")))
	until("the new text in the search results", func() (bool, string) {
		s := text("#hits")
		return strings.Contains(s, "zebra crossing drill") && strings.Contains(s, "Onboarding"), s
	})

	// A failed object, re-driven from the page once the cause is fixed.
	fake.DownFor(openaitest.Fault{Status: 400, Type: "invalid_request_error", Code: "invalid_input", Message: "input rejected by the content filter"}, 5*time.Second)
	fixedAt := time.Now().Add(5 * time.Second)
	w.put("support/recall.md", "text/markdown", []byte("# Recall\n\nA notice about brake levers.\n"))
	sel := `#dead tr[data-key="support/recall.md"]`
	until("the failed object on the page", func() (bool, string) {
		return count(sel) == 1, text("#dead")
	})
	if !strings.Contains(text(sel), "failed") {
		t.Fatalf("dead letter row: %q", text(sel))
	}
	time.Sleep(time.Until(fixedAt))
	run("re-drive", chromedp.Click(chromedp.CSS(sel+` button.redrive`)))
	until("the re-driven object indexed", func() (bool, string) {
		var obj map[string]any
		w.authGet("/v1/objects/"+url.PathEscape("support/recall.md"), &obj)
		n := count(sel)
		return obj["state"] == "indexed" && n == 0, fmt.Sprint(obj["state"], " rows ", n)
	})

	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(t.TempDir(), "dashboard.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", shot, len(png))
	if dst := os.Getenv("FRESHEN_SCREENSHOT"); dst != "" {
		if err := os.WriteFile(dst, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
