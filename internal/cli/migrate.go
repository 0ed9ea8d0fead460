package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/freshen-io/freshen/internal/app"
)

const migrateUsage = `migrate plan|start|status|switch|rollback|abort --config FILE [--json]

  plan     what building a generation for FILE's embedder, chunking and
           index would change, embed and cost (nothing is written)
  start    build that generation beside the serving one: run (or sync)
           embeds it as backlog, under the budget and rate limits, while
           every change is applied to both generations
  status   progress, ETA and spend of the generation beside the serving one
  switch   once it is complete and verified, make it serve search (and the
           pgvector view / Weaviate alias); the old one is kept, and kept
           fresh, for --keep
  rollback make the old generation serve again (within --keep)
  abort    drop the generation beside the serving one (a build, or the old
           one kept for a rollback)`

func runMigrate(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "migrate", migrateUsage)
	cfgFile := configFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	keep := fs.Duration("keep", 24*time.Hour, "switch: how long the old generation is kept (and kept fresh) for a rollback")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"migrate needs one of plan, start, status, switch, rollback, abort"}
	}
	cfg, err := loadConfig(*cfgFile)
	if err != nil {
		return err
	}
	quiet := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	o := app.Options{Log: quiet}
	switch pos[0] {
	case "status", "start", "abort":
		o.NoSource = true
	case "plan", "switch", "rollback":
	default:
		return usageError{fmt.Sprintf("migrate: unknown step %q (plan, start, status, switch, rollback, abort)", pos[0])}
	}
	a, err := openApp(ctx, e, *cfgFile, o)
	if err != nil {
		return err
	}
	defer a.Close()
	out := func(v any, text func(io.Writer)) error {
		if *asJSON {
			enc := json.NewEncoder(e.stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(v)
		}
		text(e.stdout)
		return nil
	}
	switch pos[0] {
	case "plan":
		p, err := a.PlanMigration(ctx, cfg)
		if err != nil {
			return err
		}
		return out(p, func(w io.Writer) {
			fmt.Fprintf(w, "serving: generation %d (%s)\n", p.From.ID, p.From.Target())
			for _, c := range p.Changes {
				fmt.Fprintf(w, "  change  %s\n", c)
			}
			est := p.Estimate
			fmt.Fprintf(w, "new generation: %s\n", p.Target)
			fmt.Fprintf(w, "  %d objects, %d chunks: %d distinct chunks already embedded (reused), %d tokens to embed in %d requests\n",
				est.Objects, est.Chunks, est.Cached, est.Tokens, est.Requests)
			fmt.Fprintf(w, "  cost $%.4f", est.USD)
			if est.Seconds > 0 {
				fmt.Fprintf(w, ", about %s at the configured rate limits", (time.Duration(est.Seconds) * time.Second).String())
			}
			fmt.Fprintf(w, "\n  %d objects would be skipped\nnext: freshen migrate start --config FILE\n", est.Skipped)
		})
	case "start":
		g, err := a.StartMigration(ctx, cfg)
		if err != nil {
			return err
		}
		return out(g, func(w io.Writer) {
			fmt.Fprintf(w, "generation %d is building into the %s; freshen run picks it up within seconds (or run freshen sync)\n", g.ID, g.Target())
			fmt.Fprintln(w, "follow it with: freshen migrate status; then: freshen migrate switch")
		})
	case "status":
		st, err := a.Migration(ctx)
		if err != nil {
			return err
		}
		return out(st, func(w io.Writer) { printMigration(w, st) })
	case "switch", "rollback":
		if a.Other == nil {
			return errors.New("no generation beside the serving one")
		}
		want := app.GenBuilding
		if pos[0] == "rollback" {
			want = app.GenRetired
		}
		if a.Other.Gen.State != want {
			return fmt.Errorf("generation %d is %s; %s needs a %s one", a.Other.Gen.ID, a.Other.Gen.State, pos[0], want)
		}
		rep, err := a.Switch(ctx, *keep)
		if err != nil {
			return err
		}
		return out(rep, func(w io.Writer) {
			fmt.Fprintf(w, "generation %d serves search now (checked: %d objects listed, %d index rows verified); generation %d is kept until %s\n",
				rep.To, rep.Listed, rep.Rows, rep.From, time.Now().Add(*keep).UTC().Format(time.RFC3339))
		})
	case "abort":
		g, err := a.Abort(ctx)
		if err != nil {
			return err
		}
		return out(g, func(w io.Writer) {
			fmt.Fprintf(w, "generation %d is dropped: its %s and ledger are deleted by the next run or sync\n", g.ID, g.Target())
		})
	}
	return nil
}

func printMigration(w io.Writer, st app.MigrationStatus) {
	fmt.Fprintf(w, "serving    generation %d (%s)\n", st.Serving.ID, st.Serving.Target())
	o := st.Other
	if o == nil {
		fmt.Fprintln(w, "no migration under way")
		return
	}
	fmt.Fprintf(w, "%-10s generation %d (%s, %s)\n", o.State, o.ID, o.Target, o.Model)
	fmt.Fprintf(w, "  objects  %d of %d, %d queued\n", o.Objects, o.Of, o.Backlog)
	fmt.Fprintf(w, "  spent    %d tokens ($%.4f); %d chunks reused\n", o.Tokens, o.USD, o.Reused)
	if o.ETASeconds > 0 {
		fmt.Fprintf(w, "  eta      %s\n", (time.Duration(o.ETASeconds) * time.Second).Round(time.Second))
	}
	if !o.DropAfter.IsZero() {
		fmt.Fprintf(w, "  kept until %s for a rollback\n", o.DropAfter.Format(time.RFC3339))
	}
}
