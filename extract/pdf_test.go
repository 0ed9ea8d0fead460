package extract

import (
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-pdf/fpdf"

	"github.com/freshen-io/freshen"
)

// pageBlock is a block on a page.
func pageBlock(b freshen.Block, page int) freshen.Block {
	b.Page = page
	return b
}

// fixedTime keeps generated PDFs the same from run to run.
var fixedTime = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// makePDF returns a PDF that draw draws with fpdf, in points on A4.
func makePDF(t testing.TB, draw func(f *fpdf.Fpdf)) []byte {
	t.Helper()
	f := fpdf.New("P", "pt", "A4", "")
	f.SetCreationDate(fixedTime)
	f.SetModificationDate(fixedTime)
	draw(f)
	var buf bytes.Buffer
	if err := f.Output(&buf); err != nil {
		t.Fatalf("fpdf: %v", err)
	}
	return buf.Bytes()
}

const (
	reportPara1 = "The first paragraph of the report is long enough to wrap onto several lines of the page, " +
		"so that the extractor has to join its lines back into one block of text without losing a word."
	reportPara2 = "A second paragraph follows after some space."
)

// reportPDF is a three-page document with a title, headings, paragraphs,
// a bulleted list, a word hyphenated across lines and a footer.
func reportPDF(t testing.TB) []byte {
	return makePDF(t, func(f *fpdf.Fpdf) {
		tr := f.UnicodeTranslatorFromDescriptor("")
		f.SetTitle("Annual Report 2025", true)
		f.SetFooterFunc(func() {
			f.SetY(-40)
			f.SetFont("Helvetica", "", 9)
			f.CellFormat(0, 10, fmt.Sprintf("Page %d", f.PageNo()), "", 0, "C", false, 0, "")
		})
		heading := func(size float64, s string) {
			f.SetFont("Helvetica", "B", size)
			f.Cell(0, size*1.2, s)
			f.Ln(size * 1.6)
			f.SetFont("Helvetica", "", 11)
		}
		para := func(s string) {
			f.MultiCell(400, 14, tr(s), "", "L", false)
			f.Ln(12)
		}
		f.AddPage()
		heading(24, "Annual Report")
		para(reportPara1)
		para(reportPara2)

		f.AddPage()
		heading(16, "Results")
		para("Three findings stand out:")
		for _, s := range []string{"• Revenue grew.", "• Costs fell.", "• Staff stayed."} {
			f.Cell(0, 14, tr(s))
			f.Ln(14)
		}

		f.AddPage()
		heading(16, "Outlook")
		f.Cell(0, 14, "Next year looks bright; the exam-")
		f.Ln(14)
		f.Cell(0, 14, "ple of this year shows why.")
		f.Ln(14)
	})
}

func TestPDF(t *testing.T) {
	e, bundle := setup(t)
	doc, err := e.Extract(bundle.ctx, bytes.NewReader(reportPDF(t)), freshen.ObjectInfo{Key: "reports/2025.pdf"})
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	checkDoc(t, doc)
	want := []freshen.Block{
		pageBlock(head(1, "Annual Report"), 1),
		pageBlock(para(reportPara1), 1),
		pageBlock(para(reportPara2), 1),
		pageBlock(head(2, "Results"), 2),
		pageBlock(para("Three findings stand out:"), 2),
		pageBlock(item("Revenue grew."), 2),
		pageBlock(item("Costs fell."), 2),
		pageBlock(item("Staff stayed."), 2),
		pageBlock(head(2, "Outlook"), 3),
		pageBlock(para("Next year looks bright; the example of this year shows why."), 3),
	}
	if !slices.Equal(doc.Blocks, want) {
		t.Errorf("blocks:\n got %s\nwant %s", dumpPages(doc.Blocks), dumpPages(want))
	}
	if doc.Title != "Annual Report 2025" {
		t.Errorf("title = %q", doc.Title)
	}
	if len(doc.Notes) != 0 {
		t.Errorf("notes = %q", doc.Notes)
	}

	// Labelled by type only, and sniffed.
	for _, obj := range []freshen.ObjectInfo{{Key: "x", ContentType: "application/pdf"}, {Key: "noext"}} {
		doc2, err := e.Extract(bundle.ctx, bytes.NewReader(reportPDF(t)), obj)
		if err != nil || !slices.Equal(doc2.Blocks, doc.Blocks) {
			t.Errorf("%+v: err %v, blocks %s", obj, err, dumpPages(doc2.Blocks))
		}
	}
}

// dumpPages is dump with page numbers.
func dumpPages(blocks []freshen.Block) string {
	var b strings.Builder
	for _, bl := range blocks {
		fmt.Fprintf(&b, "\n  p%d %s", bl.Page, strings.TrimPrefix(dump([]freshen.Block{bl}), "\n  "))
	}
	return b.String()
}

// grayPNG is a small image, standing in for a scanned page.
func grayPNG(t testing.TB) []byte {
	img := image.NewGray(image.Rect(0, 0, 8, 8))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 4)
	}
	img.Set(0, 0, color.Gray{Y: 255})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// scannedPDF has pages that are images only, but for the pages listed in
// text, which hold a line of text.
func scannedPDF(t testing.TB, pages int, text ...int) []byte {
	pngData := grayPNG(t)
	return makePDF(t, func(f *fpdf.Fpdf) {
		opt := fpdf.ImageOptions{ImageType: "PNG"}
		f.RegisterImageOptionsReader("scan", opt, bytes.NewReader(pngData))
		for p := 1; p <= pages; p++ {
			f.AddPage()
			f.ImageOptions("scan", 40, 40, 500, 700, false, opt, 0, "")
			if slices.Contains(text, p) {
				f.SetFont("Helvetica", "", 12)
				f.Text(60, 760, fmt.Sprintf("Typed note on page %d.", p))
			}
		}
	})
}

func TestPDFRefusals(t *testing.T) {
	e, bundle := setup(t)
	protected := func(user string) []byte {
		return makePDF(t, func(f *fpdf.Fpdf) {
			f.SetProtection(fpdf.CnProtectPrint, user, "owner")
			f.AddPage()
			f.SetFont("Helvetica", "", 12)
			f.Text(50, 50, "Confidential text.")
		})
	}
	tests := []struct {
		name   string
		in     []byte
		errHas string
	}{
		{"scanned", scannedPDF(t, 2), "no text layer: its 2 pages hold images but no text (a scanned PDF?); run OCR first"},
		{"encrypted with a password", protected("secret"), "the PDF is encrypted; index a decrypted copy"},
		{"encrypted without a user password", protected(""), "the PDF is encrypted"},
		{"blank pages", makePDF(t, func(f *fpdf.Fpdf) { f.AddPage(); f.AddPage() }), "no text: none of its 2 pages has any"},
		{"garbage after the header", append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte("\x00garbage\xff"), 100)...), "malformed PDF: no %%EOF at the end"},
		{"no pages", rawPDF([]string{"<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [] /Count 0 >>"}, "/Root 1 0 R"), "the PDF has no pages"},
		{"no page tree", rawPDF([]string{"<< /Type /Catalog >>"}, "/Root 1 0 R"), "malformed PDF: no page tree"},
		{"fonts without a unicode map", rawPDF(cmapPage("BT /F1 12 Tf 72 700 Td <000100020003> Tj ET", ""), "/Root 1 0 R"),
			"no extractable text: its fonts map 3 characters to no text (no ToUnicode map)"},
		{"no startxref", []byte("%PDF-1.4\n" + strings.Repeat("x", 200) + "\n%%EOF\n"), "malformed PDF: no startxref"},
		{"startxref outside the file", []byte("%PDF-1.4\n" + strings.Repeat("x", 200) + "\nstartxref\n99999\n%%EOF\n"), "startxref is not an offset in the file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := e.Extract(bundle.ctx, bytes.NewReader(tc.in), freshen.ObjectInfo{Key: "a.pdf"})
			if !errors.Is(err, freshen.ErrUnsupported) || errors.Is(err, errInternal) || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("err = %v, want %v containing %q", err, freshen.ErrUnsupported, tc.errHas)
			}
			if !strings.HasPrefix(err.Error(), `extract: parse pdf "a.pdf": unsupported content: `) {
				t.Errorf("error %q lacks the usual prefix", err)
			}
			if doc != nil {
				t.Error("Document with error")
			}
		})
	}
}

func TestPDFPartlyScanned(t *testing.T) {
	e, bundle := setup(t)
	doc, err := e.Extract(bundle.ctx, bytes.NewReader(scannedPDF(t, 3, 2)), freshen.ObjectInfo{Key: "a.pdf"})
	if err != nil {
		t.Fatal(err)
	}
	want := []freshen.Block{pageBlock(para("Typed note on page 2."), 2)}
	if !slices.Equal(doc.Blocks, want) {
		t.Errorf("blocks: %s", dumpPages(doc.Blocks))
	}
	wantNotes := []string{"pdf: 2 of 3 pages have no text layer, only images (pages 1, 3); OCR them to index their text"}
	if !slices.Equal(doc.Notes, wantNotes) {
		t.Errorf("notes = %q, want %q", doc.Notes, wantNotes)
	}
}

// TestPDFDamaged cuts and corrupts a valid PDF in many ways: every result
// must be a refusal or a clean document, never a panic.
func TestPDFDamaged(t *testing.T) {
	e, bundle := setup(t)
	good := reportPDF(t)
	var inputs [][]byte
	for cut := 1; cut < len(good); cut += len(good) / 40 {
		inputs = append(inputs, good[:cut])
	}
	for i := 0; i < len(good); i += len(good) / 60 {
		bad := slices.Clone(good)
		for j := i; j < min(i+16, len(bad)); j++ {
			bad[j] ^= 0x5a
		}
		inputs = append(inputs, bad)
	}
	inputs = append(inputs, bytes.ReplaceAll(good, []byte("obj"), []byte("jbo")), bytes.ReplaceAll(good, []byte(" R"), []byte(" Q")))
	refused := 0
	for i, in := range inputs {
		doc, err := e.Extract(bundle.ctx, bytes.NewReader(in), freshen.ObjectInfo{Key: "a.pdf"})
		if err != nil {
			if !errors.Is(err, freshen.ErrUnsupported) || errors.Is(err, errInternal) {
				t.Errorf("input %d: err = %v", i, err)
			}
			refused++
			continue
		}
		checkDoc(t, doc)
	}
	if refused == 0 {
		t.Error("no damaged input was refused")
	}
}

// rawPDF assembles a PDF from object bodies (object i+1 is objs[i]) with a
// classic cross-reference table; trailer holds the trailer's entries but
// /Size.
func rawPDF(objs []string, trailer string) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n")
	offs := make([]int, len(objs))
	for i, o := range objs {
		offs[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, o := range offs {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d %s >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, trailer, xref)
	return b.Bytes()
}

// stream is the body of a stream object.
func stream(dict, data string) string {
	return fmt.Sprintf("<< %s /Length %d >>\nstream\n%s\nendstream", dict, len(data), data)
}

func deflate(s string) string {
	var b bytes.Buffer
	w := zlib.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.String()
}

// onePage returns the objects of a one-page PDF whose content is content
// (object 5) and whose font (object 4) is font; more objects may follow.
func onePage(font, content string, more ...string) []string {
	return append([]string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /Resources << /Font << /F1 4 0 R >> /XObject << /X1 6 0 R >> >> /Contents 5 0 R >>",
		font,
		stream("", content),
	}, more...)
}

const helvetica = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"

// testCMap is a ToUnicode CMap: codes 1 and 2 are "H" and "i", 0x10 to
// 0x12 "a" to "c", 0x20 "fi" and 0x21 an emoji.
const testCMap = "/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n" +
	"1 begincodespacerange <0000> <FFFF> endcodespacerange\n" +
	"2 beginbfchar <0001> <0048> <0002> <0069> endbfchar\n" +
	"1 beginbfrange <0010> <0012> <0061> endbfrange\n" +
	"1 beginbfrange <0020> <0021> [<00660069> <D83DDE00>] endbfrange\n" +
	"endcmap CMapName currentdict /CMap defineresource pop end end"

// cmapPage returns the objects of a one-page PDF with content, whose font
// F1 is a composite font with the ToUnicode CMap cmap, whose font F2 is
// Helvetica, and whose form X1 draws a line of text.
func cmapPage(content, cmap string) []string {
	return []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /Resources << /Font << /F1 4 0 R /F2 8 0 R >> /XObject << /X1 9 0 R >> >> /Contents 5 0 R >>",
		"<< /Type /Font /Subtype /Type0 /BaseFont /X /Encoding /Identity-H /ToUnicode 6 0 R /DescendantFonts [7 0 R] >>",
		stream("", content),
		stream("", cmap),
		"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /X /DW 500 /W [1 [600 300] 16 18 450] >>",
		helvetica,
		stream("/Type /XObject /Subtype /Form /BBox [0 0 600 800] /Matrix [1 0 0 1 0 -100] /Resources << /Font << /F2 8 0 R >> >>",
			"BT /F2 10 Tf 72 300 Td (Form text.) Tj ET"),
	}
}

// TestPDFContent checks the content interpreter and the font decoding on
// hand-made pages.
func TestPDFContent(t *testing.T) {
	tests := []struct {
		name string
		objs []string
		want []freshen.Block
	}{
		{"tj and tj arrays", onePage(helvetica, "BT /F1 12 Tf 72 700 Td (Hello) Tj [( w) 10 (orld)] TJ ET"),
			[]freshen.Block{pageBlock(para("Hello world"), 1)}},
		{"kerning gap is a space", onePage(helvetica, "BT /F1 12 Tf 72 700 Td [(Hello) -400 (world)] TJ ET"),
			[]freshen.Block{pageBlock(para("Hello world"), 1)}},
		{"lines by T* and quote", onePage(helvetica, "BT /F1 12 Tf 14 TL 72 700 Td (one) Tj T* (two) Tj (three) ' ET"),
			[]freshen.Block{pageBlock(para("one two three"), 1)}},
		{"text matrix scales the size", onePage(helvetica,
			"BT /F1 1 Tf 24 0 0 24 72 700 Tm (Big) Tj ET BT /F1 1 Tf 10 0 0 10 72 660 Tm (small text) Tj 0 -1.2 Td (more small text) Tj ET"),
			[]freshen.Block{pageBlock(head(1, "Big"), 1), pageBlock(para("small text more small text"), 1)}},
		{"fake bold drawn twice", onePage(helvetica, "BT /F1 12 Tf 72 700 Td (Bold) Tj ET BT /F1 12 Tf 72.3 700 Td (Bold) Tj ET"),
			[]freshen.Block{pageBlock(para("Bold"), 1)}},
		{"to unicode cmap", cmapPage("BT /F1 12 Tf 72 700 Td <000100020009001000110012> Tj <00200021> Tj ET /X1 Do", testCMap),
			[]freshen.Block{pageBlock(para("Hiabcfi😀"), 1), pageBlock(para("Form text."), 1)}},
		{"xref and object streams", nil, []freshen.Block{pageBlock(para("From an object stream."), 1)}},
		{"form xobject", onePage(helvetica, "q 1 0 0 1 0 -20 cm /X1 Do Q BT /F1 12 Tf 72 600 Td (after) Tj ET",
			stream("/Type /XObject /Subtype /Form /BBox [0 0 600 800] /Resources << /Font << /F1 4 0 R >> >>", "BT /F1 12 Tf 72 700 Td (in a form.) Tj ET /X1 Do")),
			[]freshen.Block{pageBlock(para("in a form."), 1), pageBlock(para("after"), 1)}},
		{"inline image is skipped", onePage(helvetica, "BI /W 4 /H 1 /CS /G /BPC 8 ID \x01EI)(\x02 EI\nBT /F1 12 Tf 72 700 Td (caption) Tj ET"),
			[]freshen.Block{pageBlock(para("caption"), 1)}},
		{"unknown font and operators", onePage(helvetica, "BT /F9 12 Tf 72 700 Td (plain) Tj 1 2 3 zz ] >> ET Q Q Q"),
			[]freshen.Block{pageBlock(para("plain"), 1)}},
		{"winansi", onePage(helvetica, "BT /F1 12 Tf 72 700 Td (caf\xe9 \x93quoted\x94) Tj ET"),
			[]freshen.Block{pageBlock(para("café “quoted”"), 1)}},
		{"compressed content", append(onePage(helvetica, "")[:4], "<< /Filter /FlateDecode /Length "+fmt.Sprint(len(deflate("BT /F1 12 Tf 72 700 Td (deflated) Tj ET")))+" >>\nstream\n"+deflate("BT /F1 12 Tf 72 700 Td (deflated) Tj ET")+"\nendstream"),
			[]freshen.Block{pageBlock(para("deflated"), 1)}},
	}
	e, bundle := setup(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := objStmPDF()
			if tc.objs != nil {
				in = rawPDF(tc.objs, "/Root 1 0 R")
			}
			doc, err := e.Extract(bundle.ctx, bytes.NewReader(in), freshen.ObjectInfo{Key: "a.pdf"})
			if err != nil {
				t.Fatalf("Extract: %v", err)
			}
			checkDoc(t, doc)
			if !slices.Equal(doc.Blocks, tc.want) {
				t.Errorf("blocks:\n got %s\nwant %s", dumpPages(doc.Blocks), dumpPages(tc.want))
			}
		})
	}
}

// objStmPDF is a one-page PDF 1.5 file whose catalog, page tree and font
// are in a compressed object stream, and whose cross-reference section is
// a compressed stream with the PNG Up predictor.
func objStmPDF() []byte {
	inner := []string{"<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>", helvetica}
	ids := []int{1, 2, 4}
	var hdr, body strings.Builder
	for i, o := range inner {
		fmt.Fprintf(&hdr, "%d %d ", ids[i], body.Len())
		body.WriteString(o + "\n")
	}
	objstm := deflate(hdr.String() + body.String())
	var b bytes.Buffer
	b.WriteString("%PDF-1.5\n%\xe2\xe3\xcf\xd3\n")
	off := map[int]int{}
	write := func(n int, s string) {
		off[n] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", n, s)
	}
	write(3, "<< /Type /Page /Parent 2 0 R /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>")
	write(5, stream("", "BT /F1 12 Tf 72 700 Td (From an object stream.) Tj ET"))
	write(6, fmt.Sprintf("<< /Type /ObjStm /N 3 /First %d /Filter /FlateDecode /Length %d >>\nstream\n%s\nendstream", hdr.Len(), len(objstm), objstm))
	off[7] = b.Len()
	rows := [][]int{{0, 0, 255}, {2, 6, 0}, {2, 6, 1}, {1, off[3], 0}, {2, 6, 2}, {1, off[5], 0}, {1, off[6], 0}, {1, off[7], 0}}
	var data []byte
	prev := make([]byte, 4)
	for _, r := range rows {
		row := []byte{byte(r[0]), byte(r[1] >> 8), byte(r[1]), byte(r[2])}
		data = append(data, 2)
		for i := range row {
			data = append(data, row[i]-prev[i])
		}
		prev = row
	}
	xref := deflate(string(data))
	write(7, fmt.Sprintf("<< /Type /XRef /Size 8 /W [1 2 1] /Root 1 0 R /Filter /FlateDecode /DecodeParms << /Predictor 12 /Columns 4 >> /Length %d >>\nstream\n%s\nendstream", len(xref), xref))
	fmt.Fprintf(&b, "startxref\n%d\n%%%%EOF\n", off[7])
	return b.Bytes()
}

// xrefStreamPDF assembles a PDF whose cross-reference section is a stream
// with the given dictionary entries and (uncompressed) data, after the
// objects.
func xrefStreamPDF(objs []string, dict string, data []byte) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.5\n")
	for i, o := range objs {
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "%d 0 obj\n<< /Type /XRef %s /Length %d >>\nstream\n", len(objs)+1, dict, len(data))
	b.Write(data)
	fmt.Fprintf(&b, "\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n", xref)
	return b.Bytes()
}

// overlappingObjStms returns a file whose cross-reference stream puts a
// thousand objects in a thousand object streams, all at the offset of
// one object with a large dictionary: checking them would read that
// dictionary a thousand times.
func overlappingObjStms(page []string) []byte {
	objs := append(slices.Clone(page), "<< /A ["+strings.Repeat("1 ", 1<<18)+"] >>\nstream\nx\nendstream")
	off := offsetOf(objs, 6)
	var data []byte
	for range 1000 {
		data = append(data, 1, byte(off>>8), byte(off), 0, 0) // streams 2000 to 2999, all at off
	}
	for k := range 1000 {
		s := 2000 + k
		data = append(data, 2, byte(s>>8), byte(s), 0, 0) // object 3000+k, in stream 2000+k
	}
	return xrefStreamPDF(objs, "/Size 4000 /W [1 2 2] /Index [2000 1000 3000 1000] /Root 1 0 R", data)
}

// offsetOf returns where object n starts in a file that xrefStreamPDF
// builds from objs.
func offsetOf(objs []string, n int) int {
	return bytes.Index(xrefStreamPDF(objs, "", nil), fmt.Appendf(nil, "\n%d 0 obj", n)) + 1
}

// TestPDFHostileStructure feeds structures that make the PDF library
// allocate without bound, recurse until the stack overflows, or loop
// forever. Each is refused at once; without the checks, most of them
// crash the test binary.
func TestPDFHostileStructure(t *testing.T) {
	page := onePage(helvetica, "BT /F1 12 Tf 72 700 Td (text) Tj ET")
	good := rawPDF(page, "/Root 1 0 R")
	selfPrev := func() []byte {
		// The trailer's /Prev points at its own table.
		i := bytes.LastIndex(good, []byte("\nxref\n")) + 1
		return bytes.Replace(good, []byte("/Root 1 0 R"), fmt.Appendf(nil, "/Root 1 0 R /Prev %d", i), 1)
	}
	entry := func(typ, f2, f3 int) []byte { return []byte{byte(typ), byte(f2 >> 8), byte(f2), byte(f3)} }
	// objStm is the page's objects and an object stream (object 6) with
	// the dictionary entries dict, holding object 9, the root: resolving
	// it makes the library read the object stream.
	objStm := func(dict string) []string {
		data := "9 0 5"
		if strings.Contains(dict, "/N 9") {
			data = "8 0 5" // object 9 is not there: the library looks through all /N
		}
		return append(slices.Clone(page), "<< /Type /ObjStm /N 1 /First 4 "+dict+" >>\nstream\n"+data+"\nendstream")
	}
	tests := []struct {
		name   string
		in     []byte
		errHas string
	}{
		{"huge subsection start", bytes.Replace(good, []byte("trailer\n"), []byte("4000000000 1\n0000000009 00000 n \ntrailer\n"), 1),
			"cross-reference subsection 4000000000+1 is over the limit"},
		{"prev loop", selfPrev(), "the cross-reference sections form a loop"},
		{"huge /Size", xrefStreamPDF(page, "/Size 4000000000 /W [1 2 1] /Root 1 0 R", nil), "/Size 4000000000 is over the limit"},
		{"huge /W", xrefStreamPDF(page, "/Size 7 /W [1 1000000000000 1] /Root 1 0 R", nil), "/W holds 1000000000000"},
		{"huge /Index", xrefStreamPDF(page, "/Size 7 /W [0 0 0] /Index [0 3000000000] /Root 1 0 R", nil), "/Index 0+3000000000 is over the limit"},
		{"huge /Columns", xrefStreamPDF(page, "/Size 7 /W [1 2 1] /Filter /FlateDecode /DecodeParms << /Predictor 12 /Columns 99999999999 >> /Root 1 0 R", []byte(deflate("x"))),
			"unsupported predictor 12 with 99999999999 columns"},
		{"object stream in itself", xrefStreamPDF(page, "/Size 8 /W [1 2 1] /Index [8 1] /Root 8 0 R", entry(2, 8, 0)),
			"object stream 8 is itself stored in an object stream"},
		{"object stream length in an object stream", xrefStreamPDF(objStm("/Length 9 0 R"), "/Size 10 /W [1 2 1] /Index [6 1 9 1] /Root 9 0 R",
			slices.Concat(entry(1, offsetOf(objStm("/Length 9 0 R"), 6), 0), entry(2, 6, 0))),
			"the /Length of object stream 6 is stored in an object stream"},
		{"object stream with an indirect /First", xrefStreamPDF(objStm("/Length 5 /First 9 0 R"), "/Size 10 /W [1 2 1] /Index [6 1 9 1] /Root 9 0 R",
			slices.Concat(entry(1, offsetOf(objStm("/Length 5 /First 9 0 R"), 6), 0), entry(2, 6, 0))),
			"object stream 6 has an indirect reference in its /First"},
		{"overlapping object streams", overlappingObjStms(page), "its cross-reference structure is too large to check"},
		{"object stream with a huge /N", xrefStreamPDF(objStm("/Length 5 /N 99999999999"), "/Size 10 /W [1 2 1] /Index [6 1 9 1] /Root 9 0 R",
			slices.Concat(entry(1, offsetOf(objStm("/Length 5 /N 99999999999"), 6), 0), entry(2, 6, 0))),
			"object stream 6 claims 99999999999 objects"},
	}
	e, bundle := setup(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.Extract(bundle.ctx, bytes.NewReader(tc.in), freshen.ObjectInfo{Key: "a.pdf"})
			if !errors.Is(err, freshen.ErrUnsupported) || errors.Is(err, errInternal) || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("err = %v, want %v containing %q", err, freshen.ErrUnsupported, tc.errHas)
			}
		})
	}
	if _, err := e.Extract(bundle.ctx, bytes.NewReader(good), freshen.ObjectInfo{Key: "a.pdf"}); err != nil {
		t.Fatalf("the unaltered file: %v", err)
	}
}

// TestPDFHostileContent feeds pages that loop or expand: each is read in
// bounded time and memory.
func TestPDFHostileContent(t *testing.T) {
	cmapBomb := stream("", "999999999999999 beginbfchar <01> <0048> endbfchar "+strings.Repeat("endbfchar ", 1000)+
		"4000000000 beginbfrange <10> <FF> <0061> endbfrange")
	bomb := deflate(strings.Repeat(" ", 40<<20))
	tests := []struct {
		name      string
		objs      []string
		want      []freshen.Block
		wantNotes []string
	}{
		{"page tree loops", []string{
			"<< /Type /Catalog /Pages 2 0 R >>",
			"<< /Type /Pages /Kids [3 0 R 2 0 R 6 0 R] /Count 3 >>",
			"<< /Type /Page /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
			helvetica,
			stream("", "BT /F1 12 Tf 72 700 Td (once) Tj ET"),
			"<< /Type /Pages /Kids [6 0 R 2 0 R] /Count 1 >>",
		}, []freshen.Block{pageBlock(para("once"), 1)}, nil},
		{"form draws itself", onePage(helvetica, "/X1 Do",
			stream("/Type /XObject /Subtype /Form /Resources << /Font << /F1 4 0 R >> /XObject << /X1 6 0 R >> >>", "BT /F1 12 Tf 72 700 Td (form) Tj ET /X1 Do")),
			[]freshen.Block{pageBlock(para("form"), 1)}, nil},
		{"cmap counts are not trusted", []string{
			"<< /Type /Catalog /Pages 2 0 R >>",
			"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
			"<< /Type /Page /Parent 2 0 R /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
			"<< /Type /Font /Subtype /Type1 /BaseFont /X /ToUnicode 6 0 R >>",
			stream("", "BT /F1 12 Tf 72 700 Td <011011> Tj ET"),
			cmapBomb,
		}, []freshen.Block{pageBlock(para("Hab"), 1)}, nil},
		{"decompression bomb", []string{
			"<< /Type /Catalog /Pages 2 0 R >>",
			"<< /Type /Pages /Kids [3 0 R 6 0 R] /Count 2 >>",
			"<< /Type /Page /Parent 2 0 R /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
			helvetica,
			fmt.Sprintf("<< /Filter /FlateDecode /Length %d >>\nstream\n%s\nendstream", len(bomb), bomb),
			"<< /Type /Page /Parent 2 0 R /Resources << /Font << /F1 4 0 R >> >> /Contents 7 0 R >>",
			stream("", "BT /F1 12 Tf 72 700 Td (page two) Tj ET"),
		}, []freshen.Block{pageBlock(para("page two"), 2)}, []string{"pdf: page 1: content over 32 MiB decompressed; skipped"}},
		{"unclosed arrays and deep nesting", onePage(helvetica, strings.Repeat("[", 100000)+" BT /F1 12 Tf 72 700 Td (deep) Tj ET "+strings.Repeat("<<", 100000)),
			[]freshen.Block{}, nil},
	}
	e, bundle := setup(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := e.Extract(bundle.ctx, bytes.NewReader(rawPDF(tc.objs, "/Root 1 0 R")), freshen.ObjectInfo{Key: "a.pdf"})
			if len(tc.want) == 0 {
				if !errors.Is(err, freshen.ErrUnsupported) || errors.Is(err, errInternal) {
					t.Fatalf("err = %v, want a refusal", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Extract: %v", err)
			}
			checkDoc(t, doc)
			if !slices.Equal(doc.Blocks, tc.want) {
				t.Errorf("blocks:\n got %s\nwant %s", dumpPages(doc.Blocks), dumpPages(tc.want))
			}
			if !slices.Equal(doc.Notes, tc.wantNotes) {
				t.Errorf("notes = %q, want %q", doc.Notes, tc.wantNotes)
			}
		})
	}
}

// stopAfter is a context that is done after its Err has been asked n
// times: a cancellation that arrives in the middle of an extraction.
type stopAfter struct {
	context.Context
	n int
}

func (c *stopAfter) Err() error {
	if c.n--; c.n < 0 {
		return context.Canceled
	}
	return nil
}

func TestPDFDeadlineAndContext(t *testing.T) {
	in := reportPDF(t)
	e := New(Config{})
	e.pdfTimeout = time.Nanosecond
	_, err := e.Extract(context.Background(), bytes.NewReader(in), freshen.ObjectInfo{Key: "a.pdf"})
	if !errors.Is(err, freshen.ErrUnsupported) || !strings.Contains(err.Error(), "reading the PDF took longer than 1ns") {
		t.Errorf("deadline: err = %v", err)
	}
	// Cancel after each of the checks a whole extraction makes.
	all := &stopAfter{context.Background(), 1 << 30}
	if _, err := New(Config{}).Extract(all, bytes.NewReader(in), freshen.ObjectInfo{Key: "a.pdf"}); err != nil {
		t.Fatal(err)
	}
	checks := 1<<30 - all.n
	if checks < 10 {
		t.Fatalf("only %d checks of the context", checks)
	}
	for n := range checks {
		_, err = New(Config{}).Extract(&stopAfter{context.Background(), n}, bytes.NewReader(in), freshen.ObjectInfo{Key: "a.pdf"})
		if !errors.Is(err, context.Canceled) || errors.Is(err, freshen.ErrUnsupported) {
			t.Errorf("canceled after %d of %d checks: err = %v", n, checks, err)
		}
	}
}

func TestPDFView(t *testing.T) {
	good := reportPDF(t)
	variants := map[string][]byte{
		"junk before the header": append([]byte("Content-Type: application/pdf\r\n\r\n"), good...),
		"junk after %%EOF":       append(slices.Clone(good), bytes.Repeat([]byte{0}, 300)...),
		"PDF 2.0 header":         append([]byte("%PDF-2.0"), good[8:]...),
	}
	e, bundle := setup(t)
	want, err := e.Extract(bundle.ctx, bytes.NewReader(good), freshen.ObjectInfo{Key: "a.pdf"})
	if err != nil {
		t.Fatal(err)
	}
	for name, in := range variants {
		doc, err := e.Extract(bundle.ctx, bytes.NewReader(in), freshen.ObjectInfo{Key: "a.pdf"})
		if err != nil || !slices.Equal(doc.Blocks, want.Blocks) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestPDFLayout(t *testing.T) {
	run := func(text string, x, y, size float64) pdfRun {
		return pdfRun{text: text, x0: x, y0: y, x1: x + float64(len(text))*size/2, y1: y, size: size}
	}
	runs := []pdfRun{
		run("Heading", 72, 760, 18),
		run("A paragraph that fills the", 72, 720, 10), run("line, then", 72, 708, 10),
		run("ends short.", 72, 696, 10),
		run("Next para-", 72, 684, 10), run("graph, hyphen-", 72, 672, 10), run("ated.", 72, 660, 10),
		run("After a gap.", 72, 630, 10),
		run("Column two", 320, 760, 10),
	}
	got := layoutPage(runs, 7)
	var texts []string
	for _, p := range got {
		if p.page != 7 {
			t.Errorf("page = %d", p.page)
		}
		texts = append(texts, p.text)
	}
	want := []string{"Heading", "A paragraph that fills the line, then ends short.", "Next paragraph, hyphenated.", "After a gap.", "Column two"}
	if !slices.Equal(texts, want) {
		t.Errorf("paragraphs:\n got %q\nwant %q", texts, want)
	}
}

// threePages is a PDF whose pages say "Page one." to "Page three.".
func threePages() []byte {
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R 4 0 R 5 0 R] /Count 3 /Resources << /Font << /F1 6 0 R >> >> >>",
	}
	for i := range 3 {
		objs = append(objs, fmt.Sprintf("<< /Type /Page /Parent 2 0 R /Contents %d 0 R >>", 7+i))
	}
	objs = append(objs, helvetica)
	for _, w := range []string{"one", "two", "three"} {
		objs = append(objs, stream("", "BT /F1 12 Tf 72 700 Td (Page "+w+".) Tj ET"))
	}
	return rawPDF(objs, "/Root 1 0 R")
}

// TestPDFLimits runs extractPDF with small limits.
func TestPDFLimits(t *testing.T) {
	base := New(Config{}).pdfLimits(1000)
	in := threePages()

	var nt notes
	lim := base
	lim.maxPages = 2
	blocks, _, err := extractPDF(t.Context(), in, lim, &nt)
	want := []freshen.Block{pageBlock(para("Page one."), 1), pageBlock(para("Page two."), 2)}
	if err != nil || !slices.Equal(blocks, want) {
		t.Errorf("two pages: %v, %s", err, dumpPages(blocks))
	}
	if notes := nt.result(); !slices.Equal(notes, []string{"pdf: only the first 2 pages were extracted"}) {
		t.Errorf("notes = %q", notes)
	}

	tests := []struct {
		name   string
		change func(*pdfLimits)
		want   error
		errHas string
	}{
		{"text", func(l *pdfLimits) { l.maxText = 15 }, freshen.ErrTooLarge, "the PDF holds more than 0 MiB of text"},
		{"decoded", func(l *pdfLimits) { l.maxDecoded = 60 }, freshen.ErrTooLarge, "the PDF's streams decompress to more than 0 MiB"},
		{"one stream", func(l *pdfLimits) { l.maxStream = 10 }, freshen.ErrUnsupported, "malformed PDF: no page could be read: page 1: content over 0 MiB decompressed"},
		{"objects", func(l *pdfLimits) { l.maxObjects = 5 }, freshen.ErrUnsupported, "subsection 0+10 is over the limit of 5 objects"},
	}
	for _, tc := range tests {
		lim := base
		tc.change(&lim)
		_, _, err := extractPDF(t.Context(), in, lim, &notes{})
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.errHas) {
			t.Errorf("%s: err = %v, want %v containing %q", tc.name, err, tc.want, tc.errHas)
		}
	}
}
