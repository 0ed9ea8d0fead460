package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/internal/app"
	"github.com/freshen-io/freshen/internal/memsource"
)

// hashEmbedder is a fast fake model. If embedding is set, a call reports
// itself there and then waits until its ctx is done, like a model busy
// with a large object.
type hashEmbedder struct {
	embedding chan struct{}
}

func (hashEmbedder) Model() freshen.ModelInfo {
	return freshen.ModelInfo{Name: "test/hash", Dim: 8, MaxTokens: 128}
}

func (h hashEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if h.embedding != nil {
		h.embedding <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	out := make([][]float32, len(texts))
	for i, t := range texts {
		sum := sha256.Sum256([]byte(t))
		out[i] = make([]float32, 8)
		for j := range out[i] {
			out[i][j] = float32(sum[j]) - 127.5
		}
	}
	return out, nil
}

type syncBundle struct {
	src  *memsource.Source
	file string
}

func setupSync(t *testing.T) *syncBundle {
	t.Helper()
	b := &syncBundle{src: memsource.New("docs"), file: filepath.Join(t.TempDir(), "freshen.yaml")}
	if err := os.WriteFile(b.file, []byte("source: {bucket: docs}\ndata-dir: data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// main runs a command on the bundle's bucket with emb as the model.
func (b *syncBundle) main(ctx context.Context, emb freshen.Embedder, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, open: app.Options{Source: b.src, Embedder: emb}}
	code = e.main(ctx, append(args, "--config", b.file))
	return code, out.String(), errb.String()
}

// TestSyncInterrupted: a signal (ctx cancelled) while an object is being
// embedded stops sync promptly with the exit code of an interrupted
// process; the key stays queued, uncounted, and the next sync does it.
func TestSyncInterrupted(t *testing.T) {
	b := setupSync(t)
	b.src.Put("big.md", "text/markdown", []byte("# Big\n\n"+strings.Repeat("A long paragraph about bicycles and their gears. ", 500)))
	embedding := make(chan struct{}, 1)
	ctx, interrupt := context.WithCancel(context.Background())
	type result struct {
		code           int
		stdout, stderr string
	}
	done := make(chan result, 1)
	go func() {
		code, out, errs := b.main(ctx, hashEmbedder{embedding: embedding}, "sync", "--json")
		done <- result{code, out, errs}
	}()
	<-embedding
	interrupt()
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("sync still running 10 s after the interrupt")
	}
	if r.code != 130 || !strings.Contains(r.stderr, "freshen sync: interrupted; 1 keys remain queued for the next sync") {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	var sum syncSummary
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || sum.InSync || !strings.HasPrefix(sum.Message, "interrupted") {
		t.Fatalf("summary %+v (%v) of %q", sum, err, r.stdout)
	}

	code, out, errs := b.main(context.Background(), hashEmbedder{}, "sync", "--json")
	if code != 0 {
		t.Fatalf("next sync: code %d, %s", code, errs)
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil || !sum.InSync || sum.Outcomes["indexed"] != 1 {
		t.Fatalf("next sync: %+v (%v)", sum, err)
	}
	code, out, errs = b.main(context.Background(), hashEmbedder{}, "status", "--json")
	var st app.Status
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil || st.Objects != 1 || st.Backlog != 0 || st.FailedTotal != 0 {
		t.Fatalf("status: code %d, %+v, %s", code, st, errs)
	}
}

// TestInterruptedExitCode: the exit code says which signal stopped the
// command, read from the cause signal.NotifyContext (cmd/freshen) gives.
func TestInterruptedExitCode(t *testing.T) {
	for _, tc := range []struct {
		sig  syscall.Signal
		want int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}} {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		if err := syscall.Kill(os.Getpid(), tc.sig); err != nil {
			t.Fatal(err)
		}
		<-ctx.Done()
		if got := interruptedCode(ctx); got != tc.want {
			t.Errorf("%v: exit code %d, want %d (cause %v)", tc.sig, got, tc.want, context.Cause(ctx))
		}
		stop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got := interruptedCode(ctx); got != 130 {
		t.Errorf("cancelled without a signal: exit code %d, want 130", got)
	}
}

// TestInterruptedWhileListing: a sync stopped while it lists the bucket
// says so, with the signal's exit code, not "context canceled" and 1.
func TestInterruptedWhileListing(t *testing.T) {
	b := setupSync(t)
	src := &slowSource{Source: b.src, listing: make(chan struct{}, 1)}
	ctx, interrupt := context.WithCancelCause(context.Background())
	done := make(chan int, 1)
	var errb bytes.Buffer
	go func() {
		e := &env{stdin: strings.NewReader(""), stdout: &bytes.Buffer{}, stderr: &errb, open: app.Options{Source: src, Embedder: hashEmbedder{}}}
		done <- e.main(ctx, []string{"sync", "--config", b.file})
	}()
	<-src.listing
	interrupt(testSignal("terminated signal received"))
	if code := <-done; code != 143 || !strings.Contains(errb.String(), "freshen sync: interrupted; 0 keys remain queued") {
		t.Fatalf("code %d, stderr %q", code, errb.String())
	}
}

// slowSource lists until its ctx is done.
type slowSource struct {
	*memsource.Source
	listing chan struct{}
}

func (s *slowSource) List(ctx context.Context, prefix, startAfter string, fn func(freshen.ObjectInfo) error) error {
	s.listing <- struct{}{}
	<-ctx.Done()
	return ctx.Err()
}

// testSignal is the cause signal.NotifyContext gives.
type testSignal string

func (s testSignal) Error() string { return string(s) }
