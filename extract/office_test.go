package extract

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/freshen-io/freshen"
)

// zipEntry is a file of a test archive.
type zipEntry struct{ name, body string }

// makeZip returns a zip archive of entries, in order, compressed.
func makeZip(t testing.TB, entries ...zipEntry) []byte {
	return writeZip(t, zip.Deflate, entries)
}

// storedZip returns a zip archive of entries, in order, uncompressed: the
// fuzz tests build one per input.
func storedZip(t testing.TB, entries ...zipEntry) []byte {
	return writeZip(t, zip.Store, entries)
}

func writeZip(t testing.TB, method uint16, entries []zipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	w.RegisterCompressor(zip.Deflate, func(out io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(out, flate.BestCompression) // the fastest on long runs
	})
	for _, e := range entries {
		method := method
		if e.body == "" {
			method = zip.Store
		}
		f, err := w.CreateHeader(&zip.FileHeader{Name: e.name, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(f, e.body)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

const (
	xmlDecl  = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` + "\n"
	wordNS   = `xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"`
	relsNS   = `xmlns="http://schemas.openxmlformats.org/package/2006/relationships"`
	relTypes = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
	coreXML  = xmlDecl + `<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" ` +
		`xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/"><dc:title>%s</dc:title>` +
		`<dc:creator>Ann</dc:creator></cp:coreProperties>`
)

// packageRels are the package relationships of a document whose main part
// is main.
func packageRels(main string) string {
	return xmlDecl + `<Relationships ` + relsNS + `>` +
		`<Relationship Id="rId1" Type="` + relTypes + `officeDocument" Target="` + main + `"/>` +
		`<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/>` +
		`</Relationships>`
}

// wp is a Word paragraph with properties ppr and runs.
func wp(ppr, runs string) string {
	if ppr != "" {
		ppr = "<w:pPr>" + ppr + "</w:pPr>"
	}
	return "<w:p>" + ppr + runs + "</w:p>"
}

// wr is a run of text.
func wr(text string) string { return `<w:r><w:t xml:space="preserve">` + text + `</w:t></w:r>` }

func wstyle(id string) string { return `<w:pStyle w:val="` + id + `"/>` }

func wtc(paras ...string) string { return "<w:tc>" + strings.Join(paras, "") + "</w:tc>" }

const wordStyles = xmlDecl + `<w:styles ` + wordNS + `>` +
	`<w:style w:type="paragraph" w:default="1" w:styleId="Normal"><w:name w:val="Normal"/></w:style>` +
	`<w:style w:type="paragraph" w:styleId="Title"><w:name w:val="Title"/><w:basedOn w:val="Normal"/></w:style>` +
	`<w:style w:type="paragraph" w:styleId="Heading1"><w:name w:val="heading 1"/><w:basedOn w:val="Normal"/><w:pPr><w:outlineLvl w:val="0"/></w:pPr></w:style>` +
	`<w:style w:type="paragraph" w:styleId="Heading2"><w:name w:val="heading 2"/><w:basedOn w:val="Normal"/></w:style>` +
	`<w:style w:type="paragraph" w:styleId="berschrift3"><w:name w:val="heading 3"/></w:style>` +
	`<w:style w:type="paragraph" w:styleId="MyHeading"><w:name w:val="My Heading"/><w:basedOn w:val="Heading2"/></w:style>` +
	`<w:style w:type="paragraph" w:styleId="ListBullet"><w:name w:val="List Bullet"/><w:pPr><w:numPr><w:numId w:val="3"/></w:numPr></w:pPr></w:style>` +
	`<w:style w:type="character" w:styleId="Heading1Char"><w:name w:val="Heading 1 Char"/></w:style>` +
	`</w:styles>`

// wordBody is a body that exercises every rule of extractDOCX.
var wordBody = strings.Join([]string{
	wp(wstyle("Title"), wr("Quarterly Review")),
	wp(wstyle("Heading1"), wr("Summary")),
	wp("", wr("Sales ")+`<w:r><w:rPr><w:b/></w:rPr><w:t>rose</w:t></w:r><w:r><w:tab/><w:t>by 5%.</w:t><w:br/><w:t>Second line.</w:t></w:r>`),
	wp(`<w:tabs><w:tab w:val="left" w:pos="720"/></w:tabs><w:numPr><w:ilvl w:val="0"/><w:numId w:val="1"/></w:numPr>`, wr("First point")),
	wp(wstyle("ListBullet"), wr("Second point")),
	wp(wstyle("ListBullet")+`<w:numPr><w:numId w:val="0"/></w:numPr>`, wr("Not a list item")),
	wp(wstyle("berschrift3"), wr("Details")),
	wp(wstyle("MyHeading"), wr("Custom heading")),
	wp(`<w:outlineLvl w:val="1"/>`, wr("Outline heading")),
	wp("", wr("Changes: ")+`<w:ins w:id="1" w:author="A">`+wr("kept")+`</w:ins><w:del w:id="2" w:author="A"><w:r><w:delText>removed</w:delText></w:r></w:del>`+
		wr(" and page ")+`<w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText xml:space="preserve"> PAGE </w:instrText></w:r>`+
		`<w:r><w:fldChar w:fldCharType="separate"/></w:r>`+wr("7")+`<w:r><w:fldChar w:fldCharType="end"/></w:r>`),
	`<w:tbl><w:tblPr><w:tblStyle w:val="TableGrid"/></w:tblPr>` +
		"<w:tr>" + wtc(wp("", wr("Name"))) + wtc(wp("", wr("Value"))) + "</w:tr>" +
		"<w:tr>" + wtc(wp("", wr("Alpha"))) + wtc(wp("", wr("1")), wp("", wr("2"))) + "</w:tr>" +
		"<w:tr>" + wtc(wp("", "")) + wtc(wp("", "")) + "</w:tr>" +
		"<w:tr>" + wtc(wp("", wr("Nested")), "<w:tbl><w:tr>"+wtc(wp("", wr("x")))+wtc(wp("", wr("y")))+"</w:tr></w:tbl>") + wtc(wp("", wr("z"))) + "</w:tr>" +
		"</w:tbl>",
	wp("", `<w:r><mc:AlternateContent><mc:Choice Requires="wps"><w:drawing><wp:anchor><a:graphic><a:graphicData><wps:wsp><wps:txbx><w:txbxContent>`+
		wp("", wr("In a box"))+`</w:txbxContent></wps:txbx></wps:wsp></a:graphicData></a:graphic></wp:anchor></w:drawing></mc:Choice>`+
		`<mc:Fallback><w:pict><v:shape><v:textbox><w:txbxContent>`+wp("", wr("In a box"))+`</w:txbxContent></v:textbox></v:shape></w:pict></mc:Fallback>`+
		`</mc:AlternateContent></w:r>`+wr("Anchor text")),
	wp("", ""),
	wp("", `<w:r><m:oMath xmlns:m="http://schemas.openxmlformats.org/officeDocument/2006/math"><m:r><m:t>E=mc²</m:t></m:r></m:oMath></w:r>`),
}, "")

// docx returns a Word document with body; styles, if not empty, is its
// styles part; title its dc:title.
func docx(t testing.TB, body, styles, title string) []byte {
	doc := xmlDecl + `<w:document ` + wordNS +
		` xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006"` +
		` xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing"` +
		` xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"` +
		` xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape"` +
		` xmlns:v="urn:schemas-microsoft-com:vml">` +
		`<w:body>` + body + `<w:sectPr><w:pgSz w:w="11906" w:h="16838"/></w:sectPr></w:body></w:document>`
	entries := []zipEntry{
		{"[Content_Types].xml", xmlDecl + `<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>`},
		{"_rels/.rels", packageRels("word/document.xml")},
		{"word/document.xml", doc},
		{"docProps/core.xml", fmt.Sprintf(coreXML, title)},
	}
	if styles != "" {
		entries = append(entries,
			zipEntry{"word/_rels/document.xml.rels", xmlDecl + `<Relationships ` + relsNS + `><Relationship Id="rId1" Type="` + relTypes + `styles" Target="styles.xml"/>` +
				`<Relationship Id="rId9" Type="` + relTypes + `hyperlink" Target="https://example.com/" TargetMode="External"/></Relationships>`},
			zipEntry{"word/styles.xml", styles})
	}
	return makeZip(t, entries...)
}

func TestDOCX(t *testing.T) {
	e, bundle := setup(t)
	doc, err := e.Extract(bundle.ctx, bytes.NewReader(docx(t, wordBody, wordStyles, "Review Q3")), freshen.ObjectInfo{Key: "docs/review.docx"})
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	checkDoc(t, doc)
	want := []freshen.Block{
		head(1, "Quarterly Review"),
		head(1, "Summary"),
		para("Sales rose by 5%.\nSecond line."),
		item("First point"),
		item("Second point"),
		para("Not a list item"),
		head(3, "Details"),
		head(2, "Custom heading"),
		head(2, "Outline heading"),
		para("Changes: kept and page 7"),
		row("Name | Value"),
		row("Alpha | 1 2"),
		row("Nested x y | z"),
		para("In a box"),
		para("Anchor text"),
		para("E=mc²"),
	}
	if !slices.Equal(doc.Blocks, want) {
		t.Errorf("blocks:\n got %s\nwant %s", dump(doc.Blocks), dump(want))
	}
	if doc.Title != "Review Q3" {
		t.Errorf("title = %q", doc.Title)
	}
	if len(doc.Notes) != 0 {
		t.Errorf("notes = %q", doc.Notes)
	}

	// Without styles.xml, the built-in style IDs still make headings.
	doc, err = e.Extract(bundle.ctx, bytes.NewReader(docx(t, wp(wstyle("Heading2"), wr("H"))+wp(wstyle("Title"), wr("T"))+wp(wstyle("berschrift3"), wr("B")), "", "")),
		freshen.ObjectInfo{Key: "x", ContentType: "application/vnd.openxmlformats-officedocument.wordprocessingml.document"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []freshen.Block{head(2, "H"), head(1, "T"), para("B")}; !slices.Equal(doc.Blocks, want) {
		t.Errorf("without styles:\n got %s\nwant %s", dump(doc.Blocks), dump(want))
	}
}

const (
	presNS  = `xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main" xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"`
	spEmpty = `<p:nvSpPr><p:cNvPr id="1" name="x"/><p:cNvSpPr/><p:nvPr/></p:nvSpPr>`
)

// psp is a shape: a placeholder of type ph ("-" for a text box, "" for a
// placeholder without type), with paragraphs.
func psp(ph string, paras ...string) string {
	nv := spEmpty
	if ph != "-" {
		typ := ""
		if ph != "" {
			typ = ` type="` + ph + `"`
		}
		nv = `<p:nvSpPr><p:cNvPr id="2" name="p"/><p:cNvSpPr/><p:nvPr><p:ph` + typ + ` idx="1"/></p:nvPr></p:nvSpPr>`
	}
	var body strings.Builder
	for _, p := range paras {
		body.WriteString("<a:p>" + p + "</a:p>")
	}
	return "<p:sp>" + nv + "<p:spPr/><p:txBody><a:bodyPr/><a:lstStyle/>" + body.String() + "</p:txBody></p:sp>"
}

func ar(text string) string { return "<a:r><a:rPr lang=\"en-US\"/><a:t>" + text + "</a:t></a:r>" }

func slideXML(shapes ...string) string {
	return xmlDecl + `<p:sld ` + presNS + `><p:cSld><p:spTree><p:nvGrpSpPr><p:cNvPr id="1" name=""/><p:cNvGrpSpPr/><p:nvPr/></p:nvGrpSpPr><p:grpSpPr/>` +
		strings.Join(shapes, "") + `</p:spTree></p:cSld></p:sld>`
}

// pptx returns a two-slide presentation whose slide list shows
// slides/slide2.xml first; with list false, it has no slide list.
func pptx(t testing.TB, list bool) []byte {
	table := `<p:graphicFrame><p:nvGraphicFramePr><p:cNvPr id="5" name="t"/><p:cNvGraphicFramePr/><p:nvPr/></p:nvGraphicFramePr><p:xfrm/>` +
		`<a:graphic><a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/table"><a:tbl><a:tblGrid><a:gridCol w="1"/><a:gridCol w="1"/></a:tblGrid>` +
		`<a:tr h="1"><a:tc><a:txBody><a:bodyPr/><a:p>` + ar("Q1") + `</a:p></a:txBody></a:tc><a:tc><a:txBody><a:bodyPr/><a:p>` + ar("Q2") + `</a:p></a:txBody></a:tc></a:tr>` +
		`<a:tr h="1"><a:tc><a:txBody><a:bodyPr/><a:p>` + ar("10") + `</a:p></a:txBody></a:tc><a:tc><a:txBody><a:bodyPr/><a:p>` + ar("20") + `</a:p></a:txBody></a:tc></a:tr>` +
		`</a:tbl></a:graphicData></a:graphic></p:graphicFrame>`
	sldIDs := ""
	if list {
		sldIDs = `<p:sldIdLst><p:sldId id="256" r:id="rId3"/><p:sldId id="257" r:id="rId2"/></p:sldIdLst>`
	}
	return makeZip(t,
		zipEntry{"[Content_Types].xml", xmlDecl + `<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>`},
		zipEntry{"_rels/.rels", packageRels("ppt/presentation.xml")},
		zipEntry{"docProps/core.xml", fmt.Sprintf(coreXML, "Kick-off")},
		zipEntry{"ppt/presentation.xml", xmlDecl + `<p:presentation ` + presNS + `><p:sldMasterIdLst><p:sldMasterId id="2147483648" r:id="rId1"/></p:sldMasterIdLst>` +
			sldIDs + `<p:sldSz cx="12192000" cy="6858000"/></p:presentation>`},
		zipEntry{"ppt/_rels/presentation.xml.rels", xmlDecl + `<Relationships ` + relsNS + `>` +
			`<Relationship Id="rId1" Type="` + relTypes + `slideMaster" Target="slideMasters/slideMaster1.xml"/>` +
			`<Relationship Id="rId2" Type="` + relTypes + `slide" Target="slides/slide1.xml"/>` +
			`<Relationship Id="rId3" Type="` + relTypes + `slide" Target="/ppt/slides/slide2.xml"/></Relationships>`},
		zipEntry{"ppt/slides/slide1.xml", slideXML(
			psp("-", ar("Text box first")),
			psp("title", ar("Agenda")),
			psp("", ar("Goals"), ar("Plan")+"<a:br><a:rPr/></a:br>"+ar("and budget")),
			`<p:grpSp><p:nvGrpSpPr><p:cNvPr id="3" name="g"/><p:cNvGrpSpPr/><p:nvPr/></p:nvGrpSpPr><p:grpSpPr/>`+psp("-", ar("Grouped note"))+`</p:grpSp>`,
			table,
			psp("sldNum", `<a:fld id="{1}" type="slidenum"><a:t>2</a:t></a:fld>`),
		)},
		zipEntry{"ppt/slides/_rels/slide1.xml.rels", xmlDecl + `<Relationships ` + relsNS + `>` +
			`<Relationship Id="rId1" Type="` + relTypes + `slideLayout" Target="../slideLayouts/slideLayout2.xml"/>` +
			`<Relationship Id="rId2" Type="` + relTypes + `notesSlide" Target="../notesSlides/notesSlide1.xml"/></Relationships>`},
		zipEntry{"ppt/notesSlides/notesSlide1.xml", xmlDecl + `<p:notes ` + presNS + `><p:cSld><p:spTree>` +
			psp("sldImg") + psp("body", ar("Speak slowly.")) + psp("sldNum", ar("2")) + `</p:spTree></p:cSld></p:notes>`},
		zipEntry{"ppt/slides/slide2.xml", slideXML(
			psp("ctrTitle", ar("Welcome"), ar("all")),
			psp("subTitle", ar("An overview")),
			psp("dt", ar("1/1/2025")),
			psp("ftr", ar("Company confidential")),
		)},
	)
}

func TestPPTX(t *testing.T) {
	e, bundle := setup(t)
	doc, err := e.Extract(bundle.ctx, bytes.NewReader(pptx(t, true)), freshen.ObjectInfo{Key: "talks/kickoff.pptx"})
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	checkDoc(t, doc)
	want := []freshen.Block{
		pageBlock(head(1, "Welcome all"), 1),
		pageBlock(para("An overview"), 1),
		pageBlock(head(2, "Agenda"), 2),
		pageBlock(para("Text box first"), 2),
		pageBlock(para("Goals"), 2),
		pageBlock(para("Plan\nand budget"), 2),
		pageBlock(para("Grouped note"), 2),
		pageBlock(row("Q1 | Q2"), 2),
		pageBlock(row("10 | 20"), 2),
		pageBlock(para("Speak slowly."), 2),
	}
	if !slices.Equal(doc.Blocks, want) {
		t.Errorf("blocks:\n got %s\nwant %s", dumpPages(doc.Blocks), dumpPages(want))
	}
	if doc.Title != "Kick-off" || len(doc.Notes) != 0 {
		t.Errorf("title = %q, notes = %q", doc.Title, doc.Notes)
	}

	// Without a slide list: in the order of the slide file names.
	doc, err = e.Extract(bundle.ctx, bytes.NewReader(pptx(t, false)), freshen.ObjectInfo{Key: "x",
		ContentType: "application/vnd.openxmlformats-officedocument.presentationml.presentation"})
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Blocks) != len(want) || doc.Blocks[0] != pageBlock(head(2, "Agenda"), 1) || doc.Blocks[len(want)-1] != pageBlock(para("An overview"), 2) {
		t.Errorf("without a slide list: %s", dumpPages(doc.Blocks))
	}
	wantNotes := []string{"pptx: the slide list of ppt/presentation.xml does not lead to the slides; they are in the order of their file names"}
	if !slices.Equal(doc.Notes, wantNotes) {
		t.Errorf("notes = %q, want %q", doc.Notes, wantNotes)
	}
}

// rawEntry adds a stored entry to w whose header claims size bytes.
func rawEntry(t testing.TB, w *zip.Writer, name string, size uint64, data []byte) {
	fw, err := w.CreateRaw(&zip.FileHeader{Name: name, Method: zip.Deflate, CompressedSize64: uint64(len(data)), UncompressedSize64: size})
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(data)
}

func TestOfficeBadInput(t *testing.T) {
	deep := strings.Repeat("<w:sdt><w:sdtContent>", 200) + wp("", wr("deep")) + strings.Repeat("</w:sdtContent></w:sdt>", 200)
	manyEntries := func() []byte {
		entries := make([]zipEntry, maxZipEntries+1)
		for i := range entries {
			entries[i] = zipEntry{fmt.Sprintf("f%d", i), ""}
		}
		return makeZip(t, entries...)
	}
	bombs := func(claim uint64, real int) []byte {
		var buf bytes.Buffer
		w := zip.NewWriter(&buf)
		var z bytes.Buffer
		fw, _ := flate.NewWriter(&z, flate.BestSpeed)
		fw.Write(make([]byte, real))
		fw.Close()
		rawEntry(t, w, "word/document.xml", claim, z.Bytes())
		w.Close()
		return buf.Bytes()
	}
	tests := []struct {
		name   string
		key    string
		in     []byte
		errHas string
	}{
		{"not a zip", "a.docx", []byte("PK\x03\x04 but no more"), "not a valid Word document: the zip archive is damaged (zip: not a valid zip file)"},
		{"a zip without a document", "a.docx", makeZip(t, zipEntry{"hello.txt", "hi"}), "not a valid Word document: no word/document.xml part"},
		{"a zip without a presentation", "a.pptx", makeZip(t, zipEntry{"hello.txt", "hi"}), "not a valid PowerPoint presentation: no ppt/presentation.xml part"},
		{"malformed XML", "a.docx", makeZip(t, zipEntry{"word/document.xml", "<w:document " + wordNS + "><w:body><w:p>"}),
			"not a valid Word document: part word/document.xml: XML syntax error on line 1: unexpected EOF"},
		{"nested too deep", "a.docx", docx(t, deep, "", ""), "the Word document's part word/document.xml has XML elements nested more than 256 levels deep"},
		{"malformed slide", "a.pptx", makeZip(t,
			zipEntry{"ppt/presentation.xml", `<p:presentation ` + presNS + `><p:sldIdLst><p:sldId id="256" r:id="rId1"/></p:sldIdLst></p:presentation>`},
			zipEntry{"ppt/_rels/presentation.xml.rels", `<Relationships ` + relsNS + `><Relationship Id="rId1" Type="` + relTypes + `slide" Target="slides/slide1.xml"/></Relationships>`},
			zipEntry{"ppt/slides/slide1.xml", strings.Replace(slideXML(psp("title", ar("T"))), "<p:cSld>", "<p:cSld</", 1)}),
			"not a valid PowerPoint presentation: part ppt/slides/slide1.xml: XML syntax error"},
		{"too many entries", "a.docx", manyEntries(), "the Word document's zip archive has 20001 entries, over the limit of 20000"},
		{"zip bomb", "a.docx", bombs(1<<40, 1000), "the Word document's part word/document.xml expands to 1099511627776 bytes, over the limit of 67108864 (a zip bomb?)"},
		{"zip bomb with a lying header", "a.docx", bombs(100, 1<<20), "not a valid Word document: part word/document.xml: zip: not a valid zip file"},
	}
	e := New(Config{MaxBytes: 1 << 20})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := e
			if len(tc.in) > 1<<20 {
				e = New(Config{})
			}
			doc, err := e.Extract(t.Context(), bytes.NewReader(tc.in), freshen.ObjectInfo{Key: tc.key})
			if !errors.Is(err, freshen.ErrUnsupported) || errors.Is(err, errInternal) || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("err = %v, want %v containing %q", err, freshen.ErrUnsupported, tc.errHas)
			}
			if doc != nil {
				t.Error("Document with error")
			}
		})
	}

	// A real bomb: a part that inflates to more than the limit, refused
	// from its header before anything is inflated.
	big := makeZip(t, zipEntry{"word/document.xml", strings.Repeat("\x00", 64<<20+1)})
	_, err := e.Extract(t.Context(), bytes.NewReader(big), freshen.ObjectInfo{Key: "a.docx"})
	if !errors.Is(err, freshen.ErrUnsupported) || !strings.Contains(err.Error(), "expands to 67108865 bytes, over the limit of 67108864") {
		t.Errorf("big part: err = %v", err)
	}
}
