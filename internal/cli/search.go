package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/internal/app"
)

func runSearch(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "search", "search --config FILE [-k N] [--prefix P] [--filter ATTR=VALUE]... [--json] QUERY")
	cfgFile := configFlag(fs)
	k := fs.Int("k", 5, "number of hits")
	prefix := fs.String("prefix", "", "only keys starting with this prefix")
	asJSON := fs.Bool("json", false, "print a JSON array of hits")
	var filters []freshen.Filter
	fs.Func("filter", "only chunks whose metadata matches: ATTR=VALUE, ATTR=V1|V2, ATTR!=VALUE, ATTR>=N, ATTR<2024-06-01 (repeatable; all must hold)",
		func(v string) error {
			f, err := freshen.ParseFilter(v)
			if err == nil {
				filters = append(filters, f)
			}
			return err
		})
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageError{"no query: freshen search [flags] QUERY"}
	}
	if *k < 1 || *k > 1000 {
		return usageError{"-k must be between 1 and 1000"}
	}
	a, err := openApp(ctx, e, *cfgFile, app.Options{NoSource: true})
	if err != nil {
		return err
	}
	defer a.Close()
	hits, err := a.Search(ctx, strings.Join(pos, " "), *k, *prefix, filters...)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(hits)
	}
	if len(hits) == 0 {
		fmt.Fprintln(e.stdout, "no hits (is the index empty? run `freshen sync`)")
		return nil
	}
	for i, h := range hits {
		trail := ""
		if len(h.Headings) > 0 {
			trail = "  › " + strings.Join(h.Headings, " › ")
		}
		fmt.Fprintf(e.stdout, "%d. %.3f  %s%s\n   %s\n", i+1, h.Score, h.Key, trail, snippet(h.Text, 200))
	}
	return nil
}

func snippet(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
