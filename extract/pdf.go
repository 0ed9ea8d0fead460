package extract

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ledongthuc/pdf"

	"github.com/freshen-io/freshen"
)

// PDF extraction uses github.com/ledongthuc/pdf for the file structure:
// the cross-reference table, objects and their references, and stream
// filters. The rest is done here, because the library's text functions
// are unsafe on hostile input (unbounded loops and allocations, see
// pdfcheck.go and pdffont.go) and lose the layout: the page tree is
// walked with an explicit stack, and each page's content stream is
// interpreted to place every piece of text on the page (pdfcontent.go),
// from which lines, paragraphs and headings are rebuilt (pdflayout.go).
//
// What bounds the work:
//   - the object is at most Config.MaxBytes;
//   - checkPDF refuses the structures that would crash or hang the
//     library before it reads anything;
//   - every read of the file checks the context and a deadline (see
//     pdfLimits), and so does the content interpreter as it goes: a loop
//     inside the library that reads the file stops there;
//   - streams are read through a limit (one stream, and all of them), and
//     so is the text extracted;
//   - at most maxPDFPages pages are read, and the page tree walk visits a
//     bounded number of nodes.
//
// The library reports malformed input by panicking; every call into it
// that resolves an object or decodes a stream goes through pdfKey,
// pdfIndex, tryPDF or pdfDoc.stream, which turn such a panic into a
// pdfBad, which skips the page it happened on (with a note) or, before
// any page, refuses the file (pdf.NewReader recovers its own). An abort
// (pdfAbort: the context, the deadline, a budget) is a panic too, raised
// by pdfFile.ReadAt or the extractor, that crosses the library's frames
// to extractPDF. Encrypted files are refused before the library reads
// them: its decryption is unreliable (RC4 with 40-bit keys decrypts to
// garbage, AES-256 is not supported).

const (
	// maxPDFPages bounds the pages read; past it, the rest of the
	// document is left out, with a note.
	maxPDFPages = 5000
	// maxPDFStream bounds the decompressed content of one page (its
	// content streams together) and of one form: real pages hold tens of
	// KiB, a detailed map a few MiB.
	maxPDFStream = 32 << 20
	// maxFormDepth bounds forms drawn inside forms.
	maxFormDepth = 8
	// maxFormCache bounds the decoded forms kept for reuse.
	maxFormCache = 32 << 20
)

// pdfLimits bounds one PDF extraction (see Extractor.pdfLimits).
type pdfLimits struct {
	// timeout bounds the whole extraction.
	timeout time.Duration
	// maxPages, maxStream: see maxPDFPages, maxPDFStream.
	maxPages  int
	maxStream int64
	// maxDecoded bounds the decompressed bytes of all streams read, and
	// maxText the text extracted, both of which may exceed the file by
	// far: pages can share one content stream, and a stream can compress
	// a thousand times over.
	maxDecoded int64
	maxText    int64
	// maxObjects bounds the object numbers of the file (see checkPDF).
	maxObjects int64
}

// pdfTimeout returns the time allowed to extract a PDF of size bytes: 10
// s, plus 5 s per MiB, at most 60 s. Real documents take a fraction of
// that (about 100 ms per MiB of text); hostile ones are cut short.
func pdfTimeout(size int) time.Duration {
	return min(10*time.Second+time.Duration(size)*5*time.Second/(1<<20), 60*time.Second).Truncate(time.Second)
}

// pdfLimits returns the limits for a PDF of size bytes.
func (e *Extractor) pdfLimits(size int) pdfLimits {
	timeout := e.pdfTimeout
	if timeout == 0 {
		timeout = pdfTimeout(size)
	}
	return pdfLimits{
		timeout:    timeout,
		maxPages:   maxPDFPages,
		maxStream:  maxPDFStream,
		maxDecoded: max(256<<20, 16*int64(size)),
		maxText:    max(64<<20, 4*int64(size)),
		maxObjects: int64(size)/4 + 1<<16,
	}
}

// pdfAbort is the panic that stops an extraction: the context is done,
// the deadline passed, or a budget is spent. It crosses the library's
// frames (which do not recover it, but for NewReader, which returns it as
// its error) up to extractPDF.
type pdfAbort struct{ err error }

func (a pdfAbort) Error() string { return a.err.Error() }
func (a pdfAbort) Unwrap() error { return a.err }

// errPDFDeadline is the cause of an abort at the deadline.
var errPDFDeadline = errors.New("deadline")

// pdfBad is a panic of the library, that is, malformed input.
type pdfBad struct{ msg string }

// libRecover, deferred around a call into the library, turns its panics
// into pdfBad, and lets pdfAbort through.
func libRecover() {
	if p := recover(); p != nil {
		switch p := p.(type) {
		case pdfAbort, pdfBad:
			panic(p)
		case error:
			panic(pdfBad{p.Error()})
		default:
			panic(pdfBad{fmt.Sprint(p)})
		}
	}
}

// tryPDF runs f, which calls into the library, and reports whether it
// completed; a panic of the library is absorbed, an abort is not.
func tryPDF(f func()) (ok bool) {
	defer func() {
		if p := recover(); p != nil {
			if a, isAbort := p.(pdfAbort); isAbort {
				panic(a)
			}
			ok = false
		}
	}()
	f()
	return true
}

// pdfKey returns the entry k of the dictionary (or stream) v, resolved.
func pdfKey(v pdf.Value, k string) pdf.Value {
	defer libRecover()
	return v.Key(k)
}

// pdfIndex returns the element i of the array v, resolved.
func pdfIndex(v pdf.Value, i int) pdf.Value {
	defer libRecover()
	return v.Index(i)
}

// pdfFile is the file as the library reads it: every read checks the
// context and the deadline, and aborts past them.
type pdfFile struct {
	b        []byte
	ctx      context.Context
	deadline time.Time
}

func (f *pdfFile) check() {
	if err := f.ctx.Err(); err != nil {
		panic(pdfAbort{err})
	}
	if time.Now().After(f.deadline) {
		panic(pdfAbort{errPDFDeadline})
	}
}

// ReadAt implements io.ReaderAt.
func (f *pdfFile) ReadAt(p []byte, off int64) (int, error) {
	f.check()
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	if off >= int64(len(f.b)) {
		return 0, io.EOF
	}
	n := copy(p, f.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// pdfDoc is one PDF extraction.
type pdfDoc struct {
	r     *pdf.Reader
	file  *pdfFile
	lim   pdfLimits
	nt    *notes
	fonts map[string]*pdfFont
	// forms caches decoded forms by their stream's text; formBytes is
	// their size.
	forms     map[string][]byte
	formBytes int
	decoded   int64 // decompressed bytes read
	text      int64 // text bytes extracted
	// fontEntries is what is left of maxFontEntries.
	fontEntries int
	// undecodable counts codes no font could map to text.
	undecodable int
	page        int // the page being read, from 1
}

// extractPDF returns the text of a PDF's pages as blocks, each with its
// page number, and the title from its document information dictionary.
// Paragraphs are rebuilt from the layout (see pdflayout.go); headings are
// recognized by their font size (see headingLevels), list items by their
// bullet; page numbers and running heads are dropped (see
// dropRunningHeads).
//
// It refuses, with an error wrapping freshen.ErrUnsupported: a file that is
// not a readable PDF, saying why; an encrypted one; one that has no text
// (a scanned document without a text layer, or only glyphs that no font
// maps to text); one whose extraction runs past the deadline. It refuses
// with an error wrapping freshen.ErrTooLarge one whose streams or text
// expand past their budgets. A page that cannot be read is skipped with a
// note; so are the pages past maxPages.
func extractPDF(ctx context.Context, data []byte, lim pdfLimits, nt *notes) (blocks []freshen.Block, title string, err error) {
	view, err := pdfView(data)
	if err != nil {
		return nil, "", err
	}
	st, err := checkPDF(view, lim.maxObjects)
	if err != nil {
		return nil, "", err
	}
	if st.encrypted {
		return nil, "", fmt.Errorf("%w: the PDF is encrypted; index a decrypted copy (qpdf --decrypt in.pdf out.pdf)", freshen.ErrUnsupported)
	}
	d := &pdfDoc{
		file:  &pdfFile{b: view, ctx: ctx, deadline: time.Now().Add(lim.timeout)},
		lim:   lim,
		nt:    nt,
		fonts: map[string]*pdfFont{},
		forms: map[string][]byte{},

		fontEntries: maxFontEntries,
	}
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		blocks, title = nil, ""
		switch p := p.(type) {
		case pdfAbort:
			err = d.abortError(p)
		case pdfBad:
			err = errMalformedPDF("%s", p.msg)
		default:
			panic(p)
		}
	}()
	d.r, err = pdf.NewReader(d.file, int64(len(view)))
	if err != nil {
		var a pdfAbort
		switch {
		case errors.As(err, &a):
			panic(a)
		case errors.Is(err, pdf.ErrInvalidPassword), strings.Contains(err.Error(), "encrypt"):
			return nil, "", fmt.Errorf("%w: the PDF is encrypted (%v); index a decrypted copy (qpdf --decrypt in.pdf out.pdf)", freshen.ErrUnsupported, err)
		}
		return nil, "", errMalformedPDF("%v", strings.TrimPrefix(strings.TrimPrefix(err.Error(), "malformed PDF: "), "malformed PDF file: "))
	}
	trailer := d.r.Trailer()
	title = pdfKey(pdfKey(trailer, "Info"), "Title").Text()
	root := pdfKey(pdfKey(trailer, "Root"), "Pages")
	if root.Kind() != pdf.Dict {
		return nil, "", errMalformedPDF("no page tree")
	}
	var paras [][]pdfPara // by page
	var scanned []int     // pages with images but no text
	textPages, pages := 0, 0
	var firstErr error
	d.walkPages(root, func(page, res pdf.Value) {
		pages++
		d.page = pages
		runs, images, err := d.readPage(page, res)
		if err != nil {
			nt.add("pdf: page %d: %v; skipped", pages, err)
			if firstErr == nil {
				firstErr = fmt.Errorf("page %d: %w", pages, err)
			}
			return
		}
		pp := layoutPage(runs, pages)
		if len(pp) > 0 {
			textPages++
		} else if images {
			scanned = append(scanned, pages)
		}
		paras = append(paras, pp)
	})
	switch {
	case textPages == 0 && len(scanned) > 0:
		return nil, "", fmt.Errorf("%w: no text layer: its %d pages hold images but no text (a scanned PDF?); run OCR first (e.g. ocrmypdf) and index the result",
			freshen.ErrUnsupported, pages)
	case textPages == 0 && d.undecodable > 0:
		return nil, "", fmt.Errorf("%w: no extractable text: its fonts map %d characters to no text (no ToUnicode map)", freshen.ErrUnsupported, d.undecodable)
	case textPages == 0 && firstErr != nil:
		return nil, "", errMalformedPDF("no page could be read: %v", firstErr)
	case pages == 0:
		return nil, "", fmt.Errorf("%w: the PDF has no pages", freshen.ErrUnsupported)
	case textPages == 0:
		return nil, "", fmt.Errorf("%w: no text: none of its %d pages has any", freshen.ErrUnsupported, pages)
	}
	if len(scanned) > 0 {
		nt.add("pdf: %d of %d pages have no text layer, only images (%s); OCR them to index their text", len(scanned), pages, pageList(scanned))
	}
	return pdfBlocks(dropRunningHeads(paras)), title, nil
}

// abortError explains an abort: the context's error, a budget's, or the
// deadline's.
func (d *pdfDoc) abortError(a pdfAbort) error {
	if !errors.Is(a.err, errPDFDeadline) {
		return a.err
	}
	where := "before the first page"
	if d.page > 0 {
		where = fmt.Sprintf("at page %d", d.page)
	}
	return fmt.Errorf("%w: reading the PDF took longer than %s (stopped %s); it is too complex or malformed to index", freshen.ErrUnsupported, d.lim.timeout, where)
}

// pageList shows up to ten page numbers.
func pageList(pages []int) string {
	var b strings.Builder
	b.WriteString("page")
	if len(pages) > 1 {
		b.WriteString("s")
	}
	for i, p := range pages[:min(len(pages), 10)] {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, " %d", p)
	}
	if len(pages) > 10 {
		b.WriteString(", ...")
	}
	return b.String()
}

// walkPages calls fn for each page of the page tree under root, in order,
// with the resources it inherits, up to lim.maxPages pages. The tree is
// walked with an explicit stack; a Pages node met twice (the tree loops)
// is skipped, and the walk visits at most a bounded number of nodes.
func (d *pdfDoc) walkPages(root pdf.Value, fn func(page, res pdf.Value)) {
	type item struct {
		node, res pdf.Value
	}
	stack := []item{{root, pdf.Value{}}}
	seen := map[string]bool{}
	budget := 4*d.lim.maxPages + 1000
	pages := 0
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if budget--; budget < 0 {
			d.nt.add("pdf: the page tree has too many nodes; stopped after page %d", pages)
			return
		}
		d.file.check()
		res := it.res
		if r := pdfKey(it.node, "Resources"); r.Kind() == pdf.Dict {
			res = r
		}
		kids := pdfKey(it.node, "Kids")
		typ := pdfKey(it.node, "Type").Name()
		if typ == "Pages" || (typ != "Page" && kids.Kind() == pdf.Array) {
			key := it.node.String()
			if seen[key] {
				continue
			}
			seen[key] = true
			for i := min(kids.Len(), budget) - 1; i >= 0; i-- {
				if kid := pdfIndex(kids, i); kid.Kind() == pdf.Dict {
					stack = append(stack, item{kid, res})
				}
			}
			continue
		}
		if pages == d.lim.maxPages {
			d.nt.add("pdf: only the first %d pages were extracted", d.lim.maxPages)
			return
		}
		pages++
		fn(it.node, res)
	}
}

// readPage interprets the content of a page and returns the text it
// draws, and whether it draws an image. A page the library fails on is
// an error.
func (d *pdfDoc) readPage(page, res pdf.Value) (runs []pdfRun, images bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			bad, ok := p.(pdfBad)
			if !ok {
				panic(p)
			}
			runs, err = nil, errors.New(bad.msg)
		}
	}()
	contents := pdfKey(page, "Contents")
	var streams []pdf.Value
	switch contents.Kind() {
	case pdf.Stream:
		streams = append(streams, contents)
	case pdf.Array:
		for i := 0; i < min(contents.Len(), 4096); i++ {
			if s := pdfIndex(contents, i); s.Kind() == pdf.Stream {
				streams = append(streams, s)
			}
		}
	}
	var content []byte
	for _, s := range streams {
		data, err := d.stream(s, d.lim.maxStream-int64(len(content)))
		if err != nil {
			return nil, false, err
		}
		content = append(append(content, data...), '\n')
	}
	in := pdfInterp{d: d, gs: newGState()}
	in.run(content, res, nil)
	return in.runs, in.images, nil
}

// stream returns the decoded data of the stream v, at most limit bytes,
// counted against the extraction's budget. Data cut short by a damaged
// stream is kept, with a note.
func (d *pdfDoc) stream(v pdf.Value, limit int64) (data []byte, err error) {
	if limit <= 0 {
		return nil, fmt.Errorf("content over %d MiB decompressed", d.lim.maxStream>>20)
	}
	var cols int64
	if params := pdfKey(v, "DecodeParms"); params.Kind() == pdf.Dict {
		cols = pdfKey(params, "Columns").Int64()
	} else if params.Kind() == pdf.Array {
		for i := 0; i < min(params.Len(), 16); i++ {
			cols = max(cols, pdfKey(pdfIndex(params, i), "Columns").Int64())
		}
	}
	if cols < 0 || cols > maxPredictorColumns {
		return nil, fmt.Errorf("a stream with a predictor of %d columns", cols)
	}
	var readErr error
	ok := tryPDF(func() {
		rc := v.Reader()
		data, readErr = io.ReadAll(io.LimitReader(rc, limit+1))
	})
	if !ok {
		return nil, errors.New("a stream cannot be decoded (unsupported or damaged filter)")
	}
	d.decoded += int64(len(data))
	if d.decoded > d.lim.maxDecoded {
		panic(pdfAbort{fmt.Errorf("%w: the PDF's streams decompress to more than %d MiB", freshen.ErrTooLarge, d.lim.maxDecoded>>20)})
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("content over %d MiB decompressed", d.lim.maxStream>>20)
	}
	if readErr != nil {
		if len(data) == 0 {
			return nil, fmt.Errorf("a stream cannot be decoded: %v", readErr)
		}
		d.nt.add("pdf: page %d: a damaged stream was read up to the damage", d.page)
	}
	return data, nil
}

// addText counts n bytes of extracted text against the budget.
func (d *pdfDoc) addText(n int) {
	d.text += int64(n)
	if d.text > d.lim.maxText {
		panic(pdfAbort{fmt.Errorf("%w: the PDF holds more than %d MiB of text", freshen.ErrTooLarge, d.lim.maxText>>20)})
	}
}

// dropRunningHeads removes the running heads and feet of pages (page
// numbers, a chapter title over each page): a short paragraph, not larger
// than the body text, first or last on its page, that is first or last on
// at least runningHeadPages pages, in the same font size, digits aside.
// It returns the paragraphs of all pages in order.
func dropRunningHeads(pages [][]pdfPara) []pdfPara {
	type pos struct {
		last bool
		key  string
		size float64
	}
	body := bodySize(slices.Concat(pages...))
	count := map[pos]int{}
	keyOf := func(p pdfPara, last bool) (pos, bool) {
		if utf8.RuneCountInString(p.text) > 100 || sizeKey(p.size) > body {
			return pos{}, false
		}
		return pos{last, runningHeadKey(p.text), sizeKey(p.size)}, true
	}
	for _, pp := range pages {
		if len(pp) == 0 {
			continue
		}
		if k, ok := keyOf(pp[0], false); ok {
			count[k]++
		}
		if k, ok := keyOf(pp[len(pp)-1], true); ok && len(pp) > 1 {
			count[k]++
		}
	}
	var out []pdfPara
	for _, pp := range pages {
		for i, p := range pp {
			first := i == 0
			last := i == len(pp)-1 && i > 0
			if k, ok := keyOf(p, false); ok && first && count[k] >= runningHeadPages {
				continue
			}
			if k, ok := keyOf(p, true); ok && last && count[k] >= runningHeadPages {
				continue
			}
			out = append(out, p)
		}
	}
	return out
}

// runningHeadPages is how many pages must repeat a paragraph at their top
// or bottom for it to be a running head.
const runningHeadPages = 3

// runningHeadKey is text with its numbers (digits, or a lone lowercase
// roman numeral) replaced by #, so that "Page 3" and "Page 4" compare
// equal.
func runningHeadKey(s string) string {
	if strings.Trim(s, "ivxlc") == "" {
		return "#"
	}
	var b strings.Builder
	digits := false
	for _, r := range s {
		if unicode.IsDigit(r) {
			if !digits {
				b.WriteByte('#')
			}
			digits = true
			continue
		}
		digits = false
		b.WriteRune(r)
	}
	return b.String()
}

// pdfBlocks turns paragraphs into blocks: headings by font size (see
// headingLevels), list items by their bullet.
func pdfBlocks(paras []pdfPara) []freshen.Block {
	levels := headingLevels(paras)
	blocks := make([]freshen.Block, 0, len(paras))
	for _, p := range paras {
		b := freshen.Block{Kind: freshen.BlockParagraph, Text: fixLigatures(p.text), Page: p.page}
		if lvl := levels[sizeKey(p.size)]; lvl > 0 && isHeadingText(p) {
			b.Kind, b.Level = freshen.BlockHeading, lvl
		} else if rest, ok := cutBullet(b.Text); ok {
			b.Kind, b.Text = freshen.BlockListItem, rest
		}
		blocks = append(blocks, b)
	}
	return blocks
}

// sizeKey rounds a font size to half a point, so that sizes that differ
// by rounding in the file compare equal.
func sizeKey(size float64) float64 { return math.Round(size*2) / 2 }

// bodySize returns the font size of the body text: the size of most of
// the text (the smallest of equals), rounded by sizeKey.
func bodySize(paras []pdfPara) float64 {
	weight := map[float64]int{}
	for _, p := range paras {
		weight[sizeKey(p.size)] += len(p.text)
	}
	body, most := 0.0, -1
	for size, w := range weight {
		if w > most || (w == most && size < body) {
			body, most = size, w
		}
	}
	return body
}

// headingLevels gives each size larger than the body text's that short
// paragraphs use a heading level, the largest 1. A size counts as larger
// from 15% and 1 pt over the body.
func headingLevels(paras []pdfPara) map[float64]int {
	body := bodySize(paras)
	var sizes []float64
	for _, p := range paras {
		s := sizeKey(p.size)
		if s >= body*1.15 && s-body >= 1 && isHeadingText(p) && !slices.Contains(sizes, s) {
			sizes = append(sizes, s)
		}
	}
	slices.SortFunc(sizes, func(a, b float64) int { return cmp.Compare(b, a) })
	levels := map[float64]int{}
	for i, s := range sizes {
		levels[s] = min(i+1, 6)
	}
	return levels
}

// isHeadingText reports a paragraph short enough to be a heading, with a
// letter in it.
func isHeadingText(p pdfPara) bool {
	return p.lines <= 3 && utf8.RuneCountInString(p.text) <= 200 && strings.IndexFunc(p.text, unicode.IsLetter) >= 0
}

// cutBullet strips a leading bullet character and the space after it.
func cutBullet(s string) (string, bool) {
	r, n := utf8.DecodeRuneInString(s)
	switch r {
	case '•', '◦', '▪', '▫', '‣', '⁃', '∙', '●', '○', '■', '□', '➢', '➤', '►', '\uf0b7', '\uf0a7': // the last two: Symbol and Wingdings bullets
	default:
		return s, false
	}
	rest := strings.TrimLeftFunc(s[n:], unicode.IsSpace)
	if rest == "" || len(rest) == len(s[n:]) {
		return s, false
	}
	return rest, true
}

// ligatures maps the Unicode ligatures fonts map glyphs to onto their
// letters, which is what a search matches.
var ligatures = strings.NewReplacer("\uFB00", "ff", "\uFB01", "fi", "\uFB02", "fl", "\uFB03", "ffi", "\uFB04", "ffl", "\uFB05", "st", "\uFB06", "st")

func fixLigatures(s string) string {
	if strings.ContainsFunc(s, func(r rune) bool { return r >= 0xFB00 && r <= 0xFB06 }) {
		return ligatures.Replace(s)
	}
	return s
}
