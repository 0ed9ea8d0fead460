package intake

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/ledger/sqlite"
)

type counts struct {
	mu                  sync.Mutex
	received, malformed int
	ignored             map[string]int
}

func (c *counts) Received(_ string, n int)  { c.mu.Lock(); c.received += n; c.mu.Unlock() }
func (c *counts) Malformed(_ string, n int) { c.mu.Lock(); c.malformed += n; c.mu.Unlock() }
func (c *counts) Ignored(_, reason string, n int) {
	c.mu.Lock()
	c.ignored[reason] += n
	c.mu.Unlock()
}

func setup(t *testing.T) (*Sink, *sqlite.Ledger, *counts) {
	t.Helper()
	led, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "l.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { led.Close() })
	c := &counts{ignored: map[string]int{}}
	return New(Config{Bucket: "b", Match: func(k string) bool { return !strings.HasPrefix(k, "tmp/") }}, led, c, nil), led, c
}

// TestJunkKeysAreMalformed: keys no S3 object can have never reach the
// queue (where they became parked failures, re-queued every pass).
func TestJunkKeysAreMalformed(t *testing.T) {
	s, led, c := setup(t)
	var cs []freshen.Change
	for _, k := range []string{"", strings.Repeat("k", 1025), "nul\x00byte.md", "bad\xffutf8.md", "ok.md", "tmp/x.md"} {
		cs = append(cs, freshen.Change{Bucket: "b", Key: k, Kind: freshen.ChangeUpsert})
	}
	cs = append(cs, freshen.Change{Bucket: "other", Key: "ok.md"})
	if err := s.Put(context.Background(), "webhook", cs); err != nil {
		t.Fatal(err)
	}
	if c.malformed != 4 || c.ignored["filter"] != 1 || c.ignored["bucket"] != 1 {
		t.Fatalf("malformed %d, ignored %v", c.malformed, c.ignored)
	}
	if n, _, _ := led.Backlog(context.Background()); n != 1 {
		t.Fatalf("backlog = %d, want only ok.md", n)
	}
}

// TestSenderClockIsNotTrusted: an event dated long ago (or in the future)
// is queued as of its arrival, so it neither jumps the queue nor skews
// the freshness lag.
func TestSenderClockIsNotTrusted(t *testing.T) {
	s, led, _ := setup(t)
	ctx := context.Background()
	before := time.Now()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Put(ctx, "webhook", []freshen.Change{
		{Bucket: "b", Key: "old.md", EventTime: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Bucket: "b", Key: "future.md", EventTime: time.Now().Add(24 * time.Hour)},
		{Bucket: "b", Key: "recent.md", EventTime: time.Now().Add(-10 * time.Second)},
	}))
	ls, err := led.Lease(ctx, freshen.LeaseParams{Owner: "t", Max: 10, TTL: time.Minute})
	must(err)
	for _, l := range ls {
		switch l.Key {
		case "old.md", "future.md":
			if l.FirstSeen.Before(before) || l.FirstSeen.After(time.Now()) {
				t.Errorf("%s queued as of %v, want its arrival", l.Key, l.FirstSeen)
			}
		case "recent.md":
			if !l.FirstSeen.Before(before) {
				t.Errorf("recent.md: a plausible sender time (10s ago) should be kept, got %v", l.FirstSeen)
			}
		}
	}
	if len(ls) != 3 || ls[0].Key != "recent.md" {
		t.Fatalf("lease order %v: the plausible event first, the 2024 one not ahead of it", ls)
	}
}
