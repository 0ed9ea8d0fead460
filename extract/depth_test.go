package extract

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/freshen-io/freshen"
)

// hostileDepth is how deep the hostile documents below nest: what a few
// hundred kilobytes of brackets or markers make.
const hostileDepth = 100_000

func jsonArrays(depth int) string { return strings.Repeat("[", depth) + strings.Repeat("]", depth) }
func jsonObjects(depth int) string {
	return strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth)
}

// nestedList is a Markdown list nested depth levels deep, one level per
// line.
func nestedList(depth int) string {
	var b strings.Builder
	for i := range depth {
		b.WriteString(strings.Repeat(" ", 2*i) + "- a\n")
	}
	return b.String()
}

// TestDeepNesting extracts documents nested far deeper than any person
// writes. Each must finish fast (a recursion per level would not, and
// encoding/json gives up at 10,000 levels) and either be refused with an
// error wrapping freshen.ErrUnsupported that names its depth and the
// limit, or extracted sanely. No timing is asserted (see STYLE.md); a
// regression shows as a test timeout.
func TestDeepNesting(t *testing.T) {
	e, bundle := setup(t)
	refused := []struct {
		name, key, in string
		errHas        string
	}{
		{"json arrays", "a.json", jsonArrays(hostileDepth),
			`parse json "a.json": unsupported content: arrays and objects nested 100000 levels deep, over the limit of 64`},
		{"json objects", "a.json", jsonObjects(hostileDepth), "nested 100000 levels deep, over the limit of 64"},
		{"json unclosed", "a.json", strings.Repeat("[", hostileDepth), "nested 100000 levels deep"},
		{"json sniffed", "noext", jsonArrays(hostileDepth), "nested 100000 levels deep"},
		{"one deep record among records", "a.json", `[{"a":1},` + jsonObjects(hostileDepth) + `,{"b":2}]`, "nested 100001 levels deep"},
		{"concatenated values", "a.json", "{\"a\":1}\n" + jsonArrays(hostileDepth), "nested 100000 levels deep"},
		{"json one level over", "a.json", jsonArrays(maxDepth + 1), "nested 65 levels deep, over the limit of 64"},
		{"jsonl line", "a.jsonl", "{\"a\":1}\n" + jsonArrays(hostileDepth) + "\n{\"b\":2}\n",
			`parse jsonl "a.jsonl": unsupported content: line 2: arrays and objects nested 100000 levels deep, over the limit of 64`},
		{"jsonl unclosed line", "a.jsonl", strings.Repeat(`{"a":`, hostileDepth) + "\n", "line 1: arrays and objects nested 100000 levels deep"},
		{"markdown quotes", "a.md", strings.Repeat(">", 10_000) + " deep",
			`parse markdown "a.md": unsupported content: quotes and list items nested 10000 levels deep, over the limit of 64`},
		{"markdown spaced quotes", "a.md", strings.Repeat("> ", 10_000) + "deep", "nested 10000 levels deep"},
		{"markdown list markers", "a.md", strings.Repeat("1. ", 10_000) + "deep", "nested 10000 levels deep"},
		{"markdown quoted lists", "a.md", strings.Repeat("> - ", 5_000) + "deep", "nested 10000 levels deep"},
		{"markdown indented list", "a.md", nestedList(1_000), "nested 1000 levels deep"},
		{"markdown one level over", "a.md", strings.Repeat("> ", maxDepth+1) + "deep", "nested 65 levels deep, over the limit of 64"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := e.Extract(bundle.ctx, strings.NewReader(tc.in), freshen.ObjectInfo{Key: tc.key})
			if !errors.Is(err, freshen.ErrUnsupported) || errors.Is(err, errInternal) || !strings.Contains(err.Error(), tc.errHas) {
				n := 0
				if doc != nil {
					n = len(doc.Blocks)
				}
				t.Fatalf("err = %v (and %d blocks); want %v containing %q", err, n, freshen.ErrUnsupported, tc.errHas)
			}
			if doc != nil {
				t.Errorf("Document with error")
			}
		})
	}

	notes := func(n ...string) []string { return n }
	parserRefused := "html: the parser refused the document (open stack of elements exceeds 512 nodes); extracted its text without structure"
	extracted := []struct {
		name, key, in string
		want          []freshen.Block
		wantNotes     []string
	}{
		{"json at the limit", "a.json", jsonObjects(maxDepth), []freshen.Block{rec(strings.Repeat("a.", 63) + "a: 1")}, nil},
		{"brackets in strings do not nest", "a.json", `{"a":"` + jsonArrays(hostileDepth) + `"}`,
			[]freshen.Block{rec("a: " + jsonArrays(hostileDepth))}, nil},
		{"escaped quotes in strings", "a.jsonl", `{"a":"\"[[["}` + "\n" + `["\\",[1]]`,
			[]freshen.Block{rec(`a: "[[[`), rec("[0]: \\\n[1]: 1")}, nil},
		{"markdown at the limit is text", "a.md", strings.Repeat("> ", maxDepth) + "deep",
			[]freshen.Block{para(strings.Repeat("> ", maxDepth) + "deep")},
			notes("markdown: blocks nested more than 16 deep; indexed as plain text")},
		// The HTML parser stops at 512 open elements; the tokenizer then
		// reads the text, without recursion.
		{"html divs", "a.html", strings.Repeat("<div>", hostileDepth) + "x", []freshen.Block{para("x")}, notes(parserRefused)},
		{"html closed divs", "a.html", strings.Repeat("<div>", hostileDepth) + "<h2>T</h2>x" + strings.Repeat("</div>", hostileDepth),
			[]freshen.Block{head(2, "T"), para("x")}, notes(parserRefused)},
		{"html inline elements", "a.html", strings.Repeat("<b><i>", hostileDepth) + "x", []freshen.Block{para("x")}, notes(parserRefused)},
		{"html quotes", "a.html", strings.Repeat("<blockquote>", hostileDepth) + "x", []freshen.Block{quote("x")}, notes(parserRefused)},
		{"html tables", "a.html", strings.Repeat("<table><tr><td>", hostileDepth) + "x", []freshen.Block{row("x")}, notes(parserRefused)},
		{"html misnested formatting", "a.html", strings.Repeat("<b><div></b>", hostileDepth) + "x", []freshen.Block{para("x")}, notes(parserRefused)},
		{"html block in markdown", "a.md", "<div>\n" + strings.Repeat("<div>", hostileDepth) + "x\n", []freshen.Block{para("x")}, notes(parserRefused)},
	}
	for _, tc := range extracted {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := e.Extract(bundle.ctx, strings.NewReader(tc.in), freshen.ObjectInfo{Key: tc.key})
			if err != nil {
				t.Fatalf("Extract: %v", err)
			}
			checkDoc(t, doc)
			if !slices.Equal(doc.Blocks, tc.want) {
				t.Errorf("blocks:\n got %.300s\nwant %.300s", dump(doc.Blocks), dump(tc.want))
			}
			if !slices.Equal(doc.Notes, tc.wantNotes) {
				t.Errorf("notes = %q, want %q", doc.Notes, tc.wantNotes)
			}
		})
	}
}

func TestJSONDepth(t *testing.T) {
	for in, want := range map[string]int{
		``: 0, `1`: 0, `[]`: 1, `[[],[[]]]`: 3, `{"a":[{}]}`: 3, `"[[["`: 0, `["\"[["]`: 1, `["\\",[1]]`: 2,
		`]]]][`: 1, `[[[`: 3, `"unterminated [[[`: 0, `{"a\\\"[":[1]}`: 2,
	} {
		if got := jsonDepth(in); got != want {
			t.Errorf("jsonDepth(%s) = %d, want %d", in, got, want)
		}
	}
	if got := jsonDepth(jsonArrays(hostileDepth)); got != hostileDepth {
		t.Errorf("jsonDepth of %d nested arrays = %d", hostileDepth, got)
	}
}

// ExampleExtractor_Extract_tooDeep shows the reason `freshen status`
// gives for a document nested too deep.
func ExampleExtractor_Extract_tooDeep() {
	_, err := New(Config{}).Extract(context.Background(), strings.NewReader(jsonArrays(hostileDepth)), freshen.ObjectInfo{Key: "deep.json"})
	fmt.Println(err)
	// Output: extract: parse json "deep.json": unsupported content: arrays and objects nested 100000 levels deep, over the limit of 64
}
