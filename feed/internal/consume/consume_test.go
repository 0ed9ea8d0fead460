package consume

import (
	"context"
	"testing"
	"time"

	"github.com/freshen-io/freshen/feed/feedtest"
)

func TestChanges(t *testing.T) {
	s := feedtest.NewSink("")
	now := time.Now()
	if cs, err := Changes(s, "o", feedtest.Event("docs", "a.md"), now, nil); err != nil || len(cs) == 0 || cs[0].Key != "a.md" || cs[0].Origin != "o" {
		t.Fatalf("event: %+v, %v", cs, err)
	}
	if cs, err := Changes(s, "o", []byte(`{"Records":[`), now, nil); err == nil || cs != nil {
		t.Fatalf("malformed: %+v, %v", cs, err)
	}
	if cs, err := Changes(s, "o", feedtest.TestEvent("docs"), now, nil); err != nil || cs != nil {
		t.Fatalf("test event: %+v, %v", cs, err)
	}
	if cs, err := Changes(s, "o", feedtest.TestEvent("docs"), now, func([]byte) string { return "subscription" }); err != nil || cs != nil {
		t.Fatalf("test event with a reason: %+v, %v", cs, err)
	}
	restore := `{"Records":[{"eventSource":"aws:s3","eventName":"ObjectRestore:Post","s3":{"bucket":{"name":"docs"},"object":{"key":"r.md"}}}]}`
	if cs, err := Changes(s, "o", []byte(restore), now, nil); err != nil || len(cs) != 0 {
		t.Fatalf("ignored kind: %+v, %v", cs, err)
	}
	_, _, drops := s.Stats()
	if len(drops) != 4 || drops["malformed"] != 1 || drops["test"] != 1 || drops["subscription"] != 1 || drops["kind"] != 1 {
		t.Fatalf("drops %v", drops)
	}
}

func TestBackoff(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	var got []time.Duration
	for range 6 {
		got = append(got, b.Next())
	}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("delays %v, want %v ms", got, want)
		}
	}
	if b.Reset(); b.Next() != b.Min {
		t.Fatal("Reset did not start again from Min")
	}
	j := Backoff{Min: 100 * time.Millisecond, Max: time.Second, Jitter: true}
	for _, d := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		d *= time.Millisecond
		if n := j.Next(); n < d/2 || n > d {
			t.Fatalf("jittered delay %v, want %v to %v", n, d/2, d)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if b.Sleep(ctx) {
		t.Fatal("Sleep reported true after its context ended")
	}
	if !Sleep(context.Background(), time.Millisecond) {
		t.Fatal("Sleep reported false")
	}
}

func TestThrottle(t *testing.T) {
	var th Throttle
	if !th.OK() || th.OK() {
		t.Fatal("want the first line through and the next one held")
	}
	th.last.Add(-int64(LogEvery))
	if !th.OK() {
		t.Fatal("want a line through after LogEvery")
	}
}
