package pipeline

import (
	"context"
	"io"
	"path"
	"testing"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/internal/intake"
	"github.com/freshen-io/freshen/internal/reconcile"
)

// normalizing answers HEAD and GET for any spelling of a key that cleans
// to a stored one, but lists only the stored spelling, as versitygw's
// posix backend does for "a//b.md" and "a/./b.md".
type normalizing struct{ freshen.Source }

func (s normalizing) Stat(ctx context.Context, key string) (freshen.ObjectInfo, error) {
	o, err := s.Source.Stat(ctx, path.Clean(key))
	o.Key = key
	return o, err
}

func (s normalizing) Open(ctx context.Context, obj freshen.ObjectInfo) (io.ReadCloser, error) {
	obj.Key = path.Clean(obj.Key)
	return s.Source.Open(ctx, obj)
}

// TestListingIsAuthoritative: a spelling the store answers HEAD for but
// never lists is removed by the reconciler's verdict, once, instead of
// being indexed twice and re-queued every pass.
func TestListingIsAuthoritative(t *testing.T) {
	ctx := context.Background()
	_, b := setup(t)
	src := normalizing{b.src}
	p := b.pipelineWith(t, Config{}, src, nil, nil)
	b.src.Put("a/b.md", "text/markdown", []byte(doc("B", "The one real document about ferries.")))
	b.enqueue(t, "a//b.md", "a/./b.md") // events for odd spellings
	if _, err := p.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.indexKeys(t); len(got) != 2 {
		t.Fatalf("index keys before the pass: %v (the store answered for both spellings)", got)
	}
	r := reconcile.New(reconcile.Config{Bucket: "b", TempDir: t.TempDir(), MinDeleteObjects: 100}, src, b.led,
		intake.New(intake.Config{Bucket: "b"}, b.led, nil, nil), nil)
	for pass := 1; pass <= 2; pass++ {
		rep, err := r.Pass(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Drain(ctx); err != nil {
			t.Fatal(err)
		}
		want := map[int]int{1: 2, 2: 0}[pass]
		if rep.Vanished != want {
			t.Fatalf("pass %d: %d vanished, want %d (%+v)", pass, rep.Vanished, want, rep)
		}
	}
	if got := b.indexKeys(t); len(got) != 1 || got["a/b.md"] == 0 {
		t.Fatalf("index keys = %v, want only the listed spelling", got)
	}
}
