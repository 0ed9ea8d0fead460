package cli

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/freshen-io/freshen"
)

// poisonEmbedder refuses texts that mention POISON until cured.
type poisonEmbedder struct {
	hashEmbedder
	cured *atomic.Bool
}

func (p poisonEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	for _, t := range texts {
		if strings.Contains(t, "POISON") && !p.cured.Load() {
			return nil, freshen.Permanent(errors.New("provider says: input rejected by the content filter"))
		}
	}
	return p.hashEmbedder.Embed(ctx, texts)
}

// TestDeadLettersAndRedrive: a permanently failing object is listed with
// its reason; once the cause is fixed, `redrive --all --reason` queues
// it and the next sync indexes it; the list is then empty.
func TestDeadLettersAndRedrive(t *testing.T) {
	b := setupSync(t)
	cured := &atomic.Bool{}
	emb := poisonEmbedder{cured: cured}
	b.src.Put("ok.md", "text/markdown", []byte("# Fine\n\nA paragraph about harbors.\n"))
	b.src.Put("bad doc+1.md", "text/markdown", []byte("# Bad\n\nThis one says POISON.\n"))
	if code, out, _ := b.main(context.Background(), emb, "sync", "--quiet"); code != 1 || !strings.Contains(out, `FAILED "bad doc+1.md"`) {
		t.Fatalf("sync with a poisoned object: %d %s", code, out)
	}
	if code, out, errs := b.main(context.Background(), emb, "dead-letters"); code != 0 || !strings.Contains(out, `"bad doc+1.md"`) ||
		!strings.Contains(out, "content filter") || strings.Contains(out, "ok.md") {
		t.Fatalf("dead-letters: %d %s %s", code, out, errs)
	}
	for _, args := range [][]string{{"redrive"}, {"redrive", "x.md", "--all"}, {"redrive", "x.md", "--reason", "y"}} {
		if code, _, errs := b.main(context.Background(), emb, args...); code != 2 {
			t.Fatalf("%v: exit %d %s; want a usage error", args, code, errs)
		}
	}
	if code, _, errs := b.main(context.Background(), emb, "redrive", "never-seen.md"); code != 1 || !strings.Contains(errs, "no object") {
		t.Fatalf("redrive of an unknown key: %d %s", code, errs)
	}
	if code, out, _ := b.main(context.Background(), emb, "redrive", "--all", "--reason", "no such reason"); code != 0 || !strings.Contains(out, "no dead letters") {
		t.Fatalf("redrive of a reason nobody has: %d %s", code, out)
	}
	cured.Store(true)
	if code, out, errs := b.main(context.Background(), emb, "redrive", "--all", "--reason", "CONTENT FILTER"); code != 0 || !strings.Contains(out, "queued 1 objects") {
		t.Fatalf("redrive: %d %s %s", code, out, errs)
	}
	if code, out, errs := b.main(context.Background(), emb, "sync", "--quiet"); code != 0 || !strings.Contains(out, "1 indexed") {
		t.Fatalf("sync after the redrive: %d %s %s", code, out, errs)
	}
	if code, out, _ := b.main(context.Background(), emb, "dead-letters", "--json"); code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("dead-letters after the fix: %d %s", code, out)
	}
}
