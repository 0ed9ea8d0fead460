package extract

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-pdf/fpdf"

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

// fuzzBudget is how long one input may take in the fuzz tests of the
// binary formats: the PDF deadline is set far below it, so an input that
// takes longer escapes the deadline.
const fuzzBudget = 10 * time.Second

// fuzzExtractor is the extractor of the fuzz tests of the binary formats:
// inputs of at most 1 MiB, a short PDF deadline.
func fuzzExtractor() *Extractor {
	e := New(Config{MaxBytes: 1 << 20})
	e.pdfTimeout = 2 * time.Second
	return e
}

// fuzzOne extracts data as obj and checks the outcome: a clean Document,
// or one of the documented refusals, in bounded time.
func fuzzOne(t *testing.T, e *Extractor, data []byte, obj freshen.ObjectInfo) {
	start := time.Now()
	doc, err := e.Extract(context.Background(), bytes.NewReader(data), obj)
	if d := time.Since(start); d > fuzzBudget {
		t.Fatalf("extraction took %s", d)
	}
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
	for i, b := range doc.Blocks {
		if b.Page < 0 || (obj.Key == "a.docx") != (b.Page == 0) {
			t.Errorf("block %d: page %d", i, b.Page)
		}
	}
}

// FuzzPDF feeds PDFs: whole files (mode 0), or, wrapped in a valid file,
// the content stream of a page (mode 1) or the ToUnicode CMap of its font
// (mode 2), so that the fuzzer reaches the content interpreter and the
// CMap parser through compressed and cross-referenced structure.
//
//	go test -run='^$' -fuzz=FuzzPDF -fuzztime=30s ./extract/
func FuzzPDF(f *testing.F) {
	for _, seed := range [][]byte{
		reportPDF(f),
		makePDF(f, func(p *fpdf.Fpdf) {
			p.SetCompression(false)
			p.AddPage()
			p.SetFont("Times", "I", 14)
			p.MultiCell(300, 16, "Uncompressed text, so that mutations reach the content lexer.", "", "J", false)
		}),
		scannedPDF(f, 2, 1),
		makePDF(f, func(p *fpdf.Fpdf) {
			p.SetProtection(0, "", "")
			p.AddPage()
		}),
		objStmPDF(),
		rawPDF(onePage(helvetica, "BT /F1 12 Tf 72 700 Td (Hello) Tj [(w) -300 (orld)] TJ T* (x) ' ET"), "/Root 1 0 R"),
	} {
		f.Add(seed, uint8(0))
	}
	f.Add([]byte("BT /F1 12 Tf 72 700 Td <000100020009001000110012> Tj <00200021> Tj ET /X1 Do q 2 0 0 2 0 0 cm BI /W 1 ID x EI Q"), uint8(1))
	f.Add([]byte("BT /F2 9 Tf 1 0 0 1 72 700 Tm 12 TL (a) Tj T* (b) Tj 0 -40 Td [(c) -500 (d)] TJ ET"), uint8(1))
	f.Add([]byte(testCMap), uint8(2))
	e := fuzzExtractor()
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		switch mode % 3 {
		case 1:
			data = rawPDF(cmapPage(string(data), testCMap), "/Root 1 0 R")
		case 2:
			data = rawPDF(cmapPage("BT /F1 12 Tf 72 700 Td <0001000200100021FFFF> Tj ET", string(data)), "/Root 1 0 R")
		}
		fuzzOne(t, e, data, freshen.ObjectInfo{Key: "a.pdf"})
	})
}

// FuzzDOCX feeds Word documents: whole archives (asPart false), or the
// XML of word/document.xml wrapped in a valid package.
//
//	go test -run='^$' -fuzz=FuzzDOCX -fuzztime=30s ./extract/
func FuzzDOCX(f *testing.F) {
	f.Add(docx(f, wordBody, wordStyles, "Title"), false)
	f.Add(docx(f, wp(wstyle("Heading1"), wr("H")), "", ""), false)
	f.Add([]byte(`<w:document `+wordNS+`><w:body>`+wordBody+`</w:body></w:document>`), true)
	e := fuzzExtractor()
	f.Fuzz(func(t *testing.T, data []byte, asPart bool) {
		if asPart {
			data = storedZip(t, zipEntry{"_rels/.rels", packageRels("word/document.xml")}, zipEntry{"word/document.xml", string(data)},
				zipEntry{"word/_rels/document.xml.rels", `<Relationships ` + relsNS + `><Relationship Id="rId1" Type="` + relTypes + `styles" Target="styles.xml"/></Relationships>`},
				zipEntry{"word/styles.xml", wordStyles})
		}
		fuzzOne(t, e, data, freshen.ObjectInfo{Key: "a.docx"})
	})
}

// FuzzPPTX feeds presentations: whole archives (asPart false), or the XML
// of a slide wrapped in a valid package.
//
//	go test -run='^$' -fuzz=FuzzPPTX -fuzztime=30s ./extract/
func FuzzPPTX(f *testing.F) {
	f.Add(pptx(f, true), false)
	f.Add(pptx(f, false), false)
	f.Add([]byte(slideXML(psp("title", ar("T")), psp("", ar("a"), ar("b")+"<a:br/>"+ar("c")))), true)
	e := fuzzExtractor()
	f.Fuzz(func(t *testing.T, data []byte, asPart bool) {
		if asPart {
			data = storedZip(t,
				zipEntry{"ppt/presentation.xml", `<p:presentation ` + presNS + `><p:sldIdLst><p:sldId id="256" r:id="rId1"/></p:sldIdLst></p:presentation>`},
				zipEntry{"ppt/_rels/presentation.xml.rels", `<Relationships ` + relsNS + `><Relationship Id="rId1" Type="` + relTypes + `slide" Target="slides/slide1.xml"/></Relationships>`},
				zipEntry{"ppt/slides/slide1.xml", string(data)})
		}
		fuzzOne(t, e, data, freshen.ObjectInfo{Key: "a.pptx"})
	})
}
