package extract

import (
	"encoding/csv"
	"errors"
	"io"
	"strings"

	"github.com/freshen-io/freshen"
)

// extractText cuts plain text into paragraphs at blank lines (lines of
// only white space). Line breaks inside a paragraph are kept.
func extractText(s string) []freshen.Block {
	var blocks []freshen.Block
	start := -1 // byte offset of the current paragraph, -1 between paragraphs
	off := 0
	for line := range strings.SplitAfterSeq(s, "\n") {
		blank := strings.TrimSpace(line) == ""
		switch {
		case blank && start >= 0:
			blocks = add(blocks, freshen.BlockParagraph, 0, s[start:off])
			start = -1
		case !blank && start < 0:
			start = off
		}
		off += len(line)
	}
	if start >= 0 {
		blocks = add(blocks, freshen.BlockParagraph, 0, s[start:])
	}
	return blocks
}

// extractCSV turns every record into a table row, fields joined with
// " | " like the rows of HTML and Markdown tables, so that a chunk of rows
// reads the same whatever format the table came in. The header is the first
// row, like any other. The delimiter is guessed from the first line. CSV
// that encoding/csv cannot read (even with lazy quotes) is indexed as
// plain text.
func extractCSV(s string, nt *notes) []freshen.Block {
	r := csv.NewReader(strings.NewReader(s))
	r.Comma = guessDelimiter(s)
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	r.ReuseRecord = true
	var blocks []freshen.Block
	var row strings.Builder
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return blocks
		}
		if err != nil {
			nt.add("csv: %v; indexed as plain text", err)
			return extractText(s)
		}
		row.Reset()
		for i, field := range rec {
			if i > 0 {
				row.WriteString(" | ")
			}
			row.WriteString(strings.Join(strings.Fields(field), " "))
		}
		blocks = add(blocks, freshen.BlockTableRow, 0, row.String())
	}
}

// guessDelimiter picks the most frequent of comma, semicolon and tab in the
// first line, outside quotes; comma on a tie.
func guessDelimiter(s string) rune {
	line, _, _ := strings.Cut(s, "\n")
	counts := map[rune]int{}
	quoted := false
	for _, c := range line {
		switch {
		case c == '"':
			quoted = !quoted
		case !quoted && (c == ',' || c == ';' || c == '\t'):
			counts[c]++
		}
	}
	best := ','
	for _, c := range []rune{';', '\t'} {
		if counts[c] > counts[best] {
			best = c
		}
	}
	return best
}
