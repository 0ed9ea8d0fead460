package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/freshen-io/freshen/internal/app"
)

func runDeadLetters(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "dead-letters", "dead-letters --config FILE [--skipped] [--reason SUBSTR] [--json]")
	cfgFile := configFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	skipped := fs.Bool("skipped", false, "list skipped objects too (unsupported, too large, over the limits)")
	reason := fs.String("reason", "", "only those whose reason contains this (case-insensitive)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	a, err := openApp(ctx, e, *cfgFile, app.Options{NoSource: true})
	if err != nil {
		return err
	}
	defer a.Close()
	dl, err := a.DeadLetters(ctx, *skipped, *reason, 0)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(dl)
	}
	if len(dl) == 0 {
		fmt.Fprintln(e.stdout, "no dead letters")
		return nil
	}
	for _, d := range dl {
		fmt.Fprintf(e.stdout, "%-7s %q since %s", d.State, d.Key, d.Since.UTC().Format(time.RFC3339))
		if d.Attempts > 0 {
			fmt.Fprintf(e.stdout, " after %d attempts", d.Attempts)
		}
		fmt.Fprintf(e.stdout, "\n        %s\n", d.Reason)
	}
	fmt.Fprintf(e.stdout, "%d objects; re-drive them once the cause is fixed: freshen redrive KEY... (or --all [--reason SUBSTR])\n", len(dl))
	return nil
}

func runRedrive(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "redrive", "redrive --config FILE KEY... | --all [--skipped] [--reason SUBSTR]")
	cfgFile := configFlag(fs)
	all := fs.Bool("all", false, "re-drive every failed object (with --skipped, the skipped ones too)")
	skipped := fs.Bool("skipped", false, "with --all: skipped objects too")
	reason := fs.String("reason", "", "with --all: only those whose reason contains this")
	keys, err := parse(fs, args)
	if err != nil {
		return err
	}
	switch {
	case *all && len(keys) > 0:
		return usageError{"redrive takes keys or --all, not both"}
	case !*all && len(keys) == 0:
		return usageError{"redrive needs keys, or --all"}
	case !*all && (*reason != "" || *skipped):
		return usageError{"--reason and --skipped go with --all"}
	}
	a, err := openApp(ctx, e, *cfgFile, app.Options{NoSource: true})
	if err != nil {
		return err
	}
	defer a.Close()
	if *all {
		dl, err := a.DeadLetters(ctx, *skipped, *reason, 0)
		if err != nil {
			return err
		}
		for _, d := range dl {
			keys = append(keys, d.Key)
		}
		if len(keys) == 0 {
			fmt.Fprintln(e.stdout, "no dead letters to re-drive")
			return nil
		}
	}
	n, err := a.Redrive(ctx, keys)
	if err != nil {
		return err
	}
	if n == 0 {
		return errors.New("nothing queued")
	}
	fmt.Fprintf(e.stdout, "queued %d objects again; freshen run processes them within a second (or run freshen sync)\n", n)
	return nil
}
