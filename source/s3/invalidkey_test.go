package s3_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/internal/testenv"
)

// TestInvalidKeyIsNotThere: keys a store refuses as invalid (versitygw's
// posix backend answers 400 for a key that climbs out of the bucket) do
// not exist: Stat says ErrNotFound, so a junk event never becomes a
// parked failure.
func TestInvalidKeyIsNotThere(t *testing.T) {
	gw := testenv.StartVersityGW(t, testenv.GWOptions{})
	var n atomic.Int64
	src, b := newBucket(t, gw.Endpoint, &n)
	ctx := context.Background()
	if err := b.Put(ctx, "real.md", "text/markdown", []byte("# real\n")); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"../../etc/passwd", "a/../../b.md", strings.Repeat("k", 1100)} {
		_, err := src.Stat(ctx, key)
		if !errors.Is(err, freshen.ErrNotFound) {
			t.Errorf("Stat(%.40q): %v, want ErrNotFound", key, err)
		}
	}
	if _, err := src.Stat(ctx, "real.md"); err != nil {
		t.Fatalf("Stat(real.md): %v", err)
	}
}
