package sqlitedb

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestOddDirectoryNames: the database lands inside the directory named,
// whatever characters the name holds, and opens again.
func TestOddDirectoryNames(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"a?b", "c#d", "e%20f", "g%3fh", "with space", "ü+x", "?#%"} {
		dir := filepath.Join(t.TempDir(), name)
		path := filepath.Join(dir, "x.db")
		for round := 0; round < 2; round++ {
			db, err := Open(ctx, path, `CREATE TABLE IF NOT EXISTS t (v INTEGER); INSERT INTO t VALUES (1);`)
			if err != nil {
				t.Fatalf("%q: %v", name, err)
			}
			var n int
			if err := db.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil || n != round+1 {
				t.Fatalf("%q round %d: %d rows, %v", name, round, n, err)
			}
			db.Close()
		}
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("%q: the database is not where it was asked to be: %v", name, err)
		}
		entries, _ := os.ReadDir(filepath.Dir(dir))
		if len(entries) != 1 {
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Fatalf("%q: files appeared outside the directory: %v", name, names)
		}
	}
}
