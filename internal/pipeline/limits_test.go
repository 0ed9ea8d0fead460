package pipeline

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/chunk"
	"github.com/freshen-io/freshen/extract"
)

// countingEmbedder counts every call to the embedder it wraps, whatever
// the call returns.
type countingEmbedder struct {
	freshen.Embedder
	calls atomic.Int64
}

func (c *countingEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	c.calls.Add(1)
	return c.Embedder.Embed(ctx, texts)
}

type limitsBundle struct {
	*testBundle
	counted *countingEmbedder
	res     *results
}

// setupLimits returns a pipeline with cfg's per-object limits over setup's
// source, ledger and index, whose embedder calls are counted.
func setupLimits(t *testing.T, cfg Config) (*Pipeline, *limitsBundle) {
	t.Helper()
	_, tb := setup(t)
	b := &limitsBundle{testBundle: tb, counted: &countingEmbedder{Embedder: tb.emb}, res: &results{}}
	chk, err := chunk.New(chunk.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Bucket, cfg.Workers, cfg.MaxAttempts = "b", 2, 3
	cfg.Backoff, cfg.MaxBackoff = time.Millisecond, 5*time.Millisecond
	p := New(cfg, b.src, extract.New(extract.Config{}), chk, b.counted, b.idx, b.led, nil, b.res.add)
	return p, b
}

// measure returns the chunk count and the estimated tokens the pipeline
// will find in body, so that tests set limits relative to what the
// extractor and chunker actually produce.
func measure(t *testing.T, key, body string) (chunks int, tokens int64) {
	t.Helper()
	doc, err := extract.New(extract.Config{}).Extract(context.Background(), strings.NewReader(body), freshen.ObjectInfo{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	chk, err := chunk.New(chunk.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := chk.Split(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		tokens += int64(c.Tokens)
	}
	return len(cs), tokens
}

// sections is a Markdown document of n sections; every heading starts a
// chunk, and the first sections are the same whatever n.
func sections(n int) string {
	var b strings.Builder
	b.WriteString("# Handbook\n\n")
	for i := range n {
		fmt.Fprintf(&b, "## Section %d\n\nParagraph %d of the handbook, about harbor number %d.\n\n", i, i, i)
	}
	return b.String()
}

func (b *limitsBundle) drain(t *testing.T, p *Pipeline, keys ...string) {
	t.Helper()
	b.enqueue(t, keys...)
	if _, err := p.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// skippedBeforeEmbedding asserts key is recorded as skipped with reason,
// that nothing of it is in the index, and that it was reported as
// skipped.
func (b *limitsBundle) skippedBeforeEmbedding(t *testing.T, key, reason string) {
	t.Helper()
	if o := attempts(t, b.testBundle, key); o.State != freshen.StateSkipped || o.Reason != reason {
		t.Errorf("%s: state %s, reason %q; want %s, %q", key, o.State, o.Reason, freshen.StateSkipped, reason)
	}
	if n := b.indexKeys(t)[key]; n != 0 {
		t.Errorf("%s: %d chunks in the index, want none", key, n)
	}
	st, err := b.led.State(context.Background(), "b", key)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Chunks) != 0 {
		t.Errorf("%s: ledger lists %d chunks, want none", key, len(st.Chunks))
	}
	b.res.mu.Lock()
	defer b.res.mu.Unlock()
	for _, r := range b.res.all {
		if r.Key == key && r.Outcome == OutcomeSkipped && r.Reason == reason {
			return
		}
	}
	t.Errorf("%s: no %s result with reason %q in %+v", key, OutcomeSkipped, reason, b.res.all)
}

func TestTooManyChunksIsSkippedBeforeEmbedding(t *testing.T) {
	small, big := sections(3), sections(12)
	limit, _ := measure(t, "a.md", small)
	over, _ := measure(t, "a.md", big)
	if over <= limit {
		t.Fatalf("the larger document has %d chunks, the smaller %d", over, limit)
	}
	p, b := setupLimits(t, Config{MaxChunks: limit})

	// At the limit: indexed.
	b.src.Put("grows.md", "text/markdown", []byte(small))
	b.drain(t, p, "grows.md")
	if o := attempts(t, b.testBundle, "grows.md"); o.State != freshen.StateIndexed {
		t.Fatalf("an object of exactly %d chunks: state %s (%s), want indexed", limit, o.State, o.Reason)
	}
	if n := b.indexKeys(t)["grows.md"]; n != limit {
		t.Fatalf("%d chunks in the index, want %d", n, limit)
	}
	calls := b.counted.calls.Load()

	// Over it: an object that grew, and a new one, are skipped whole.
	b.src.Put("grows.md", "text/markdown", []byte(big))
	b.src.Put("new.md", "text/markdown", []byte(big))
	b.drain(t, p, "grows.md", "new.md")
	if n := b.counted.calls.Load(); n != calls {
		t.Errorf("the embedder was called %d times for objects over the chunk limit, want 0", n-calls)
	}
	reason := fmt.Sprintf("%d chunks exceeds limits.max-chunks-per-object (%d)", over, limit)
	b.skippedBeforeEmbedding(t, "grows.md", reason)
	b.skippedBeforeEmbedding(t, "new.md", reason)
}

func TestTooManyTokensIsSkippedBeforeEmbedding(t *testing.T) {
	// A line without spaces, the second one longer: its chunks past the
	// first text's are new, so indexing it would call the embedder.
	small, big := line(600), line(1400)
	limit, over := measure2(t, "a.txt", small, big)
	if limit < 1000 {
		t.Fatalf("the smaller text is %d tokens; want 1,000 or more to show the grouping of digits", limit)
	}
	p, b := setupLimits(t, Config{MaxTokens: int(limit)})

	b.src.Put("grows.txt", "text/plain", []byte(small))
	b.drain(t, p, "grows.txt")
	if o := attempts(t, b.testBundle, "grows.txt"); o.State != freshen.StateIndexed {
		t.Fatalf("an object of exactly %d tokens: state %s (%s), want indexed", limit, o.State, o.Reason)
	}
	if b.indexKeys(t)["grows.txt"] == 0 {
		t.Fatal("nothing in the index")
	}
	calls := b.counted.calls.Load()

	b.src.Put("grows.txt", "text/plain", []byte(big))
	b.src.Put("new.txt", "text/plain", []byte(big))
	b.drain(t, p, "grows.txt", "new.txt")
	if n := b.counted.calls.Load(); n != calls {
		t.Errorf("the embedder was called %d times for objects over the token limit, want 0", n-calls)
	}
	reason := fmt.Sprintf("%s estimated tokens exceeds limits.max-tokens-per-object (%s)", grouped(over), grouped(limit))
	if !strings.Contains(reason, ",") {
		t.Fatalf("reason %q has no grouped digits", reason)
	}
	b.skippedBeforeEmbedding(t, "grows.txt", reason)
	b.skippedBeforeEmbedding(t, "new.txt", reason)
}

// line is n numbered words joined by hyphens, without spaces.
func line(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "harbor%d-", i)
	}
	return b.String()
}

// measure2 returns the estimated tokens of two texts; the second must be
// the larger.
func measure2(t *testing.T, key, small, big string) (int64, int64) {
	t.Helper()
	_, a := measure(t, key, small)
	_, b := measure(t, key, big)
	if b <= a {
		t.Fatalf("the larger text has %d tokens, the smaller %d", b, a)
	}
	return a, b
}

func TestGrouped(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0", 7: "7", 999: "999", 1000: "1,000", 5000: "5,000", 6120: "6,120", 999999: "999,999",
		1_000_000: "1,000,000", 1_234_567: "1,234,567", -1234: "-1,234",
	} {
		if got := grouped(n); got != want {
			t.Errorf("grouped(%d) = %q, want %q", n, got, want)
		}
	}
}
