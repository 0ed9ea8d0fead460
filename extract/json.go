package extract

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/freshen-io/freshen"
)

// JSON records are rendered as "path: value" lines, one per leaf, keys
// sorted, for example
//
//	address.city: Lyon
//	name: Ann
//	orders[0].id: 17
//	tags: new, vip
//
// rather than as compact JSON, because:
//   - it embeds better: no quotes, braces or escape sequences (\n, \u00e9)
//     cost tokens or split words, and each value sits next to the names
//     that give it meaning, even deep in the tree;
//   - it is deterministic for the data, not its spelling: sorted keys and
//     verbatim numbers (json.Number) mean a producer that reorders keys or
//     re-indents a file changes no block, so nothing is re-embedded;
//   - it still reads well as a search hit's text.
//
// Paths join keys with "." and index arrays with [i]; an array of scalars
// is one line of comma-separated values; empty objects and arrays show as
// {} and []; null is null. A path longer than maxPathLen keeps its tail.
// Flattening repeats the path on every line, so a pathological document
// (thousands of deep leaves) could grow many times over; past a budget
// proportional to the input, records are rendered as compact JSON with
// sorted keys instead, and a note says so.
//
// A document (or a JSON Lines line) nested more than maxDepth levels deep,
// counting the top-level array, is refused whole, whether or not it parses:
// it is checked before decoding, in one pass without recursion.

// maxPathLen bounds the key path shown before a value.
const maxPathLen = 128

// extractJSON returns one record per element of a top-level array, or one
// record for any other top-level value. A stream of several top-level
// values (concatenated JSON) yields each in turn. JSON that does not parse
// is indexed as plain text, with a note. It fails with an error wrapping
// freshen.ErrUnsupported if s nests deeper than maxDepth.
func extractJSON(s string, nt *notes) ([]freshen.Block, error) {
	if d := jsonDepth(s); d > maxDepth {
		return nil, tooDeep("arrays and objects", d)
	}
	rr := newRecordRenderer(len(s), nt)
	var blocks []freshen.Block
	record := func(v any) {
		blocks = add(blocks, freshen.BlockRecord, 0, rr.render(v))
	}
	malformed := func(dec *json.Decoder, err error) ([]freshen.Block, error) {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		off := dec.InputOffset()
		if se := (*json.SyntaxError)(nil); errors.As(err, &se) {
			off = se.Offset
		}
		nt.add("json: malformed at byte %d: %v; indexed as plain text", off, err)
		return extractText(s), nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if strings.HasPrefix(strings.TrimLeft(s, " \t\n"), "[") {
		// Stream the elements of a top-level array rather than decode it
		// whole: one element at a time is all the memory it needs.
		if _, err := dec.Token(); err != nil {
			return malformed(dec, err)
		}
		for dec.More() {
			var v any
			if err := dec.Decode(&v); err != nil {
				return malformed(dec, err)
			}
			record(v)
		}
		if _, err := dec.Token(); err != nil {
			return malformed(dec, err)
		}
	}
	for {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return blocks, nil
		}
		if err != nil {
			return malformed(dec, err)
		}
		record(v)
	}
}

// maxLineNotes is how many bad JSONL lines are named one by one.
const maxLineNotes = 5

// extractJSONL returns one record per non-empty line. A line that is not
// exactly one JSON value is skipped with a note; if no line parses at all,
// the object is indexed as plain text instead. A line nested deeper than
// maxDepth fails the whole object, as it would a JSON array of records,
// with an error wrapping freshen.ErrUnsupported.
func extractJSONL(s string, nt *notes) ([]freshen.Block, error) {
	rr := newRecordRenderer(len(s), nt)
	var blocks []freshen.Block
	good, bad := 0, 0
	n := 0
	for line := range strings.SplitSeq(s, "\n") {
		n++
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if d := jsonDepth(line); d > maxDepth {
			return nil, tooDeep(fmt.Sprintf("line %d: arrays and objects", n), d)
		}
		v, err := decodeLine(line)
		if err != nil {
			if bad < maxLineNotes {
				nt.add("jsonl: line %d: malformed: %v; skipped", n, err)
			}
			bad++
			continue
		}
		good++
		blocks = add(blocks, freshen.BlockRecord, 0, rr.render(v))
	}
	if good == 0 && bad > 0 {
		nt.add("jsonl: no line parses as JSON; indexed as plain text")
		return extractText(s), nil
	}
	if bad > maxLineNotes {
		nt.add("jsonl: %d malformed lines skipped in all", bad)
	}
	return blocks, nil
}

// jsonDepth returns how deep arrays and objects nest in s, brackets inside
// strings aside. It does not validate, so that malformed JSON (which would
// otherwise be indexed as text) is measured too; an unterminated string
// hides the rest of s.
func jsonDepth(s string) int {
	depth, most := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' {
					i++
				}
			}
		case '[', '{':
			depth++
			most = max(most, depth)
		case ']', '}':
			depth = max(depth-1, 0)
		}
	}
	return most
}

// tooDeep is the refusal of structure (what) nested depth levels deep.
func tooDeep(what string, depth int) error {
	return fmt.Errorf("%w: %s nested %d levels deep, over the limit of %d", freshen.ErrUnsupported, what, depth, maxDepth)
}

func decodeLine(line string) (any, error) {
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if strings.TrimSpace(line[dec.InputOffset():]) != "" {
		return nil, errors.New("data after the value")
	}
	return v, nil
}

type recordRenderer struct {
	budget  int // bytes of flattened text left before switching to compact JSON
	compact bool
	nt      *notes
}

func newRecordRenderer(inputLen int, nt *notes) *recordRenderer {
	return &recordRenderer{budget: 4*inputLen + 1<<20, nt: nt}
}

// render returns the text of one record; null and an empty top-level
// object or array render as "" and are dropped.
func (r *recordRenderer) render(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case map[string]any:
		if len(v) == 0 {
			return ""
		}
	case []any:
		if len(v) == 0 {
			return ""
		}
	}
	if !r.compact {
		var b strings.Builder
		if flatten(&b, "", v, r.budget) {
			r.budget -= b.Len()
			return b.String()
		}
		r.compact = true
		r.nt.add("json: too many long key paths to flatten; records rendered as compact JSON")
	}
	return compactJSON(v)
}

// flatten writes the "path: value" lines of v to b; it gives up and
// returns false once b holds more than limit bytes.
func flatten(b *strings.Builder, path string, v any, limit int) bool {
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 0 {
			return writeLeaf(b, path, "{}", limit)
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if !flatten(b, joinPath(path, "."+cleanKey(k)), v[k], limit) {
				return false
			}
		}
		return true
	case []any:
		if len(v) == 0 {
			return writeLeaf(b, path, "[]", limit)
		}
		if !slices.ContainsFunc(v, isComposite) {
			vals := make([]string, len(v))
			for i, e := range v {
				vals[i] = scalarText(e)
			}
			return writeLeaf(b, path, strings.Join(vals, ", "), limit)
		}
		for i, e := range v {
			if !flatten(b, joinPath(path, "["+strconv.Itoa(i)+"]"), e, limit) {
				return false
			}
		}
		return true
	}
	return writeLeaf(b, path, scalarText(v), limit)
}

func writeLeaf(b *strings.Builder, path, value string, limit int) bool {
	if b.Len() > 0 {
		b.WriteByte('\n')
	}
	if path != "" {
		b.WriteString(path)
		b.WriteString(": ")
	}
	b.WriteString(value)
	return b.Len() <= limit
}

func isComposite(v any) bool {
	switch v.(type) {
	case map[string]any, []any:
		return true
	}
	return false
}

func scalarText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return string(v)
	case bool:
		if v {
			return "true"
		}
		return "false"
	case nil:
		return "null"
	}
	return compactJSON(v) // not reached for decoder output
}

// joinPath appends elem (".key" or "[i]") to path, keeping at most
// maxPathLen bytes of its tail.
func joinPath(path, elem string) string {
	if path == "" {
		elem = strings.TrimPrefix(elem, ".")
	}
	p := path + elem
	if len(p) <= maxPathLen {
		return p
	}
	cut := len(p) - maxPathLen
	for cut < len(p) && !utf8.RuneStart(p[cut]) {
		cut++
	}
	return "…" + strings.TrimLeft(p[cut:], ".")
}

// cleanKey puts a key on one line, so a record stays one leaf per line.
func cleanKey(k string) string {
	if strings.ContainsAny(k, "\n\t\r") || strings.Contains(k, "  ") {
		return strings.Join(strings.Fields(k), " ")
	}
	return k
}

// compactJSON marshals v without HTML escaping; encoding/json sorts map
// keys and writes json.Number verbatim.
func compactJSON(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return ""
	}
	return strings.TrimSuffix(buf.String(), "\n")
}
