package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/freshen-io/freshen/internal/app"
)

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
	s, err := a.Status(ctx)
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
	fmt.Fprintf(w, "\nmodel             %s\nchunker           %s\ngeneration        %d\n", s.Model, s.Chunker, s.Generation)
	if m := s.Migration; m != nil {
		fmt.Fprintf(w, "  %s generation %d (%s): %d of %d objects, %d queued, %d tokens\n", m.State, m.ID, m.Target, m.Objects, m.Of, m.Backlog, m.Tokens)
	}
	fmt.Fprintf(w, "skipped           %d\n", s.SkippedTotal)
	for _, k := range s.Skipped {
		fmt.Fprintf(w, "  %q: %s\n", k.Key, k.Reason)
	}
	fmt.Fprintf(w, "failed            %d\n", s.FailedTotal)
	for _, k := range s.Failed {
		fmt.Fprintf(w, "  %q: %s\n", k.Key, k.Reason)
	}
	if c := s.Cluster; c != nil {
		leader := c.ReconcileLeader
		if len(c.ReconcileLeaders) > 1 {
			leader = fmt.Sprintf("%d ranges, %d led", len(a.Config.ReconcileRanges()), len(c.ReconcileLeaders))
		} else if leader == "" {
			leader = "none seen"
		}
		fmt.Fprintf(w, "processes         %d seen in the last 30s (reconcile: %s)\n", len(c.Processes), leader)
		for job, owner := range c.ReconcileLeaders {
			if len(c.ReconcileLeaders) > 1 {
				fmt.Fprintf(w, "  %s: %s\n", job, owner)
			}
		}
		for _, p := range c.Processes {
			fmt.Fprintf(w, "  %s  pid %d on %s, up %s, seen %s ago\n", p.Owner, p.PID, p.Host,
				time.Since(p.Started).Round(time.Second), time.Since(p.LastSeen).Round(time.Second))
		}
	}
	return nil
}
