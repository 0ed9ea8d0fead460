package feedtest

import (
	"testing"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/internal/testenv"
)

// VersityGWKeys are the keys VersityGWEvents writes: spaces, '+', '%'
// and non-ASCII, which a store may or may not URL-encode in its events.
var VersityGWKeys = []string{"plain.md", "dir/with space.md", "a+b c.md", "ünïcødé/文档 ü.md", "50%off.md", "100%25.md"}

// VersityGWEvents makes versitygw send real events to a running feed
// that records into s: on gw, whose events go to the feed's transport,
// it creates bucket "docs" and puts, overwrites and deletes each of
// VersityGWKeys (3 operations a key). It waits until s holds at least
// two upserts and a delete of each key, exactly as written, and checks
// that every change names bucket docs and origin.
func VersityGWEvents(t *testing.T, gw *testenv.VersityGW, s *Sink, origin string) {
	t.Helper()
	c := gw.CreateBucket(t, "docs")
	keys := VersityGWKeys
	for _, k := range keys {
		testenv.Put(t, c, "docs", k, "text/markdown", []byte("v1 "+k))
	}
	for _, k := range keys {
		testenv.Put(t, c, "docs", k, "text/markdown", []byte("v2, longer "+k))
	}
	for _, k := range keys {
		testenv.Delete(t, c, "docs", k)
	}
	// versitygw sends each event once, from a goroutine with a 3 s
	// timeout and no retry (a loaded machine loses some; the reconciler
	// exists for that): every key must arrive, spelled exactly as
	// written, and most of the events.
	for _, k := range keys {
		Eventually(t, "an event for "+k, func() bool {
			return s.Count(k, freshen.ChangeUpsert)+s.Count(k, freshen.ChangeDelete) >= 1
		})
	}
	Eventually(t, "most of the events", func() bool {
		n := 0
		for _, k := range keys {
			n += s.Count(k, freshen.ChangeUpsert) + s.Count(k, freshen.ChangeDelete)
		}
		return n >= 3*len(keys)*2/3
	})
	for _, ch := range s.Changes() {
		if ch.Bucket != "docs" || ch.Origin != origin {
			t.Errorf("change %+v: want bucket docs, origin %s", ch, origin)
		}
	}
}
