package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/freshen-io/freshen/internal/app"
)

// TestMigrateCommand walks `freshen migrate` through a chunking change:
// plan, start, a refused switch while the generation is empty, sync
// building it, switch, rollback and abort; and its usage errors.
func TestMigrateCommand(t *testing.T) {
	b := setupSync(t)
	for _, k := range []string{"a.md", "b.md", "c.md"} {
		b.src.Put(k, "text/markdown", []byte("# "+k+"\n\nA paragraph about harbors and lanterns.\n\nAnother about bridges and tides, long enough to matter.\n"))
	}
	if code, _, errs := b.main(context.Background(), hashEmbedder{}, "sync", "--quiet"); code != 0 {
		t.Fatalf("sync: %s", errs)
	}
	next := filepath.Join(filepath.Dir(b.file), "next.yaml")
	if err := os.WriteFile(next, []byte("source: {bucket: docs}\ndata-dir: data\nchunk: {min-tokens: 8, target-tokens: 16, max-tokens: 40}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	migrate := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, open: app.Options{Source: b.src, Embedder: hashEmbedder{}}}
		code := e.main(context.Background(), append(append([]string{"migrate"}, args...), "--config", next))
		return code, out.String(), errb.String()
	}
	steps := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "needs one of"},
		{[]string{"bogus"}, 2, "unknown step"},
		{[]string{"status"}, 0, "no migration under way"},
		{[]string{"switch"}, 1, "no generation beside"},
		{[]string{"plan"}, 0, "new generation: embedded index in gen-2/"},
		{[]string{"start"}, 0, "generation 2 is building"},
		{[]string{"start"}, 1, "already being built"},
		{[]string{"status"}, 0, "building   generation 2"},
		{[]string{"rollback"}, 1, "needs a retired one"},
		{[]string{"switch"}, 1, "not complete"},
	}
	for _, s := range steps {
		if code, out, errs := migrate(s.args...); code != s.code || !strings.Contains(out+errs, s.want) {
			t.Fatalf("migrate %v: %d %q %q; want %d and %q", s.args, code, out, errs, s.code, s.want)
		}
	}
	// sync builds the new generation beside the serving one.
	if code, _, errs := b.main(context.Background(), hashEmbedder{}, "sync", "--quiet"); code != 0 {
		t.Fatalf("sync: %s", errs)
	}
	for _, s := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"status"}, 0, "objects  3 of 3, 0 queued"},
		{[]string{"switch"}, 0, "generation 2 serves search now"},
		{[]string{"status"}, 0, "retired    generation 1"},
		{[]string{"rollback"}, 0, "generation 1 serves search now"},
		{[]string{"abort"}, 0, "generation 2 is dropped"},
		{[]string{"status"}, 0, "no migration under way"},
	} {
		if code, out, errs := migrate(s.args...); code != s.code || !strings.Contains(out+errs, s.want) {
			t.Fatalf("migrate %v: %d %q %q; want %d and %q", s.args, code, out, errs, s.code, s.want)
		}
	}
	if code, out, _ := b.main(context.Background(), hashEmbedder{}, "status"); code != 0 || !strings.Contains(out, "generation        1") {
		t.Fatalf("status: %d %s", code, out)
	}
}
