package extract

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/freshen-io/freshen"
)

type testBundle struct {
	ctx context.Context
}

func setup(t *testing.T) (*Extractor, *testBundle) {
	t.Helper()
	return New(Config{}), &testBundle{ctx: context.Background()}
}

// Shorthands for expected blocks.
func para(s string) freshen.Block  { return freshen.Block{Kind: freshen.BlockParagraph, Text: s} }
func item(s string) freshen.Block  { return freshen.Block{Kind: freshen.BlockListItem, Text: s} }
func code(s string) freshen.Block  { return freshen.Block{Kind: freshen.BlockCode, Text: s} }
func row(s string) freshen.Block   { return freshen.Block{Kind: freshen.BlockTableRow, Text: s} }
func quote(s string) freshen.Block { return freshen.Block{Kind: freshen.BlockQuote, Text: s} }
func rec(s string) freshen.Block   { return freshen.Block{Kind: freshen.BlockRecord, Text: s} }
func head(level int, s string) freshen.Block {
	return freshen.Block{Kind: freshen.BlockHeading, Level: level, Text: s}
}

type formatCase struct {
	name      string
	key       string
	ct        string
	in        string
	want      []freshen.Block
	wantTitle string
	wantNotes []string
}

func runFormatCases(t *testing.T, cases []formatCase) {
	t.Helper()
	e, bundle := setup(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := e.Extract(bundle.ctx, strings.NewReader(tc.in), freshen.ObjectInfo{Key: tc.key, ContentType: tc.ct})
			if err != nil {
				t.Fatalf("Extract: %v", err)
			}
			checkDoc(t, doc)
			if !slices.Equal(doc.Blocks, tc.want) {
				t.Errorf("blocks:\n got %s\nwant %s", dump(doc.Blocks), dump(tc.want))
			}
			if doc.Title != tc.wantTitle {
				t.Errorf("title = %q, want %q", doc.Title, tc.wantTitle)
			}
			if !slices.Equal(doc.Notes, tc.wantNotes) {
				t.Errorf("notes = %q, want %q", doc.Notes, tc.wantNotes)
			}
		})
	}
}

// checkDoc asserts what every Document must satisfy, whatever the input.
func checkDoc(t *testing.T, doc *freshen.Document) {
	t.Helper()
	if doc == nil {
		t.Fatal("nil Document without error")
	}
	if doc.Blocks == nil {
		t.Error("Blocks is nil, want an empty slice")
	}
	clean := func(what, s string) {
		if !utf8.ValidString(s) {
			t.Errorf("%s is not valid UTF-8: %q", what, s)
		}
		if strings.IndexFunc(s, isStrippedControl) >= 0 {
			t.Errorf("%s has control characters: %q", what, s)
		}
	}
	for i, b := range doc.Blocks {
		clean("block text", b.Text)
		if strings.TrimSpace(b.Text) == "" {
			t.Errorf("block %d is empty", i)
		}
		if b.Kind != freshen.BlockCode && b.Text != strings.TrimSpace(b.Text) {
			t.Errorf("block %d is not trimmed: %q", i, b.Text)
		}
		if (b.Kind == freshen.BlockHeading) != (b.Level >= 1 && b.Level <= 6) {
			t.Errorf("block %d: kind %s with level %d", i, b.Kind, b.Level)
		}
	}
	clean("title", doc.Title)
	for _, n := range doc.Notes {
		clean("note", n)
	}
}

func dump(blocks []freshen.Block) string {
	var b strings.Builder
	for _, bl := range blocks {
		b.WriteString("\n  ")
		b.WriteString(bl.Kind.String())
		if bl.Level > 0 {
			b.WriteByte(byte('0' + bl.Level))
		}
		b.WriteString(" ")
		b.WriteString(strings.ReplaceAll(bl.Text, "\n", `\n`))
	}
	return b.String()
}

func TestText(t *testing.T) {
	runFormatCases(t, []formatCase{
		{name: "paragraphs", key: "a.txt", in: "First  line\n\tsecond\tline  \n\n\n  Next para\n \t \nlast",
			want: []freshen.Block{para("First line\nsecond line"), para("Next para"), para("last")}},
		{name: "lone line", key: "a.txt", in: "just one line", want: []freshen.Block{para("just one line")}},
		{name: "crlf", key: "a.txt", in: "a\r\nb\r\n\r\nc\rd", want: []freshen.Block{para("a\nb"), para("c\nd")}},
		{name: "unicode spaces", key: "a.txt", in: "a\u00a0\u00a0b\u2003c", want: []freshen.Block{para("a b c")}},
		{name: "log by extension", key: "logs/app.LOG", in: "2024 start\n2024 stop\n", want: []freshen.Block{para("2024 start\n2024 stop")}},
	})
}

func TestCSV(t *testing.T) {
	runFormatCases(t, []formatCase{
		{name: "comma", key: "a.csv", in: "name,age\nAnn,31\n\"Smith, J\",\"multi\nline\"\n",
			want: []freshen.Block{row("name | age"), row("Ann | 31"), row("Smith, J | multi line")}},
		{name: "semicolon", ct: "text/csv; charset=utf-8", in: "a;b;c\n1;2;3", want: []freshen.Block{row("a | b | c"), row("1 | 2 | 3")}},
		{name: "ragged and lazy quotes", key: "a.csv", in: "a,b\n1\nx \"y\" z,2",
			want: []freshen.Block{row("a | b"), row("1"), row(`x "y" z | 2`)}},
	})
}

func TestMarkdown(t *testing.T) {
	runFormatCases(t, []formatCase{
		{name: "kitchen sink", key: "docs/a.md", in: mdKitchenSink, wantTitle: "My Doc", want: []freshen.Block{
			head(1, "Heading one"),
			para("Some bold text with code and a link and *escaped* & © stuff. Second line.\nHard break."),
			head(2, "Setext"),
			item("item one"),
			item("item two"),
			item("nested a"),
			item("nested b"),
			item("[x] done task"),
			item("[ ] open task"),
			item("first\ncontinued para"),
			code("x := 1"),
			item("second"),
			quote("quoted para more"),
			item("quoted item"),
			code("def f():\n    return  1"),
			code("indented code\n  more"),
			row("A | B"),
			row("1 | two b"),
			row("| x"),
			para("Html block text"),
			para("after image https://auto.link www.example.com"),
			para("Last strike para."),
		}},
		{name: "front matter without title", key: "a.md", in: "---\nauthor: x\n---\nbody",
			want: []freshen.Block{para("body")}},
		{name: "toml front matter", key: "a.md", in: "+++\ntitle = \"T\"\n+++\nbody",
			wantTitle: "T", want: []freshen.Block{para("body")}},
		{name: "unclosed front matter is a break", key: "a.md", in: "---\ntext\n\nmore",
			want: []freshen.Block{para("text"), para("more")}},
		{name: "loose list after code in item", key: "a.md", in: "- a\n\n  ```\n  c\n  ```\n\n  b\n",
			want: []freshen.Block{item("a"), code("c"), item("b")}},
		{name: "empty fence dropped", key: "a.md", in: "```\n\n```\n", want: []freshen.Block{}},
		{name: "sniffed", in: "# Title\n\ntext", want: []freshen.Block{head(1, "Title"), para("text")}},
		{name: "html block in a quote", key: "a.md", in: "> <div>\n> <p>a</p>\n> loose\n> </div>\n",
			want: []freshen.Block{quote("a"), quote("loose")}},
		{name: "too deep is plain text", key: "a.md", in: strings.Repeat("> ", 17) + "deep\n\n# h",
			want:      []freshen.Block{para(strings.Repeat("> ", 17) + "deep"), para("# h")},
			wantNotes: []string{"markdown: blocks nested more than 16 deep; indexed as plain text"}},
		{name: "deep enough is markdown", key: "a.md", in: strings.Repeat("> ", 8) + strings.Repeat("- ", 8) + "deep",
			want: []freshen.Block{item("deep")}},
		{name: "a long rule is not nesting", key: "a.md", in: "a\n\n" + strings.Repeat("* ", 20) + "\n\nb",
			want: []freshen.Block{para("a"), para("b")}},
		{name: "fenced code does not nest", key: "a.md", in: "```\n" + indentedList(2000) + "```\n",
			want: []freshen.Block{code(strings.TrimSuffix(indentedList(2000), "\n"))}},
		{name: "inline markup past the cap stays literal", key: "a.md", in: strings.Repeat("*a* ", 120),
			want: []freshen.Block{para(strings.Repeat("a ", 100) + strings.TrimSpace(strings.Repeat("*a* ", 20)))}},
		{name: "huge link reference paragraph", key: "a.md", in: strings.Repeat("[a]: b\n", 1001) + "\n[a]",
			want:      []freshen.Block{para(strings.TrimSpace(strings.Repeat("[a]: b\n", 1001))), para("[a]")},
			wantNotes: []string{"markdown: a paragraph of more than 1000 lines that starts like a link reference definition was indexed as raw text"}},
		{name: "link references resolve", key: "a.md", in: "[x][r]\n\n[r]: http://e.com\n", want: []freshen.Block{para("x")}},
	})
}

const mdKitchenSink = `---
title: "My Doc"
tags: [a, b]
---
# Heading *one*

Some **bold** text with ` + "`code`" + ` and a [link](http://x.com) and \*escaped\* &amp; &copy; stuff.
Second line.  
Hard break.

Setext
------

- item one
- item **two**
  - nested a
  - nested b
- [x] done task
- [ ] open task

1. first

   continued para

   ` + "```go" + `
   x := 1
   ` + "```" + `
2. second

> quoted para
> more
>
> - quoted item

` + "```python" + `
def f():
    return  1
` + "```" + `

    indented code
      more

| A | B |
|---|:-:|
| 1 | two **b** |
| | x |

<div class="note">
<p>Html <b>block</b> text</p>
</div>

<!-- a comment -->

![alt text](img.png) after image <https://auto.link> www.example.com

***
Last ~~strike~~ para.
`

func TestHTML(t *testing.T) {
	runFormatCases(t, []formatCase{
		{name: "page", key: "site/index.html", in: htmlPage, wantTitle: "The Title & more", want: []freshen.Block{
			para("Home | About"),
			head(1, "Main heading"),
			para("First para graph with entity é.\nAfter break."),
			para("Loose div text inline"),
			para("inner p"),
			para("tail text"),
			item("one"),
			item("two"),
			item("two.a"),
			item("two tail"),
			item("para in li"),
			code("  code\n    indented <tag>"),
			quote("Quoted"),
			quote("loose quote"),
			row("H1 | H2"),
			row("a b | c"),
			para("unclosed para"),
			para("second unclosed"),
			head(2, "Sub"),
			para("text at body end"),
		}},
		{name: "fragment without html element", ct: "text/html", in: "<h3>x</h3>y<table><td>1<td>2</table>",
			want: []freshen.Block{head(3, "x"), para("y"), row("1 | 2")}},
		{name: "unclosed tags", ct: "text/html", in: "<div><p>a<b>bold<i>it<li>li<pre>pre\ncode",
			want: []freshen.Block{para("aboldit"), item("li"), code("pre\ncode")}},
		{name: "xhtml type", ct: "application/xhtml+xml", in: `<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><head><title>X</title></head><body><p>b</p></body></html>`,
			wantTitle: "X", want: []freshen.Block{para("b")}},
		{name: "only head", key: "a.htm", in: "<html><head><title>t</title><script>x()</script></head></html>",
			wantTitle: "t", want: []freshen.Block{}},
		{name: "deeply nested", key: "deep.html", in: strings.Repeat("<div>", 600) + "<h1>Deep</h1><p>text</p><li>x<pre>a\n b</pre>" + strings.Repeat("</div>", 600),
			want:      []freshen.Block{head(1, "Deep"), para("text"), item("x"), code("a\n b")},
			wantNotes: []string{"html: the parser refused the document (open stack of elements exceeds 512 nodes); extracted its text without structure"}},
		{name: "nested within limit", key: "deep.html", in: strings.Repeat("<div>", 500) + "<p>ok</p>" + strings.Repeat("</div>", 500),
			want: []freshen.Block{para("ok")}},
	})
}

const htmlPage = `<!DOCTYPE html>
<html><head><title>  The   Title &amp; more </title>
<style>body{color:red}</style><script>var x = "<p>no</p>";</script>
<meta name="x" content="y"></head>
<body>
<nav><a href="/">Home</a> | <a href="/about">About</a></nav>
<h1>Main   heading</h1>
<p>First <b>para</b>
graph with &nbsp; entity &eacute;.<br>After break.</p>
<div>Loose div text <span>inline</span><p>inner p</p>tail text</div>
<ul><li>one</li><li>two<ul><li>two.a</li></ul>two tail</li><li><p>para in li</p></li></ul>
<pre>  code
    indented &lt;tag&gt;
</pre>
<blockquote><p>Quoted</p>loose quote</blockquote>
<table><tr><th>H1</th><th>H2</th></tr><tr><td>a <p>b</p></td><td>c</td></tr></table>
<p hidden>hidden para</p><div style="display: none">none</div><span aria-hidden="true">aria</span>
<noscript>enable js</noscript><template><p>tmpl</p></template>
<svg><title>svg title</title><text>svg text</text></svg>
<p>unclosed para
<p>second unclosed
<h2>Sub</h2>
text at body end
<img src=x alt="alt">
`

func TestJSON(t *testing.T) {
	runFormatCases(t, []formatCase{
		{name: "array of records", key: "a.json", in: `[{"name":"Ann","age":31,"big":12345678901234567890,"f":1.50e3,` +
			`"tags":["a","b"],"addr":{"zip":null,"city":"Lyon"},"orders":[{"id":1},{"id":2}],"e":{},"ea":[],"s":"x\ny <b>&"},` +
			`"scalar", 42, null, [], {}, [1,true]]`,
			want: []freshen.Block{
				rec("addr.city: Lyon\naddr.zip: null\nage: 31\nbig: 12345678901234567890\ne: {}\nea: []\nf: 1.50e3\nname: Ann\n" +
					"orders[0].id: 1\norders[1].id: 2\ns: x\ny <b>&\ntags: a, b"),
				rec("scalar"), rec("42"), rec("1, true"),
			}},
		{name: "object is one record", ct: "application/json", in: "{\"b\": {\"c d\\n e\": 1}, \"a\": [[1], {\"x\": \"y\"}]}",
			want: []freshen.Block{rec("a[0]: 1\na[1].x: y\nb.c d e: 1")}},
		{name: "key order does not matter", ct: "application/json", in: `{"z":1,"a":2}`, want: []freshen.Block{rec("a: 2\nz: 1")}},
		{name: "ld+json", ct: "application/ld+json", in: `{"@type":"Person"}`, want: []freshen.Block{rec("@type: Person")}},
		{name: "concatenated values", key: "a.json", in: "{\"a\":1}\n{\"b\":2}", want: []freshen.Block{rec("a: 1"), rec("b: 2")}},
		{name: "array then value", key: "a.json", in: `[1] {"b":2}`, want: []freshen.Block{rec("1"), rec("b: 2")}},
		{name: "top-level scalar", key: "a.json", in: `"hello"`, want: []freshen.Block{rec("hello")}},
		{name: "sniffed", in: `  [{"a":1}]`, want: []freshen.Block{rec("a: 1")}},
		{name: "malformed falls back to text", key: "a.json", in: "{\"a\": 1,\n\n\"b\": }",
			want:      []freshen.Block{para(`{"a": 1,`), para(`"b": }`)},
			wantNotes: []string{"json: malformed at byte 16: invalid character '}' looking for beginning of value; indexed as plain text"}},
		{name: "truncated array", key: "a.json", in: `[{"a":1},`,
			want:      []freshen.Block{para(`[{"a":1},`)},
			wantNotes: []string{"json: malformed at byte 9: unexpected EOF; indexed as plain text"}},
		{name: "long paths keep their tail", key: "a.json", in: strings.Repeat(`{"kk":`, 64) + "1" + strings.Repeat("}", 64),
			want: []freshen.Block{rec("…" + strings.Repeat("kk.", 42) + "kk: 1")}},
	})
}

func TestJSONL(t *testing.T) {
	runFormatCases(t, []formatCase{
		{name: "records", key: "a.jsonl", in: "{\"a\":1}\n\n  {\"b\":[1,2]}  \r\n[3]\nnull\n",
			want: []freshen.Block{rec("a: 1"), rec("b: 1, 2"), rec("3")}},
		{name: "one bad line", ct: "application/x-ndjson", in: "{\"a\":1}\n{\"b\":\n{\"c\":2} trailing\n{\"d\":4}",
			want: []freshen.Block{rec("a: 1"), rec("d: 4")},
			wantNotes: []string{
				"jsonl: line 2: malformed: unexpected EOF; skipped",
				"jsonl: line 3: malformed: data after the value; skipped",
			}},
		{name: "many bad lines are counted", key: "a.ndjson", in: "{}\n" + strings.Repeat("x\n", 8),
			want: []freshen.Block{},
			wantNotes: []string{
				"jsonl: line 2: malformed: invalid character 'x' looking for beginning of value; skipped",
				"jsonl: line 3: malformed: invalid character 'x' looking for beginning of value; skipped",
				"jsonl: line 4: malformed: invalid character 'x' looking for beginning of value; skipped",
				"jsonl: line 5: malformed: invalid character 'x' looking for beginning of value; skipped",
				"jsonl: line 6: malformed: invalid character 'x' looking for beginning of value; skipped",
				"jsonl: 8 malformed lines skipped in all",
			}},
		{name: "nothing parses", key: "a.jsonl", in: "not json\nat all",
			want:      []freshen.Block{para("not json\nat all")},
			wantNotes: []string{"jsonl: line 1: malformed: invalid character 'o' in literal null (expecting 'u'); skipped", "jsonl: line 2: malformed: invalid character 'a' looking for beginning of value; skipped", "jsonl: no line parses as JSON; indexed as plain text"}},
		{name: "sniffed", in: "{\"a\":1}\n{\"b\":2}\n", want: []freshen.Block{rec("a: 1"), rec("b: 2")}},
	})
}

func TestRecordBudget(t *testing.T) {
	// Many deep leaves: flattening would repeat a long path per leaf.
	var lb strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&lb, `"x%d":1,`, i)
	}
	leaves := lb.String() + `"y":1`
	in := "[" + strings.Repeat(`{"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkk":`, 40) + "{" + leaves + "}" + strings.Repeat("}", 40) + "]"
	e, bundle := setup(t)
	doc, err := e.Extract(bundle.ctx, strings.NewReader(in), freshen.ObjectInfo{Key: "a.json"})
	if err != nil {
		t.Fatal(err)
	}
	checkDoc(t, doc)
	if len(doc.Blocks) != 1 || !strings.HasPrefix(doc.Blocks[0].Text, `{"k`) {
		t.Fatalf("want one compact JSON record, got %d blocks starting %.40q", len(doc.Blocks), doc.Blocks[0].Text)
	}
	if len(doc.Blocks[0].Text) > 2*len(in) {
		t.Errorf("record is %d bytes for %d bytes of input", len(doc.Blocks[0].Text), len(in))
	}
	if !slices.Equal(doc.Notes, []string{"json: too many long key paths to flatten; records rendered as compact JSON"}) {
		t.Errorf("notes = %q", doc.Notes)
	}
}

func TestBadInput(t *testing.T) {
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01")
	tests := []struct {
		name      string
		key, ct   string
		in        []byte
		want      []freshen.Block // when no error
		wantNotes []string
		wantErr   error  // sentinel the error must wrap
		errHas    string // text the error must contain
	}{
		{name: "invalid UTF-8 repaired", key: "a.txt", in: []byte("caf\xe9 ok\xff\xfe!"),
			want: []freshen.Block{para("caf\uFFFD ok\uFFFD!")}, wantNotes: []string{"repaired invalid UTF-8"}},
		{name: "invalid UTF-8 in json", key: "a.json", in: []byte("{\"a\":\"x\xc3\"}"),
			want: []freshen.Block{rec("a: x\uFFFD")}, wantNotes: []string{"repaired invalid UTF-8"}},
		{name: "UTF-8 BOM stripped", key: "a.json", in: []byte("\xEF\xBB\xBF{\"a\":1}"), want: []freshen.Block{rec("a: 1")}},
		{name: "UTF-8 BOM sniffed html", in: []byte("\xEF\xBB\xBF<!doctype html><p>x"), want: []freshen.Block{para("x")}},
		{name: "UTF-16LE", in: utf16le("\ufeff# Titlé\n\nbody"),
			want: []freshen.Block{head(1, "Titlé"), para("body")}, wantNotes: []string{"decoded UTF-16LE text"}},
		{name: "UTF-16BE", key: "a.txt", in: utf16be("\ufeffhi 😀"),
			want: []freshen.Block{para("hi 😀")}, wantNotes: []string{"decoded UTF-16BE text"}},
		{name: "UTF-16 unpaired surrogate", key: "a.txt", in: []byte{0xFF, 0xFE, 'a', 0, 0x00, 0xD8, 'b', 0, 'c'},
			want: []freshen.Block{para("a\uFFFDb")}, wantNotes: []string{"decoded UTF-16LE text"}},
		{name: "control characters removed", key: "a.txt", in: []byte("a\x01b\x1b[0m\x7f c\fd\ve"),
			want: []freshen.Block{para("ab[0m c d e")}, wantNotes: []string{"removed control characters"}},
		{name: "NUL after the sniff window", key: "a.txt", in: []byte(strings.Repeat("x", 9000) + "\x00y"),
			want: []freshen.Block{para(strings.Repeat("x", 9000) + "y")}, wantNotes: []string{"removed control characters"}},
		{name: "escaped NUL in json", key: "a.json", in: []byte(`{"a":"x\u0000y"}`),
			want: []freshen.Block{rec("a: xy")}, wantNotes: []string{"removed control characters"}},
		{name: "NUL bytes", key: "a.txt", in: []byte("text\x00\x00more"),
			wantErr: freshen.ErrUnsupported, errHas: "NUL byte at offset 4"},
		{name: "NUL bytes undeclared", in: []byte("text\x00\x00more"),
			wantErr: freshen.ErrUnsupported, errHas: "NUL byte"},
		{name: "PNG header", in: png, wantErr: freshen.ErrUnsupported, errHas: "image/png"},
		{name: "PNG declared as text", ct: "text/plain", key: "a.txt", in: png, wantErr: freshen.ErrUnsupported, errHas: "image/png"},
		{name: "PNG type", ct: "image/png", key: "a.png", in: png, wantErr: freshen.ErrUnsupported, errHas: "content type image/png"},
		{name: "truncated PDF", ct: "application/octet-stream", in: []byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj"),
			wantErr: freshen.ErrUnsupported, errHas: `parse pdf "": unsupported content: malformed PDF: truncated`},
		{name: "zip", in: []byte("PK\x03\x04\x14\x00\x00\x00"), wantErr: freshen.ErrUnsupported, errHas: "application/zip"},
		{name: "gzip", key: "a.json.gz", in: []byte("\x1f\x8b\x08\x00\x00\x00\x00\x00"), wantErr: freshen.ErrUnsupported, errHas: "gzip"},
		{name: "unknown type", ct: "application/vnd.ms-excel", key: "a.xls", in: []byte("a,b"),
			wantErr: freshen.ErrUnsupported, errHas: "application/vnd.ms-excel"},
		{name: "control bytes undeclared", in: []byte("ab\x01\x02\x03cd"),
			wantErr: freshen.ErrUnsupported, errHas: "control bytes"},
		{name: "empty", key: "a.json", in: nil, want: []freshen.Block{}},
		{name: "empty undeclared", in: nil, want: []freshen.Block{}},
		{name: "blank", ct: "text/html", in: []byte(" \n\t\r\n"), want: []freshen.Block{}},
		{name: "only a BOM", key: "a.md", in: []byte("\xEF\xBB\xBF"), want: []freshen.Block{}},
		{name: "only tags", key: "a.html", in: []byte("<div><span></span></div>"), want: []freshen.Block{}},
		{name: "garbage html", key: "a.html", in: []byte("<<<>>></x <a <!-- <![CDATA[ &#xFFFFFFFF; &bogus; </p></p>"),
			want: []freshen.Block{para("<<<>>>")}},
		{name: "garbage markdown", key: "a.md", in: []byte("[[[[**__``~~|---|\n> > > >\n- - - -\n***___***"),
			want: []freshen.Block{para("[[[[**__``~~|---|"), para("___")}},
	}
	e, bundle := setup(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := e.Extract(bundle.ctx, bytes.NewReader(tc.in), freshen.ObjectInfo{Key: tc.key, ContentType: tc.ct})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("err = %v, want %v containing %q", err, tc.wantErr, tc.errHas)
				}
				if doc != nil {
					t.Errorf("Document %+v with error", doc)
				}
				return
			}
			if err != nil {
				t.Fatalf("Extract: %v", err)
			}
			checkDoc(t, doc)
			if !slices.Equal(doc.Blocks, tc.want) {
				t.Errorf("blocks:\n got %s\nwant %s", dump(doc.Blocks), dump(tc.want))
			}
			if !slices.Equal(doc.Notes, tc.wantNotes) {
				t.Errorf("notes = %q, want %q", doc.Notes, tc.wantNotes)
			}
		})
	}
}

func utf16le(s string) []byte {
	var b []byte
	for _, r := range s {
		if r > 0xFFFF {
			r -= 0x10000
			hi, lo := 0xD800+(r>>10), 0xDC00+(r&0x3FF)
			b = append(b, byte(hi), byte(hi>>8), byte(lo), byte(lo>>8))
			continue
		}
		b = append(b, byte(r), byte(r>>8))
	}
	return b
}

func utf16be(s string) []byte {
	b := utf16le(s)
	for i := 0; i+1 < len(b); i += 2 {
		b[i], b[i+1] = b[i+1], b[i]
	}
	return b
}

func TestTooLarge(t *testing.T) {
	e := New(Config{MaxBytes: 10})
	ctx := context.Background()

	// Declared size over the limit: refused before reading.
	r := &countingReader{r: strings.NewReader("small")}
	_, err := e.Extract(ctx, r, freshen.ObjectInfo{Key: "a.txt", Size: 11})
	if !errors.Is(err, freshen.ErrTooLarge) {
		t.Fatalf("declared size: err = %v, want ErrTooLarge", err)
	}
	if r.n != 0 {
		t.Errorf("read %d bytes of an object declared too large", r.n)
	}

	// Size unknown or wrong: refused after reading at most MaxBytes+1.
	r = &countingReader{r: strings.NewReader(strings.Repeat("x", 1000))}
	_, err = e.Extract(ctx, r, freshen.ObjectInfo{Key: "a.txt", Size: 3})
	if !errors.Is(err, freshen.ErrTooLarge) {
		t.Fatalf("actual size: err = %v, want ErrTooLarge", err)
	}
	if r.n > 11 {
		t.Errorf("read %d bytes, want at most MaxBytes+1 = 11", r.n)
	}

	// Exactly at the limit is fine.
	doc, err := e.Extract(ctx, strings.NewReader("0123456789"), freshen.ObjectInfo{Key: "a.txt"})
	if err != nil || !slices.Equal(doc.Blocks, []freshen.Block{para("0123456789")}) {
		t.Fatalf("at the limit: %v, %+v", err, doc)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestReadErrorAndContext(t *testing.T) {
	e, bundle := setup(t)
	boom := errors.New("boom")
	_, err := e.Extract(bundle.ctx, io.MultiReader(strings.NewReader("abc"), errReader{boom}), freshen.ObjectInfo{Key: "a.txt"})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), `extract: read "a.txt"`) {
		t.Errorf("read error: got %v", err)
	}

	ctx, cancel := context.WithCancel(bundle.ctx)
	cancel()
	_, err = e.Extract(ctx, strings.NewReader("abc"), freshen.ObjectInfo{Key: "a.txt"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: got %v", err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestConfig(t *testing.T) {
	tests := []struct {
		cfg     Config
		wantErr bool
		wantMax int64
	}{
		{Config{}, false, DefaultMaxBytes},
		{Config{MaxBytes: 1}, false, 1},
		{Config{MaxBytes: -1}, true, DefaultMaxBytes},
		{Config{MaxBytes: 2 << 30}, true, 1 << 30},
	}
	for _, tc := range tests {
		if err := tc.cfg.Validate(); (err != nil) != tc.wantErr {
			t.Errorf("%+v.Validate() = %v, want error %v", tc.cfg, err, tc.wantErr)
		}
		if got := New(tc.cfg).maxBytes; got != tc.wantMax {
			t.Errorf("New(%+v).maxBytes = %d, want %d", tc.cfg, got, tc.wantMax)
		}
	}
}

// TestLargeDocuments extracts about 1 MB of each format. It asserts no
// timing (see STYLE.md); a quadratic regression shows as a test timeout.
// Documents nested too deep to be indexed are in TestDeepNesting.
func TestLargeDocuments(t *testing.T) {
	const size = 1 << 20
	repeat := func(unit string) string { return strings.Repeat(unit, size/len(unit)+1) }
	tests := []struct {
		key, in string
	}{
		{"big.txt", repeat("Lorem ipsum dolor sit amet, consectetur.\n\n")},
		{"big.txt", repeat("one long paragraph without blank lines ")},
		{"big.md", repeat("## Section\n\nSome *text* with [links](x).\n\n- item\n  - nested\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n")},
		{"big.md", repeat("*a **b _c `d")},
		{"big.md", repeat("[") + repeat("](")},
		{"big.md", repeat("- ")},
		// Inputs that cost goldmark quadratic time or worse without the
		// guards in newMarkdown and markdownDepth.
		{"big.md", repeat("*a_")},
		{"big.md", repeat("[](")},
		{"big.md", repeat("[a]: b\n")},
		{"big.md", repeat(strings.Repeat("1. ", 15) + "x\n")},
		{"big.html", repeat("<div><h2>T</h2><p>Para <b>bold</b> &amp; text.</p><ul><li>x</li></ul></div>\n")},
		{"big.html", repeat("<div>") + "x"},
		{"big.html", repeat("<table><tr><td>")},
		{"big.json", "[" + repeat(`{"a":{"b":[1,2,{"c":"d"}]},"e":"f"},`) + "1]"},
		{"big.jsonl", repeat("{\"a\":1,\"b\":[\"x\",\"y\"]}\n")},
		{"big.csv", repeat("a,b,\"c\"\n")},
	}
	e, bundle := setup(t)
	for _, tc := range tests {
		doc, err := e.Extract(bundle.ctx, strings.NewReader(tc.in), freshen.ObjectInfo{Key: tc.key})
		if err != nil {
			t.Errorf("%s %.20q: %v", tc.key, tc.in, err)
			continue
		}
		checkDoc(t, doc)
	}
}

// indentedList is a list nested one level deeper on every line.
func indentedList(size int) string {
	var b strings.Builder
	for i := 0; b.Len() < size; i++ {
		b.WriteString(strings.Repeat(" ", 2*i) + "- a\n")
	}
	return b.String()
}

func TestConcurrentUse(t *testing.T) {
	e, bundle := setup(t)
	inputs := map[string]string{"a.md": mdKitchenSink, "a.html": htmlPage, "a.json": `[{"a":1},{"b":2}]`,
		"a.pdf": string(reportPDF(t)), "a.docx": string(docx(t, wordBody, wordStyles, "T")), "a.pptx": string(pptx(t, true))}
	var wg sync.WaitGroup
	for range 8 {
		for key, in := range inputs {
			wg.Go(func() {
				if _, err := e.Extract(bundle.ctx, strings.NewReader(in), freshen.ObjectInfo{Key: key}); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
}

func TestDeterministic(t *testing.T) {
	e, bundle := setup(t)
	for key, in := range map[string]string{"a.md": mdKitchenSink, "a.html": htmlPage, "a.json": `{"b":1,"a":{"d":2,"c":3}}`} {
		first, err := e.Extract(bundle.ctx, strings.NewReader(in), freshen.ObjectInfo{Key: key})
		if err != nil {
			t.Fatal(err)
		}
		for range 5 {
			again, err := e.Extract(bundle.ctx, strings.NewReader(in), freshen.ObjectInfo{Key: key})
			if err != nil || !slices.Equal(again.Blocks, first.Blocks) {
				t.Fatalf("%s: extraction differs between runs", key)
			}
		}
	}
}
