package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/internal/app"
	"github.com/freshen-io/freshen/internal/pipeline"
	"github.com/freshen-io/freshen/internal/reconcile"
)

// syncSummary is `freshen sync --json`'s output.
type syncSummary struct {
	// Repaired says how the ledger and the index disagreed at the start
	// (a lost or replaced database), and what was queued to repair it.
	Repaired       string           `json:"repaired,omitempty"`
	Reconcile      reconcile.Report `json:"reconcile"`
	Recovered      int              `json:"recovered"`
	Processed      int              `json:"processed"`
	Outcomes       map[string]int   `json:"outcomes"`
	ChunksEmbedded int64            `json:"chunks_embedded"`
	ChunksReused   int64            `json:"chunks_reused"`
	TokensEmbedded int64            `json:"tokens_embedded"`
	CharsEmbedded  int64            `json:"chars_embedded"`
	Failed         []app.KeyReason  `json:"failed"`
	Skipped        []app.KeyReason  `json:"skipped"`
	DurationMS     int64            `json:"duration_ms"`
	InSync         bool             `json:"in_sync"`
	Message        string           `json:"message,omitempty"`
}

func runSync(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "sync", "sync --config FILE [--json] [--allow-mass-delete]")
	cfgFile := configFlag(fs)
	asJSON := fs.Bool("json", false, "print a JSON summary instead of text")
	allowMass := fs.Bool("allow-mass-delete", false, "delete even if most of the index would go (see mass-delete in the configuration)")
	quiet := fs.Bool("quiet", false, "no progress output")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	defer withTracing(ctx, e)()
	a, err := openApp(ctx, e, *cfgFile, app.Options{Exclusive: true})
	if err != nil {
		return err
	}
	defer a.Close()
	start := time.Now()
	sum := syncSummary{Outcomes: map[string]int{}, Failed: []app.KeyReason{}, Skipped: []app.KeyReason{}}

	prog := newProgress(e.stderr, !*quiet && !*asJSON && isTerminal(e.stderr))
	var mu sync.Mutex
	p := a.Pipeline(func(r pipeline.Result) {
		mu.Lock()
		defer mu.Unlock()
		sum.Processed++
		sum.Outcomes[string(r.Outcome)]++
		sum.ChunksEmbedded += r.Work.ChunksEmbedded
		sum.ChunksReused += r.Work.ChunksReused
		sum.TokensEmbedded += r.Work.TokensEmbedded
		sum.CharsEmbedded += r.Work.CharsEmbedded
		switch r.Outcome {
		case pipeline.OutcomeFailed:
			sum.Failed = append(sum.Failed, app.KeyReason{Key: r.Key, Reason: r.Reason})
		case pipeline.OutcomeSkipped:
			sum.Skipped = append(sum.Skipped, app.KeyReason{Key: r.Key, Reason: r.Reason})
		}
		prog.update(sum.Processed, sum.ChunksEmbedded, sum.ChunksReused)
	})
	// interrupted reports a sync a signal stopped. Drain gave back the
	// leases of the keys in flight uncounted, so they, and every key not
	// reached, are still queued: the next sync does them.
	interrupted := func() error {
		prog.done()
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		msg := "interrupted; the keys not processed remain queued for the next sync"
		if n, _, err := a.Ledger.Backlog(bctx); err == nil {
			msg = fmt.Sprintf("interrupted; %d keys remain queued for the next sync", n)
		}
		if *asJSON {
			mu.Lock()
			defer mu.Unlock()
			sum.DurationMS, sum.Message = time.Since(start).Milliseconds(), msg
			enc := json.NewEncoder(e.stdout)
			enc.SetIndent("", "  ")
			enc.Encode(sum)
		}
		return errors.New(msg)
	}
	if err := a.Collect(ctx); err != nil {
		fmt.Fprintf(e.stderr, "freshen sync: %v\n", err)
	}
	if err := a.Publish(ctx, false); err != nil {
		fmt.Fprintf(e.stderr, "freshen sync: %v\n", err)
	}
	state, err := a.CheckState(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return interrupted()
		}
		return noSpace(fmt.Errorf("checking the ledger against the index: %w", err), a.Config.DataDir)
	}
	if sum.Repaired = state.Problem; state.Problem != "" {
		fmt.Fprintf(e.stderr, "freshen sync: %s\n", state.Problem)
	}
	if sum.Recovered, err = p.Recover(ctx); err != nil {
		if ctx.Err() != nil {
			return interrupted()
		}
		return fmt.Errorf("recover: %w", err)
	}
	prog.phase("listing s3://" + a.Config.Source.Bucket)
	rep, recErr := a.Reconciler(a.Sink(nil, nil)).Pass(ctx, *allowMass || a.Config.MassDelete.Allow)
	sum.Reconcile = rep
	if ctx.Err() != nil {
		return interrupted()
	}
	if recErr != nil && !errors.Is(recErr, reconcile.ErrMassDelete) {
		return noSpace(recErr, a.Config.DataDir)
	}
	backlog, _, err := a.Ledger.Backlog(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return interrupted()
		}
		return err
	}
	prog.start(backlog)
	if _, err := p.Drain(ctx); err != nil {
		if ctx.Err() != nil {
			return interrupted()
		}
		if errors.Is(err, freshen.ErrBudgetSpent) {
			n, _, _ := a.Ledger.Backlog(ctx)
			return fmt.Errorf("%v; %d keys stay queued for the next sync", err, n)
		}
		return noSpace(err, a.Config.DataDir)
	}
	if o := a.Other; o != nil {
		// The generation beside the serving one (a migration, or the old
		// one kept for a rollback) catches up too.
		prog.phase(fmt.Sprintf("generation %d (%s)", o.Gen.ID, o.Gen.State))
		po := o.Pipeline(nil)
		if _, err := o.CheckState(ctx); err != nil {
			return fmt.Errorf("generation %d: %w", o.Gen.ID, err)
		}
		if _, err := po.Recover(ctx); err != nil {
			return fmt.Errorf("generation %d: recover: %w", o.Gen.ID, err)
		}
		if _, err := o.Reconciler(o.Sink(nil, nil)).Pass(ctx, *allowMass || a.Config.MassDelete.Allow); err != nil {
			return fmt.Errorf("generation %d: %w", o.Gen.ID, err)
		}
		if _, err := po.Drain(ctx); err != nil {
			if ctx.Err() != nil {
				return interrupted()
			}
			return fmt.Errorf("generation %d: %w", o.Gen.ID, err)
		}
	}
	prog.done()
	sum.DurationMS = time.Since(start).Milliseconds()
	sort.Slice(sum.Failed, func(i, j int) bool { return sum.Failed[i].Key < sum.Failed[j].Key })
	sort.Slice(sum.Skipped, func(i, j int) bool { return sum.Skipped[i].Key < sum.Skipped[j].Key })
	sum.InSync = recErr == nil && len(sum.Failed) == 0
	if recErr != nil {
		sum.Message = rep.Message
	}
	// Never claim the index matches without having checked it.
	if after, err := a.CheckState(ctx); err != nil || after.Problem != "" {
		sum.InSync = false
		if err != nil {
			sum.Message = fmt.Sprintf("could not check the index against the ledger: %v", err)
		} else {
			sum.Message = "after the sync " + after.Problem + "; run sync again"
		}
		recErr = errors.Join(recErr, errors.New(sum.Message))
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(sum); err != nil {
			return err
		}
	} else {
		printSync(e.stdout, sum)
	}
	switch {
	case recErr != nil:
		return fmt.Errorf("%s", sum.Message)
	case len(sum.Failed) > 0:
		return fmt.Errorf("%d object(s) failed; see `freshen status` (they are retried when they change, or on the next sync)", len(sum.Failed))
	}
	return nil
}

func printSync(w io.Writer, s syncSummary) {
	r := s.Reconcile
	fmt.Fprintf(w, "listed %d objects: %d new, %d changed, %d gone, %d unchanged", r.Listed, r.New, r.Changed, r.Vanished, r.Unchanged)
	if r.Ignored > 0 {
		fmt.Fprintf(w, ", %d outside the filters", r.Ignored)
	}
	fmt.Fprintln(w)
	var outs []string
	for k, v := range s.Outcomes {
		outs = append(outs, fmt.Sprintf("%d %s", v, k))
	}
	sort.Strings(outs)
	fmt.Fprintf(w, "processed %d objects (%s) in %s\n", s.Processed, strings.Join(outs, ", "), time.Duration(s.DurationMS)*time.Millisecond)
	fmt.Fprintf(w, "chunks: %d embedded (%d tokens), %d reused\n", s.ChunksEmbedded, s.TokensEmbedded, s.ChunksReused)
	for _, k := range s.Skipped {
		fmt.Fprintf(w, "skipped %q: %s\n", k.Key, k.Reason)
	}
	for _, k := range s.Failed {
		fmt.Fprintf(w, "FAILED %q: %s\n", k.Key, k.Reason)
	}
	if s.InSync {
		fmt.Fprintln(w, "the index matches the bucket")
	}
}

// progress draws a one-line progress bar on a terminal.
type progress struct {
	w       io.Writer
	on      bool
	total   int
	started time.Time
	last    time.Time
}

func newProgress(w io.Writer, on bool) *progress { return &progress{w: w, on: on} }

func (p *progress) phase(msg string) {
	if p.on {
		fmt.Fprintf(p.w, "\r\033[K%s…", msg)
	}
}

func (p *progress) start(total int) { p.total, p.started = total, time.Now() }

func (p *progress) update(done int, embedded, reused int64) {
	if !p.on || time.Since(p.last) < 100*time.Millisecond && done < p.total {
		return
	}
	p.last = time.Now()
	total := max(p.total, done)
	const width = 30
	filled := width * done / max(total, 1)
	eta := "?"
	if done > 0 {
		el := time.Since(p.started)
		eta = (el / time.Duration(done) * time.Duration(total-done)).Round(time.Second).String()
	}
	fmt.Fprintf(p.w, "\r\033[K[%s%s] %d/%d objects  %d chunks embedded, %d reused  ETA %s",
		strings.Repeat("=", filled), strings.Repeat(" ", width-filled), done, total, embedded, reused, eta)
}

func (p *progress) done() {
	if p.on {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
