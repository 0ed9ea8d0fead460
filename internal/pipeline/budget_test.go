package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/freshen-io/freshen"
)

// TestBudgetPausesEmbedding: once today's tokens reach the budget,
// embedding stops within one batch, keys wait uncounted (nothing is
// parked), and Drain says why.
func TestBudgetPausesEmbedding(t *testing.T) {
	_, b := setup(t)
	const budget = 200
	p := b.pipelineWith(t, Config{Workers: 1, EmbedBatch: 1, BudgetTokensPerDay: budget}, nil, nil, nil)
	for i := 0; i < 20; i++ {
		b.src.Put(fmt.Sprintf("doc-%02d.md", i), "text/markdown",
			[]byte(doc(fmt.Sprintf("Doc %d", i), fmt.Sprintf("Paragraph %d about harbors, lanterns and the ferries that cross the bay at night.", i))))
		b.enqueue(t, fmt.Sprintf("doc-%02d.md", i))
	}
	_, err := p.Drain(context.Background())
	if !errors.Is(err, freshen.ErrBudgetSpent) || !strings.Contains(err.Error(), "resumes at") {
		t.Fatalf("Drain = %v, want the budget's error", err)
	}
	c, _ := b.led.Counters(context.Background())
	// Within one batch per worker in flight (here: batches of one
	// ~20-token chunk, the worker and the one kept for fresh edits).
	if c.TokensToday > budget+2*25 || c.TokensToday < budget/2 {
		t.Fatalf("%d tokens embedded today against a budget of %d", c.TokensToday, budget)
	}
	if sum, _ := b.led.Summary(context.Background()); sum.Failed != 0 || sum.Indexed == 0 || sum.Indexed == 20 {
		t.Fatalf("summary %+v: want some indexed, the rest waiting, none failed", sum)
	}
	n, _, _ := b.led.Backlog(context.Background())
	if n == 0 {
		t.Fatal("nothing waits for tomorrow")
	}
	if p.BudgetSpent() == nil {
		t.Fatal("BudgetSpent() = nil after the budget was spent")
	}
}
