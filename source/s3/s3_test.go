package s3_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/internal/testenv"
)

// TestAgainstVersityGW runs the source against a real S3-compatible server.
func TestAgainstVersityGW(t *testing.T) {
	ctx := context.Background()
	gw := testenv.StartVersityGW(t, testenv.GWOptions{})
	c := gw.CreateBucket(t, "docs")
	src := gw.Source(t, "docs")
	keys := []string{"a.txt", "dir/with space.md", "dir/plus+sign.md", "dir/percent%20.md", "dir/ünï.md", "deep/a/b/c/d/e.txt", "zero.txt"}
	for i, k := range keys {
		body := []byte(fmt.Sprintf("body %d", i))
		if k == "zero.txt" {
			body = nil
		}
		testenv.Put(t, c, "docs", k, "text/plain", body)
	}
	// Listing: key order, every key, startAfter and prefix honoured.
	var got []string
	if err := src.List(ctx, "", "", func(o freshen.ObjectInfo) error { got = append(got, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(keys)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("List = %q, want %q", got, want)
	}
	got = got[:0]
	if err := src.List(ctx, "dir/", "dir/percent%20.md", func(o freshen.ObjectInfo) error { got = append(got, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"dir/plus+sign.md", "dir/with space.md", "dir/ünï.md"}) {
		t.Fatalf("List(dir/, after percent) = %q", got)
	}
	// Stat and Open on odd keys.
	for i, k := range keys {
		info, err := src.Stat(ctx, k)
		if err != nil {
			t.Fatalf("Stat(%q): %v", k, err)
		}
		if info.ETag == "" || info.ETag[0] == '"' {
			t.Errorf("Stat(%q).ETag = %q", k, info.ETag)
		}
		r, err := src.Open(ctx, info)
		if err != nil {
			t.Fatalf("Open(%q): %v", k, err)
		}
		b, _ := io.ReadAll(r)
		r.Close()
		if k != "zero.txt" && string(b) != fmt.Sprintf("body %d", i) {
			t.Errorf("Open(%q) = %q", k, b)
		}
	}
	// Missing keys and stale versions map onto freshen's sentinels.
	if _, err := src.Stat(ctx, "nope"); !errors.Is(err, freshen.ErrNotFound) {
		t.Errorf("Stat(missing) = %v, want ErrNotFound", err)
	}
	old, _ := src.Stat(ctx, "a.txt")
	testenv.Put(t, c, "docs", "a.txt", "text/plain", []byte("changed"))
	if _, err := src.Open(ctx, old); !errors.Is(err, freshen.ErrPreconditionFailed) {
		t.Errorf("Open(stale version) = %v, want ErrPreconditionFailed", err)
	}
	testenv.Delete(t, c, "docs", "a.txt")
	if _, err := src.Open(ctx, old); !errors.Is(err, freshen.ErrNotFound) && !errors.Is(err, freshen.ErrPreconditionFailed) {
		t.Errorf("Open(deleted) = %v", err)
	}
}
