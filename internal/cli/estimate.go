package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/freshen-io/freshen/internal/app"
)

func runEstimate(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "estimate", "estimate --config FILE [--json]")
	cfgFile := configFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	a, err := openApp(ctx, e, *cfgFile, app.Options{})
	if err != nil {
		return err
	}
	defer a.Close()
	est, err := a.Estimate(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(est)
	}
	w := e.stdout
	fmt.Fprintf(w, "a sync would process %d objects (%d chunks; %d skipped) and embed %d tokens in %d requests\n",
		est.Objects, est.Chunks, est.Skipped, est.Tokens, est.Requests)
	if p := a.Config.Embedder.PricePerMillionTokens; p > 0 {
		fmt.Fprintf(w, "cost: $%.4f at $%g per million tokens\n", est.USD, p)
	} else {
		fmt.Fprintln(w, "cost: set embedder.price-per-million-tokens to see it")
	}
	if est.Seconds > 0 {
		fmt.Fprintf(w, "time: about %s at the configured rpm/tpm limits\n", (time.Duration(est.Seconds * float64(time.Second))).Round(time.Second))
	} else {
		fmt.Fprintln(w, "time: set embedder.rpm and embedder.tpm to see it")
	}
	return nil
}
