package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/internal/app"
)

// Status is `freshen status --json` (and the HTTP API's /v1/status).
type Status struct {
	Objects        int         `json:"objects"`
	Chunks         int         `json:"chunks"`
	ChunksEmbedded int64       `json:"chunks_embedded"`
	ChunksReused   int64       `json:"chunks_reused"`
	TokensEmbedded int64       `json:"tokens_embedded"`
	CharsEmbedded  int64       `json:"chars_embedded"`
	Backlog        int         `json:"backlog"`
	OldestPending  *time.Time  `json:"oldest_pending,omitempty"`
	SkippedTotal   int         `json:"skipped_total"`
	FailedTotal    int         `json:"failed_total"`
	Skipped        []keyReason `json:"skipped"`
	Failed         []keyReason `json:"failed"`
	Model          string      `json:"model"`
	Chunker        string      `json:"chunker"`
}

const statusListLimit = 100

// GetStatus reads the ledger's totals.
func GetStatus(ctx context.Context, a *app.App) (Status, error) {
	var s Status
	sum, err := a.Ledger.Summary(ctx)
	if err != nil {
		return s, err
	}
	c, err := a.Ledger.Counters(ctx)
	if err != nil {
		return s, err
	}
	n, oldest, err := a.Ledger.Backlog(ctx)
	if err != nil {
		return s, err
	}
	s = Status{Objects: sum.Indexed, Chunks: sum.Chunks, ChunksEmbedded: c.ChunksEmbedded, ChunksReused: c.ChunksReused,
		TokensEmbedded: c.TokensEmbedded, CharsEmbedded: c.CharsEmbedded, Backlog: n, SkippedTotal: sum.Skipped, FailedTotal: sum.Failed,
		Skipped: []keyReason{}, Failed: []keyReason{}, Model: a.Embedder.Model().Name, Chunker: a.Chunker.Version()}
	if !oldest.IsZero() {
		s.OldestPending = &oldest
	}
	for state, dst := range map[freshen.ObjectState]*[]keyReason{freshen.StateSkipped: &s.Skipped, freshen.StateFailed: &s.Failed} {
		objs, err := a.Ledger.ObjectsInState(ctx, state, statusListLimit)
		if err != nil {
			return s, err
		}
		for _, o := range objs {
			*dst = append(*dst, keyReason{o.Key, o.Reason})
		}
	}
	return s, nil
}

func runStatus(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "status", "status --config FILE [--json]")
	cfgFile := configFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	a, err := openApp(ctx, e, *cfgFile, app.Options{NoSource: true})
	if err != nil {
		return err
	}
	defer a.Close()
	s, err := GetStatus(ctx, a)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	w := e.stdout
	fmt.Fprintf(w, "objects indexed   %d (%d chunks)\n", s.Objects, s.Chunks)
	fmt.Fprintf(w, "chunks embedded   %d (%d tokens, %d characters)\n", s.ChunksEmbedded, s.TokensEmbedded, s.CharsEmbedded)
	fmt.Fprintf(w, "chunks reused     %d\n", s.ChunksReused)
	fmt.Fprintf(w, "backlog           %d", s.Backlog)
	if s.OldestPending != nil {
		fmt.Fprintf(w, " (oldest change %s ago)", time.Since(*s.OldestPending).Round(time.Second))
	}
	fmt.Fprintf(w, "\nmodel             %s\nchunker           %s\n", s.Model, s.Chunker)
	fmt.Fprintf(w, "skipped           %d\n", s.SkippedTotal)
	for _, k := range s.Skipped {
		fmt.Fprintf(w, "  %q: %s\n", k.Key, k.Reason)
	}
	fmt.Fprintf(w, "failed            %d\n", s.FailedTotal)
	for _, k := range s.Failed {
		fmt.Fprintf(w, "  %q: %s\n", k.Key, k.Reason)
	}
	return nil
}
