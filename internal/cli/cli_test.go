package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), args, strings.NewReader("first line\nsecond line\n"), &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsageAndUnknownCommand(t *testing.T) {
	if code, _, errs := run(t); code != 2 || !strings.Contains(errs, "Commands:") {
		t.Fatalf("no args: code %d, stderr %q", code, errs)
	}
	if code, _, errs := run(t, "frobnicate"); code != 2 || !strings.Contains(errs, `unknown command "frobnicate"`) {
		t.Fatalf("unknown: code %d, stderr %q", code, errs)
	}
	if code, _, _ := run(t, "sync", "-h"); code != 0 {
		t.Fatalf("sync -h: code %d", code)
	}
}

func TestEmbedJSON(t *testing.T) {
	code, out, errs := run(t, "embed", "--json", "A dog runs in the park")
	if code != 0 {
		t.Fatalf("code %d: %s", code, errs)
	}
	var rows []struct {
		Text   string    `json:"text"`
		Tokens int       `json:"tokens"`
		Vector []float32 `json:"vector"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Tokens != 6 || len(rows[0].Vector) != 512 || rows[0].Vector[0] > -0.05 {
		t.Fatalf("rows = %+v", rows)
	}
	// "-" reads one text per line from stdin.
	code, out, _ = run(t, "embed", "-")
	if code != 0 || !strings.Contains(out, `"first line"`) || !strings.Contains(out, "cosine similarity") {
		t.Fatalf("stdin: code %d, %s", code, out)
	}
	if code, _, errs := run(t, "embed", ""); code != 1 || !strings.Contains(errs, "empty input") {
		t.Fatalf("empty: code %d, %s", code, errs)
	}
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("source:\n  bucket: docs\nwebhook-token: hunter2\n"), 0o644)
	code, out, errs := run(t, "config", "check", "--config", good)
	if code != 0 || !strings.Contains(out, "configuration OK") || strings.Contains(out, "hunter2") || !strings.Contains(out, "webhook-token: '***'") {
		t.Fatalf("good: code %d\n%s\n%s", code, out, errs)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("source:\n  buckte: docs\n"), 0o644)
	code, _, errs = run(t, "config", "check", "--config", bad)
	if code != 1 || !strings.Contains(errs, `did you mean "bucket"`) {
		t.Fatalf("bad: code %d, %s", code, errs)
	}
}

// TestConfigCheckRefusesWhatAStartRefuses: a configuration the chunker
// rejects at start is rejected by config check with the chunker's own
// words, and `status` (a start) fails the same way.
func TestConfigCheckRefusesWhatAStartRefuses(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "chunk.yaml")
	os.WriteFile(file, []byte("source: {bucket: docs}\ndata-dir: data\nchunk: {min-tokens: 64, target-tokens: 300, max-tokens: 400}\n"), 0o644)
	code, out, errs := run(t, "config", "check", "--config", file)
	if code != 1 || strings.Contains(out, "configuration OK") || !strings.Contains(errs, "max-tokens (400) leaves too little room") {
		t.Fatalf("config check: code %d\n%s\n%s", code, out, errs)
	}
	code, _, startErr := run(t, "status", "--config", file)
	if code != 1 || !strings.Contains(startErr, "max-tokens (400) leaves too little room") {
		t.Fatalf("status: code %d, %s", code, startErr)
	}
}
