package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/freshen-io/freshen/internal/app"
	"github.com/freshen-io/freshen/internal/pipeline"
	"github.com/freshen-io/freshen/internal/verify"
)

// verifySummary is `freshen verify --json`'s output.
type verifySummary struct {
	verify.Report
	// TokensEmbedded by the repair's rewrites: 0 when the embedding cache
	// had every vector, as it should.
	TokensEmbedded int64 `json:"tokens_embedded"`
	// Remaining is the drift a check after the repair still found.
	Remaining *int64 `json:"remaining,omitempty"`
}

func runVerify(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "verify", "verify --config FILE [--repair] [--json] [--allow-mass-delete]")
	cfgFile := configFlag(fs)
	repair := fs.Bool("repair", false, "rewrite missing and changed rows from the embedding cache, delete orphans")
	asJSON := fs.Bool("json", false, "print a JSON report instead of text")
	allowMass := fs.Bool("allow-mass-delete", false, "repair even if most rows would be deleted (see mass-delete in the configuration)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	// Checking only reads; repairing rewrites keys, which needs the data.
	a, err := openApp(ctx, e, *cfgFile, app.Options{Exclusive: *repair, NoSource: !*repair})
	if err != nil {
		return err
	}
	defer a.Close()
	rep, err := a.Verify(ctx, *repair, *allowMass)
	sum := verifySummary{Report: rep}
	if err == nil && *repair && rep.Repaired > 0 {
		var tokens atomic.Int64
		p := a.Pipeline(func(r pipeline.Result) { tokens.Add(r.Work.TokensEmbedded) })
		if _, err = p.Drain(ctx); err == nil {
			sum.TokensEmbedded = tokens.Load()
			var after verify.Report
			if after, err = a.Verify(ctx, false, false); err == nil {
				left := after.Drifts()
				sum.Remaining = &left
			}
		}
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(sum); jerr != nil && err == nil {
			err = jerr
		}
	} else {
		printVerify(e.stdout, sum)
	}
	switch {
	case err != nil:
		return err
	case sum.Remaining != nil && *sum.Remaining > 0:
		return fmt.Errorf("%d rows still differ after the repair (changes under way?); run verify again", *sum.Remaining)
	case !*repair && rep.Drifts() > 0:
		return fmt.Errorf("the index differs from the ledger in %d rows; `freshen verify --repair` fixes them", rep.Drifts())
	}
	return nil
}

func printVerify(w io.Writer, s verifySummary) {
	fmt.Fprintf(w, "checked %d keys: %d chunks in the ledger, %d rows in the index (%.1fs)\n", s.KeysChecked, s.ChunksChecked, s.RowsChecked, s.Seconds)
	fmt.Fprintf(w, "%d missing, %d orphans, %d mismatched", s.Missing, s.Orphans, s.Mismatched)
	if s.InFlight > 0 {
		fmt.Fprintf(w, " (%d keys in work were not judged)", s.InFlight)
	}
	fmt.Fprintln(w)
	for _, d := range s.Examples {
		fmt.Fprintf(w, "  %s %q chunk %s", d.Kind, d.Key, d.ID)
		if d.Detail != "" {
			fmt.Fprintf(w, ": %s", d.Detail)
		}
		fmt.Fprintln(w)
	}
	if s.Repaired > 0 {
		fmt.Fprintf(w, "repaired %d rows with %d tokens embedded\n", s.Repaired, s.TokensEmbedded)
	}
	if s.Drifts() == 0 || s.Remaining != nil && *s.Remaining == 0 {
		fmt.Fprintln(w, "the index matches the ledger")
	}
}
