package cli

import (
	"context"
	"strings"
	"testing"
)

// TestWaitCommand: `freshen wait` exits 0 once a version is searchable (or
// superseded by a newer one), 1 with the state when it times out, and 1
// for a version of a key that is gone.
func TestWaitCommand(t *testing.T) {
	b := setupSync(t)
	b.src.Put("doc.md", "text/markdown", []byte("# Doc\n\nA paragraph about harbors.\n"))
	if code, _, errs := b.main(context.Background(), hashEmbedder{}, "sync", "--quiet"); code != 0 {
		t.Fatalf("sync: %s", errs)
	}
	cur, _ := b.src.Stat(context.Background(), "doc.md")
	if code, out, errs := b.main(context.Background(), hashEmbedder{}, "wait", "doc.md", "--etag", cur.ETag); code != 0 || !strings.Contains(out, "indexed") || !strings.Contains(out, "searchable") {
		t.Fatalf("wait for the indexed version: %d %q %q", code, out, errs)
	}
	if code, out, _ := b.main(context.Background(), hashEmbedder{}, "wait", "doc.md", "--etag", "an-old-etag"); code != 0 || !strings.Contains(out, "newer version") {
		t.Fatalf("wait for a superseded version: %d %q", code, out)
	}
	// Nothing processes this one (no freshen run): the wait times out.
	b.src.Put("new.md", "text/markdown", []byte("# New\n\nNot announced.\n"))
	next, _ := b.src.Stat(context.Background(), "new.md")
	code, out, errs := b.main(context.Background(), hashEmbedder{}, "wait", "new.md", "--etag", next.ETag, "--timeout", "300ms")
	if code != 1 || !strings.Contains(errs, "not searchable within 300ms") {
		t.Fatalf("wait with nothing processing: %d %q %q", code, out, errs)
	}
	if code, _, errs := b.main(context.Background(), hashEmbedder{}, "wait", "never.md", "--etag", "e"); code != 1 || !strings.Contains(errs, "is gone") {
		t.Fatalf("wait for a gone key: %d %q", code, errs)
	}
}
