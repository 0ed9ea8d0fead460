package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/freshen-io/freshen/embed/builtin"
)

func runEmbed(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "embed", "embed [--json] TEXT... (or - to read one text per line from stdin)")
	asJSON := fs.Bool("json", false, `print a JSON array of {"text": ..., "tokens": N, "vector": [...]}`)
	texts, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(texts) == 1 && texts[0] == "-" {
		texts = texts[:0]
		sc := bufio.NewScanner(e.stdin)
		sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
		for sc.Scan() {
			if line := sc.Text(); strings.TrimSpace(line) != "" {
				texts = append(texts, line)
			}
		}
		if err := sc.Err(); err != nil {
			return fmt.Errorf("read stdin: %w", err)
		}
	}
	if len(texts) == 0 {
		return usageError{"no text given: freshen embed [--json] TEXT..."}
	}
	m, err := builtin.Default()
	if err != nil {
		return err
	}
	vecs, err := m.Embed(ctx, texts)
	if err != nil {
		return err
	}
	if *asJSON {
		type row struct {
			Text   string    `json:"text"`
			Tokens int       `json:"tokens"`
			Vector []float32 `json:"vector"`
		}
		rows := make([]row, len(texts))
		for i, t := range texts {
			rows[i] = row{t, m.CountTokens(t), vecs[i]}
		}
		enc := json.NewEncoder(e.stdout)
		return enc.Encode(rows)
	}
	w := bufio.NewWriter(e.stdout)
	for i, t := range texts {
		fmt.Fprintf(w, "%q (%d tokens, %s, %d-d):", t, m.CountTokens(t), builtin.ModelName, len(vecs[i]))
		for j, v := range vecs[i] {
			if j == 8 {
				fmt.Fprintf(w, " … (--json for all)")
				break
			}
			fmt.Fprintf(w, " %.5f", v)
		}
		fmt.Fprintln(w)
	}
	if len(texts) > 1 {
		fmt.Fprintln(w, "\ncosine similarity:")
		for i := range texts {
			for j := i + 1; j < len(texts); j++ {
				var s float32
				for d := range vecs[i] {
					s += vecs[i][d] * vecs[j][d]
				}
				fmt.Fprintf(w, "  %d~%d  %.4f\n", i, j, s)
			}
		}
	}
	return w.Flush()
}
