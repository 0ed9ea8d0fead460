package pipeline

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/chunk"
	"github.com/freshen-io/freshen/extract"
)

// gatedEmbedder holds every call with backlog text until release closes.
type gatedEmbedder struct {
	*fakeEmbedder
	release chan struct{}
}

func (g *gatedEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	for _, t := range texts {
		if strings.Contains(t, "backlog") {
			select {
			case <-g.release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			break
		}
	}
	return g.fakeEmbedder.Embed(ctx, texts)
}

// TestFreshEditWhileAllWorkersAreBusy: with every worker stuck on backlog
// (a backfill behind a provider's rate limit), a change announced by an
// event is still processed at once, by the worker kept for fresh edits.
func TestFreshEditWhileAllWorkersAreBusy(t *testing.T) {
	_, b := setup(t)
	g := &gatedEmbedder{fakeEmbedder: b.emb, release: make(chan struct{})}
	var rs results
	chk, _ := chunk.New(chunk.Config{})
	p := New(Config{Bucket: "b", Workers: 2}, b.src, extract.New(extract.Config{}), chk, g, b.idx, b.led, nil, rs.add)
	var backlog []freshen.Change
	for _, k := range []string{"old-1.md", "old-2.md", "old-3.md", "old-4.md"} {
		b.src.Put(k, "text/markdown", []byte(doc("Old", "A backlog paragraph of "+k)))
		backlog = append(backlog, freshen.Change{Bucket: "b", Key: k, EventTime: time.Now(), Origin: "reconcile"})
	}
	if _, err := b.led.Enqueue(context.Background(), backlog); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	must(t, p.Start(ctx))
	defer p.Stop()
	defer close(g.release) // before Stop: let the backlog finish
	// Wait until both workers are stuck on backlog.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		q, _ := b.led.Lease(context.Background(), freshen.LeaseParams{Owner: "probe", Max: 10, TTL: time.Millisecond})
		for _, x := range q {
			b.led.Release(context.Background(), x)
		}
		if len(q) <= 2 { // at most the two not yet handed out
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.src.Put("fresh.md", "text/markdown", []byte(doc("Fresh", "A fresh edit announced by an event.")))
	if _, err := b.led.Enqueue(context.Background(), []freshen.Change{{Bucket: "b", Key: "fresh.md", EventTime: time.Now(), Origin: "webhook"}}); err != nil {
		t.Fatal(err)
	}
	p.Wake()
	deadline = time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, o := range rs.snapshot() {
			if o.Key == "fresh.md" && o.Outcome == OutcomeIndexed {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("the fresh edit was not processed while the workers were busy: %v", rs.outcomes())
}
