package reconcile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/internal/intake"
	"github.com/freshen-io/freshen/ledger/sqlite"
)

// listSource lists a fixed slice of objects as given (even out of order).
type listSource struct{ objs []freshen.ObjectInfo }

func (s *listSource) List(ctx context.Context, prefix, after string, fn func(freshen.ObjectInfo) error) error {
	for _, o := range s.objs {
		if strings.HasPrefix(o.Key, prefix) && o.Key > after {
			if err := fn(o); err != nil {
				return err
			}
		}
	}
	return nil
}
func (s *listSource) Stat(context.Context, string) (freshen.ObjectInfo, error) {
	return freshen.ObjectInfo{}, freshen.ErrNotFound
}
func (s *listSource) Open(context.Context, freshen.ObjectInfo) (io.ReadCloser, error) {
	return nil, freshen.ErrNotFound
}

func setup(t *testing.T, indexed ...string) (*sqlite.Ledger, string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	led, err := sqlite.Open(ctx, filepath.Join(dir, "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { led.Close() })
	for _, k := range indexed {
		if _, err := led.Enqueue(ctx, []freshen.Change{{Bucket: "b", Key: k}}); err != nil {
			t.Fatal(err)
		}
	}
	ls, _ := led.Lease(ctx, freshen.LeaseParams{Owner: "w", Max: len(indexed) + 1, TTL: time.Minute})
	for _, l := range ls {
		o := freshen.ObjectRecord{Bucket: "b", Key: l.Key, ETag: "e-" + l.Key, Size: 1, State: freshen.StateIndexed, Chunker: "c1", Model: "m1"}
		if err := led.Complete(ctx, l, freshen.Commit{Object: o}); err != nil {
			t.Fatal(err)
		}
	}
	return led, dir
}

func obj(key, etag string) freshen.ObjectInfo {
	return freshen.ObjectInfo{Bucket: "b", Key: key, ETag: etag, Size: 1}
}

func queued(t *testing.T, led *sqlite.Ledger) []string {
	t.Helper()
	ls, err := led.Lease(context.Background(), freshen.LeaseParams{Owner: "check", Max: 1000, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, l := range ls {
		keys = append(keys, l.Key)
	}
	return keys
}

func TestPassFindsNewChangedVanished(t *testing.T) {
	led, dir := setup(t, "a", "b", "c", "x/outside")
	src := &listSource{objs: []freshen.ObjectInfo{obj("a", "e-a"), obj("b", "CHANGED"), obj("d", "e-d"), obj("skip.tmp", "e")}}
	r := New(Config{Bucket: "b", Match: func(k string) bool { return !strings.HasSuffix(k, ".tmp") }, Chunker: "c1", Model: "m1", TempDir: dir, MinDeleteObjects: 100}, src, led, intake.New(intake.Config{Bucket: "b"}, led, nil, nil), nil)
	rep, err := r.Pass(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Listed != 4 || rep.New != 1 || rep.Changed != 1 || rep.Vanished != 2 || rep.Unchanged != 1 || rep.Ignored != 1 || rep.Ledger != 4 {
		t.Fatalf("report = %+v", rep)
	}
	if got := fmt.Sprint(queued(t, led)); got != "[b c d x/outside]" {
		t.Fatalf("queued %s", got)
	}
}

func TestChunkerChangeRequeues(t *testing.T) {
	led, dir := setup(t, "a")
	r := New(Config{Bucket: "b", Chunker: "c2", Model: "m1", TempDir: dir}, &listSource{objs: []freshen.ObjectInfo{obj("a", "e-a")}}, led, intake.New(intake.Config{Bucket: "b"}, led, nil, nil), nil)
	rep, err := r.Pass(context.Background(), false)
	if err != nil || rep.Changed != 1 {
		t.Fatalf("rep = %+v, %v", rep, err)
	}
}

func TestBreaker(t *testing.T) {
	var keys []string
	for i := 0; i < 10; i++ {
		keys = append(keys, fmt.Sprintf("k%02d", i))
	}
	led, dir := setup(t, keys...)
	r := New(Config{Bucket: "b", Chunker: "c1", Model: "m1", TempDir: dir, MinDeleteObjects: 5, MaxDeleteFraction: 0.5}, &listSource{objs: []freshen.ObjectInfo{obj("k00", "e-k00"), obj("new", "e")}}, led, intake.New(intake.Config{Bucket: "b"}, led, nil, nil), nil)
	rep, err := r.Pass(context.Background(), false)
	if !errors.Is(err, ErrMassDelete) || !rep.MassDeleteBlocked || !strings.Contains(rep.Message, "refusing to delete 9 of 10") {
		t.Fatalf("rep = %+v, err = %v", rep, err)
	}
	// New keys are still queued; nothing is queued for deletion.
	if got := fmt.Sprint(queued(t, led)); got != "[new]" {
		t.Fatalf("queued %s", got)
	}
	led2, dir2 := setup(t, keys...)
	r = New(Config{Bucket: "b", Chunker: "c1", Model: "m1", TempDir: dir2, MinDeleteObjects: 5}, &listSource{}, led2, intake.New(intake.Config{Bucket: "b"}, led2, nil, nil), nil)
	if _, err := r.Pass(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if got := len(queued(t, led2)); got != 10 {
		t.Fatalf("with the override %d keys queued, want 10", got)
	}
}

func TestOutOfOrderListingIsAnError(t *testing.T) {
	led, dir := setup(t)
	r := New(Config{Bucket: "b", TempDir: dir}, &listSource{objs: []freshen.ObjectInfo{obj("b", "1"), obj("a", "2")}}, led, intake.New(intake.Config{Bucket: "b"}, led, nil, nil), nil)
	if _, err := r.Pass(context.Background(), false); err == nil || !strings.Contains(err.Error(), "not in key order") {
		t.Fatalf("err = %v", err)
	}
}

// brokenLedger returns some rows, then fails.
type brokenLedger struct {
	*sqlite.Ledger
	after int
}

func (l *brokenLedger) Objects(ctx context.Context, bucket, prefix, startAfter string, fn func(freshen.ObjectRecord) error) error {
	n := 0
	err := l.Ledger.Objects(ctx, bucket, prefix, startAfter, func(o freshen.ObjectRecord) error {
		if n == l.after {
			return errors.New("database is locked")
		}
		n++
		return fn(o)
	})
	return err
}

// TestLedgerErrorAbortsThePass: a ledger that fails while being read
// must fail the pass, not read as "every key is new" or "gone".
func TestLedgerErrorAbortsThePass(t *testing.T) {
	for _, after := range []int{0, 2} {
		led, dir := setup(t, "a", "b", "c", "d")
		src := &listSource{objs: []freshen.ObjectInfo{obj("a", "e-a"), obj("b", "e-b"), obj("c", "e-c"), obj("d", "e-d")}}
		broken := &brokenLedger{Ledger: led, after: after}
		r := New(Config{Bucket: "b", Chunker: "c1", Model: "m1", TempDir: dir, MinDeleteObjects: 100}, src, broken,
			intake.New(intake.Config{Bucket: "b"}, led, nil, nil), nil)
		rep, err := r.Pass(context.Background(), false)
		if err == nil || !strings.Contains(err.Error(), "database is locked") || !strings.Contains(err.Error(), "ledger") {
			t.Fatalf("after %d rows: err = %v, report %+v; want the ledger's error", after, err, rep)
		}
		if got := queued(t, led); len(got) != 0 {
			t.Fatalf("after %d rows: a failed pass queued %v", after, got)
		}
	}
}

// TestRangesSplitThePass: passes over the ranges (,b], (b,d] and (d,)
// each see only their keys, and together find what one pass would.
func TestRangesSplitThePass(t *testing.T) {
	led, dir := setup(t, "a", "b", "c", "d", "e", "f")
	src := &listSource{objs: []freshen.ObjectInfo{obj("a", "e-a"), obj("b", "CHANGED"), obj("d", "e-d"), obj("f", "e-f"), obj("g", "e-g")}}
	var got []string
	for _, rg := range [][2]string{{"", "b"}, {"b", "d"}, {"d", ""}} {
		r := New(Config{Bucket: "b", Chunker: "c1", Model: "m1", TempDir: dir, MinDeleteObjects: 100, After: rg[0], Through: rg[1]},
			src, led, intake.New(intake.Config{Bucket: "b"}, led, nil, nil), nil)
		rep, err := r.Pass(context.Background(), false)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("listed %d ledger %d new %d changed %d vanished %d", rep.Listed, rep.Ledger, rep.New, rep.Changed, rep.Vanished))
	}
	want := "[listed 2 ledger 2 new 0 changed 1 vanished 0 listed 1 ledger 2 new 0 changed 0 vanished 1 listed 2 ledger 2 new 1 changed 0 vanished 1]"
	if fmt.Sprint(got) != want {
		t.Fatalf("passes:\n%s\nwant\n%s", fmt.Sprint(got), want)
	}
	if q := fmt.Sprint(queued(t, led)); q != "[b c e g]" {
		t.Fatalf("queued %s, want [b c e g]", q)
	}
}
