package extract

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/freshen-io/freshen"
)

// fuzzObjects are the ways an object can be labelled; the fuzzer picks one
// per input so every parser sees every input.
var fuzzObjects = []freshen.ObjectInfo{
	{Key: "noext"},
	{Key: "a.txt"},
	{Key: "a.md"},
	{Key: "a.html"},
	{Key: "a.json"},
	{Key: "a.jsonl"},
	{Key: "a.csv"},
	{Key: "x", ContentType: "text/markdown"},
	{Key: "x", ContentType: "text/html; charset=utf-8"},
	{Key: "x", ContentType: "application/json"},
	{Key: "x", ContentType: "application/x-ndjson"},
	{Key: "x", ContentType: "text/plain"},
}

// FuzzExtract asserts that no input panics, that failures are the
// documented refusals, and that every Document is clean UTF-8.
//
//	go test -run='^$' -fuzz=FuzzExtract -fuzztime=20s ./extract/
func FuzzExtract(f *testing.F) {
	seeds := []string{
		"", "hello\n\nworld", mdKitchenSink, htmlPage,
		`[{"a":1,"b":[1,{"c":null}]},"x",3.0e10]`, "{\"a\":1}\n{bad\n[1]\n",
		"a,b\n\"c\nd\",e", "\xff\xfeh\x00i\x00", "\xef\xbb\xbf# T", "caf\xe9\x00",
		"\x89PNG\r\n\x1a\n\x00", "<div><p>a<li>b<pre>c", "> > > - - 1. x", "*a_*a_[](",
		"---\ntitle: x\n---\n# y", "<table><tr><td>a<td>b</table>", "[a]: b\n[c]: d\n",
	}
	for i, s := range seeds {
		f.Add([]byte(s), uint8(i))
	}
	// Nesting over the limits (maxDepth, the HTML parser's 512 open
	// elements), each labelled as the format it attacks; small, to keep
	// the seed corpus small.
	deep := []struct{ key, in string }{
		{"a.json", jsonArrays(100)},
		{"a.json", jsonObjects(100)},
		{"a.json", `[{"a":1},` + strings.Repeat("[", 100)},
		{"a.jsonl", "{\"a\":1}\n" + jsonObjects(100) + "\n"},
		{"a.md", strings.Repeat("> ", 100) + "x"},
		{"a.md", strings.Repeat("> - ", 40) + "x"},
		{"a.md", nestedList(100)},
		{"a.html", strings.Repeat("<div>", 600) + "x"},
		{"a.html", strings.Repeat("<b><div></b>", 600) + "x"},
		{"a.md", "<div>\n" + strings.Repeat("<div>", 600) + "x\n"},
	}
	for _, d := range deep {
		sel := slices.IndexFunc(fuzzObjects, func(o freshen.ObjectInfo) bool { return o.Key == d.key })
		f.Add([]byte(d.in), uint8(sel))
	}
	e := New(Config{MaxBytes: 1 << 20})
	f.Fuzz(func(t *testing.T, data []byte, sel uint8) {
		obj := fuzzObjects[int(sel)%len(fuzzObjects)]
		doc, err := e.Extract(context.Background(), bytes.NewReader(data), obj)
		if err != nil {
			if errors.Is(err, errInternal) {
				t.Fatalf("parser panicked: %v", err)
			}
			if !errors.Is(err, freshen.ErrUnsupported) && !errors.Is(err, freshen.ErrTooLarge) {
				t.Fatalf("unexpected error: %v", err)
			}
			return
		}
		checkDoc(t, doc)
	})
}
