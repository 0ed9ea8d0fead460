package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/freshen-io/freshen/internal/sqlitedb"
	"github.com/freshen-io/freshen/internal/testenv"
)

// TestSyncOnAFullDisk: with no space left for the data directory, sync
// fails at once with one message naming the directory (it used to retry
// every 500ms forever); nothing is corrupted, and once space is freed the
// next sync finishes the work.
func TestSyncOnAFullDisk(t *testing.T) {
	disk := testenv.SmallDisk(t, 16<<20)
	b := setupSync(t)
	data := filepath.Join(disk, "data")
	if err := os.WriteFile(b.file, []byte("source: {bucket: docs}\ndata-dir: "+data+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b.src.Put("first.md", "text/markdown", []byte("# First\n\nIndexed while there is space.\n"))
	if code, _, errs := b.main(context.Background(), hashEmbedder{}, "sync", "--quiet"); code != 0 {
		t.Fatalf("first sync: %d %s", code, errs)
	}
	for i := 0; i < 40; i++ {
		b.src.Put(fmt.Sprintf("doc-%02d.md", i), "text/markdown",
			[]byte(fmt.Sprintf("# Doc %d\n\n%s\n", i, strings.Repeat(fmt.Sprintf("Paragraph %d about harbors and lanterns. ", i), 200))))
	}
	free := testenv.FillDisk(t, disk)
	type result struct {
		code int
		errs string
	}
	done := make(chan result, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		code, _, errs := b.main(ctx, hashEmbedder{}, "sync", "--quiet")
		done <- result{code, errs}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(60 * time.Second):
		cancel()
		<-done
		t.Fatal("sync on a full disk did not return within 60s")
	}
	if r.code != 1 || !strings.Contains(r.errs, "is full") || !strings.Contains(r.errs, data) || strings.Count(r.errs, "\n") > 3 {
		t.Fatalf("full disk: exit %d, stderr:\n%s", r.code, r.errs)
	}
	free()
	code, out, errs := b.main(context.Background(), hashEmbedder{}, "sync", "--quiet")
	if code != 0 || !strings.Contains(out, "the index matches the bucket") {
		t.Fatalf("after freeing space: %d\n%s\n%s", code, out, errs)
	}
	for _, name := range []string{"ledger.db", "index.db"} {
		db, err := sqlitedb.Open(context.Background(), filepath.Join(data, name), "SELECT 1")
		if err != nil {
			t.Fatal(err)
		}
		var verdict string
		err = db.QueryRow(`PRAGMA integrity_check`).Scan(&verdict)
		db.Close()
		if err != nil || verdict != "ok" {
			t.Fatalf("%s after the full disk: %q, %v", name, verdict, err)
		}
	}
}
