package extract

import (
	"bytes"
	"cmp"
	"compress/zlib"
	"encoding/ascii85"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/freshen-io/freshen"
)

// github.com/ledongthuc/pdf recovers most of its own panics, but some
// inputs make it fail in ways no recover catches, and a few bytes suffice:
//
//   - it allocates its cross-reference table from numbers in the file (a
//     /Size, a subsection start, an /Index pair, the /W field widths, a
//     predictor's /Columns): a huge one is a fatal out-of-memory error;
//   - it resolves an object stored in an object stream by resolving the
//     stream first, and the stream's own dictionary entries likewise: an
//     object stream that is stored in an object stream, or whose
//     dictionary refers to an object in an object stream, recurses until
//     the stack overflows (also fatal);
//   - it follows /Prev links between cross-reference sections without
//     remembering where it has been: a loop never ends;
//   - it loops up to an object stream's /N without reading anything once
//     the stream is exhausted.
//
// checkPDF reads the cross-reference sections as the library will (from
// the startxref at the end, along the /Prev links) and refuses a file with
// any of these before the library sees it. Where it cannot read a section
// that the library could, it refuses too, so nothing unchecked gets
// through; the library refuses those files anyway. Its checks are
// conservative but hold for every file the specification allows (object
// streams may not be stored in object streams, nor their /Length: PDF
// 32000-1:2008, §7.5.7).
//
// Loops that read the file as they go (a cycle of /Extends links, a page
// tree that contains itself) are cut by the deadline instead, which
// pdfFile checks on every read.

// pdfStructure is what checkPDF learned about a file.
type pdfStructure struct {
	// encrypted: the newest trailer has an /Encrypt entry.
	encrypted bool
}

// maxXrefSections bounds the cross-reference sections followed through
// /Prev links: one per incremental update.
const maxXrefSections = 1024

// maxPredictorColumns bounds the row width of a PNG predictor: the
// library allocates a row buffer of that size.
const maxPredictorColumns = 1 << 20

// errMalformedPDF is the reason given for a file that is not a readable
// PDF.
func errMalformedPDF(format string, args ...any) error {
	return fmt.Errorf("%w: malformed PDF: %s", freshen.ErrUnsupported, fmt.Sprintf(format, args...))
}

// pdfView returns the part of data the PDF reader should see: from the
// %PDF- header (there may be junk before it, which the library does not
// accept; offsets in such files count from the header) to the last %%EOF
// (there may be junk after it). A header the library would refuse for its
// version only (PDF 2.0, or 1.8) is rewritten as 1.7 in a copy: the
// syntax the extractor needs has not changed.
func pdfView(data []byte) ([]byte, error) {
	start := bytes.Index(data[:min(len(data), pdfHeaderWindow)], []byte("%PDF-"))
	if start < 0 {
		return nil, fmt.Errorf("%w: not a PDF: no %%PDF- header in the first %d bytes", freshen.ErrUnsupported, pdfHeaderWindow)
	}
	view := data[start:]
	const tailWindow = 4096
	tail := max(0, len(view)-tailWindow)
	if i := bytes.LastIndex(view[tail:], []byte("%%EOF")); i >= 0 {
		view = view[:tail+i+len("%%EOF")]
	}
	// The library wants "%PDF-1.x" with x from 0 to 7, then an end of line.
	if len(view) >= 9 {
		h := view[:9]
		version := h[5] >= '0' && h[5] <= '9' && h[6] == '.' && h[7] >= '0' && h[7] <= '9'
		eol := h[8] == '\n' || h[8] == '\r'
		if version && (h[5] != '1' || h[7] > '7' || !eol) && (eol || isPDFSpace(h[8]) || h[8] == '%') {
			view = slices.Clone(view)
			copy(view, "%PDF-1.7\n")
		}
	}
	return view, nil
}

// pdfXref is what checkPDF collects from the cross-reference streams.
type pdfXref struct {
	inStream []pdfPair // object, its object stream
	offsets  []pdfPair // object, the offset of its definition
	entries  int64     // entries read, in all sections
}

type pdfPair struct{ obj, v int64 }

// checkPDF checks the cross-reference structure of b (see the comment
// above) and reports whether the file is encrypted. maxObjects bounds the
// object numbers the library may allocate for. It reads at most a few
// times the size of b: a structure that would need more to check (a
// chain of sections or object streams that overlap, each read to the end
// of the file) is refused.
func checkPDF(b []byte, maxObjects int64) (pdfStructure, error) {
	budget := 4*len(b) + 1<<20
	st, err := checkStructure(b, maxObjects, &budget)
	if budget < 0 {
		return st, errMalformedPDF("its cross-reference structure is too large to check")
	}
	return st, err
}

func checkStructure(b []byte, maxObjects int64, budget *int) (pdfStructure, error) {
	var st pdfStructure
	off, err := findStartXref(b)
	if err != nil {
		return st, err
	}
	var xr pdfXref
	seen := map[int64]bool{}
	first, isStream := true, false
	var size int64
	for n := 0; ; n++ {
		if seen[off] {
			return st, errMalformedPDF("the cross-reference sections form a loop (offset %d)", off)
		}
		if n >= maxXrefSections {
			return st, errMalformedPDF("more than %d cross-reference sections", maxXrefSections)
		}
		seen[off] = true
		var trailer pdfDict
		if first {
			isStream, err = isXrefStream(b, off)
			if err != nil {
				return st, err
			}
		}
		if isStream {
			trailer, err = checkXrefStream(b, off, first, &size, maxObjects, &xr, budget)
		} else {
			trailer, err = checkXrefTable(b, off, maxObjects, budget)
		}
		if err != nil {
			return st, err
		}
		if first {
			_, st.encrypted = trailer["Encrypt"]
			first = false
		}
		prev, ok := trailer["Prev"]
		if !ok {
			break
		}
		if off, ok = prev.(int64); !ok {
			return st, errMalformedPDF("/Prev is not an offset")
		}
	}
	if len(xr.inStream) > 0 {
		if err := checkObjectStreams(b, &xr, maxObjects, budget); err != nil {
			return st, err
		}
	}
	return st, nil
}

// findStartXref finds the offset after the last startxref as the library
// does: on a line of its own in the last 100 bytes, the file ending with
// %%EOF.
func findStartXref(b []byte) (int64, error) {
	const endChunk = 100
	if len(b) < endChunk {
		return 0, errMalformedPDF("truncated: %d bytes", len(b))
	}
	tail := bytes.TrimRight(b[len(b)-endChunk:], "\r\n\t ")
	if !bytes.HasSuffix(tail, []byte("%%EOF")) {
		return 0, errMalformedPDF("no %%%%EOF at the end: the file is truncated")
	}
	i := findLastLine(tail, "startxref")
	if i < 0 {
		return 0, errMalformedPDF("no startxref at the end")
	}
	l := pdfLexer{b: b, pos: len(b) - endChunk + i + len("startxref")}
	tok, _ := l.token()
	off, ok := tok.(int64)
	if !ok || off < 0 || off >= int64(len(b)) {
		return 0, errMalformedPDF("startxref is not an offset in the file")
	}
	return off, nil
}

// findLastLine returns the index in buf of the last occurrence of s with a
// line break on both sides, or -1.
func findLastLine(buf []byte, s string) int {
	end := len(buf)
	for {
		i := bytes.LastIndex(buf[:end], []byte(s))
		if i <= 0 || i+len(s) >= len(buf) {
			return -1
		}
		before, after := buf[i-1], buf[i+len(s)]
		if (before == '\n' || before == '\r') && (after == '\n' || after == '\r') {
			return i
		}
		end = i
	}
}

// isXrefStream tells a cross-reference stream ("12 0 obj") from a table
// ("xref") at off.
func isXrefStream(b []byte, off int64) (bool, error) {
	l := pdfLexer{b: b, pos: int(off)}
	tok, _ := l.token()
	switch tok.(type) {
	case pdfKeyword:
		if tok == pdfKeyword("xref") {
			return false, nil
		}
	case int64:
		return true, nil
	}
	return false, errMalformedPDF("no cross-reference table at offset %d", off)
}

// checkXrefTable reads a classic cross-reference table and its trailer.
func checkXrefTable(b []byte, off, maxObjects int64, budget *int) (pdfDict, error) {
	if off < 0 || off >= int64(len(b)) {
		return nil, errMalformedPDF("cross-reference offset %d is outside the file", off)
	}
	l := pdfLexer{b: b, pos: int(off), budget: budget}
	if tok, _ := l.token(); tok != pdfKeyword("xref") {
		return nil, errMalformedPDF("no cross-reference table at offset %d", off)
	}
	for {
		tok, ok := l.token()
		if !ok {
			return nil, errMalformedPDF("cross-reference table without a trailer")
		}
		if tok == pdfKeyword("trailer") {
			break
		}
		start, ok1 := tok.(int64)
		tok, _ = l.token()
		n, ok2 := tok.(int64)
		if !ok1 || !ok2 {
			return nil, errMalformedPDF("bad cross-reference subsection header")
		}
		if n > 0 && (start < 0 || start > maxObjects-n) {
			return nil, errMalformedPDF("cross-reference subsection %d+%d is over the limit of %d objects for a file this size", start, n, maxObjects)
		}
		for range n {
			t1, _ := l.token()
			t2, _ := l.token()
			t3, _ := l.token()
			_, ok1 := t1.(int64)
			_, ok2 := t2.(int64)
			if !ok1 || !ok2 || (t3 != pdfKeyword("n") && t3 != pdfKeyword("f")) {
				return nil, errMalformedPDF("bad cross-reference entry")
			}
		}
	}
	t, _ := l.object(true)
	trailer, ok := t.(pdfDict)
	if !ok || trailer == nil {
		return nil, errMalformedPDF("cross-reference table not followed by a trailer dictionary")
	}
	return trailer, nil
}

// readStreamObject reads the dictionary of the stream object "N G obj"
// at off, and returns the object number and where its data starts.
func readStreamObject(b []byte, off int64, budget *int) (id int64, d pdfDict, data int, err error) {
	if off < 0 || off >= int64(len(b)) {
		return 0, nil, 0, errMalformedPDF("offset %d is outside the file", off)
	}
	l := pdfLexer{b: b, pos: int(off), budget: budget}
	t1, _ := l.token()
	t2, _ := l.token()
	t3, _ := l.token()
	t4, _ := l.token()
	id, ok1 := t1.(int64)
	_, ok2 := t2.(int64)
	if !ok1 || !ok2 || t3 != pdfKeyword("obj") || t4 != pdfDelim("<<") {
		return 0, nil, 0, errMalformedPDF("no stream object at offset %d", off)
	}
	d = l.dict(true, 1)
	if tok, _ := l.token(); tok != pdfKeyword("stream") {
		return 0, nil, 0, errMalformedPDF("object %d at offset %d is not a stream", id, off)
	}
	switch {
	case l.pos+1 < len(b) && b[l.pos] == '\r' && b[l.pos+1] == '\n':
		l.pos += 2
	case l.pos < len(b) && (b[l.pos] == '\n' || b[l.pos] == '\r'):
		l.pos++
	default:
		return 0, nil, 0, errMalformedPDF("stream keyword of object %d not followed by an end of line", id)
	}
	return id, d, l.pos, nil
}

// checkXrefStream reads a cross-reference stream, checks the numbers the
// library allocates for, and collects its entries into xr. size is the
// /Size of the newest stream, which bounds the older ones (first says
// which this is), as the library requires.
func checkXrefStream(b []byte, off int64, first bool, size *int64, maxObjects int64, xr *pdfXref, budget *int) (pdfDict, error) {
	_, d, start, err := readStreamObject(b, off, budget)
	if err != nil {
		return nil, err
	}
	if d["Type"] != pdfName("XRef") {
		return nil, errMalformedPDF("the cross-reference stream at offset %d does not have /Type /XRef", off)
	}
	n, ok := d["Size"].(int64)
	if !ok && first {
		return nil, errMalformedPDF("cross-reference stream without a /Size")
	}
	if n < 0 || n > maxObjects {
		return nil, errMalformedPDF("cross-reference stream /Size %d is over the limit of %d objects for a file this size", n, maxObjects)
	}
	if first {
		*size = n
	} else if n > *size {
		return nil, errMalformedPDF("an older cross-reference stream is larger than the newest")
	}
	w, ok := d["W"].(pdfArray)
	if !ok || len(w) < 3 {
		return nil, errMalformedPDF("cross-reference stream without a valid /W")
	}
	widths := make([]int, len(w))
	total := 0
	for i, x := range w {
		v, ok := x.(int64)
		if !ok || v < 0 || v > 16 {
			return nil, errMalformedPDF("cross-reference stream /W holds %v", x)
		}
		widths[i] = int(v)
		total += int(v)
	}
	index := pdfArray{int64(0), n}
	if a, ok := d["Index"].(pdfArray); ok && len(a) > 0 {
		index = a // the library reads an empty array as none
	}
	if len(index)%2 != 0 {
		return nil, errMalformedPDF("cross-reference stream /Index has an odd length")
	}
	var entries int64
	for i := 0; i < len(index); i += 2 {
		s, ok1 := index[i].(int64)
		c, ok2 := index[i+1].(int64)
		if !ok1 || !ok2 {
			return nil, errMalformedPDF("cross-reference stream /Index holds a non-integer")
		}
		if c > 0 && (s < 0 || s > maxObjects-c) {
			return nil, errMalformedPDF("cross-reference stream /Index %d+%d is over the limit of %d objects for a file this size", s, c, maxObjects)
		}
		entries += max(c, 0)
	}
	if xr.entries += entries; xr.entries > 2*maxObjects {
		return nil, errMalformedPDF("the cross-reference streams list more than %d entries, over the limit for a file this size", 2*maxObjects)
	}
	if total == 0 {
		return d, nil // entries of no bytes say nothing
	}
	data, err := decodeXrefStream(b, d, start, entries*int64(total))
	if err != nil {
		return nil, err
	}
	for i := 0; i < len(index); i += 2 {
		s, c := index[i].(int64), index[i+1].(int64)
		for j := range c {
			if len(data) < total {
				return nil, errMalformedPDF("cross-reference stream shorter than its /Index says")
			}
			row := data[:total]
			data = data[total:]
			typ := int64(1)
			if widths[0] > 0 {
				typ = xrefField(row[:widths[0]])
			}
			f2 := xrefField(row[widths[0] : widths[0]+widths[1]])
			switch typ {
			case 1:
				xr.offsets = append(xr.offsets, pdfPair{s + j, f2})
			case 2:
				// The library keeps 32 bits of the stream number.
				xr.inStream = append(xr.inStream, pdfPair{s + j, int64(uint32(f2))})
			}
		}
	}
	return d, nil
}

// xrefField decodes a big-endian field of a cross-reference stream entry,
// wrapping as the library does.
func xrefField(b []byte) int64 {
	var x int64
	for _, c := range b {
		x = x<<8 | int64(c)
	}
	return x
}

// decodeXrefStream returns up to want bytes of a cross-reference stream's
// data, decoded as the library decodes it: while it reads the
// cross-reference streams, it resolves no indirect reference (a /Length,
// /Filter or /DecodeParms given as one counts as absent), and it knows
// only FlateDecode (with no predictor or the PNG Up predictor, 12) and
// ASCII85Decode.
func decodeXrefStream(b []byte, d pdfDict, start int, want int64) ([]byte, error) {
	length, _ := d["Length"].(int64)
	if length <= 0 {
		return nil, nil // read as empty, filters and all
	}
	end := min(int64(start)+length, int64(len(b)))
	var r io.Reader = bytes.NewReader(b[start:end])
	filters, params := pdfArray{}, pdfArray{}
	switch f := d["Filter"].(type) {
	case pdfName:
		filters, params = pdfArray{f}, pdfArray{d["DecodeParms"]}
	case pdfArray:
		filters = f
		params, _ = d["DecodeParms"].(pdfArray)
	}
	for i, f := range filters {
		var p pdfDict
		if i < len(params) {
			p, _ = params[i].(pdfDict)
		}
		switch f {
		case pdfName("FlateDecode"):
			zr, err := zlib.NewReader(r)
			if err != nil {
				return nil, errMalformedPDF("cross-reference stream: %v", err)
			}
			r = zr
			if pred, ok := p["Predictor"]; ok && !isPDFRef(pred) {
				cols, _ := p["Columns"].(int64)
				if pred != int64(12) || cols < 0 || cols > maxPredictorColumns {
					return nil, errMalformedPDF("cross-reference stream: unsupported predictor %v with %d columns", pred, cols)
				}
				r = &pngUp{r: r, row: make([]byte, 1+cols), prev: make([]byte, cols)}
			}
		case pdfName("ASCII85Decode"):
			if len(p) > 0 {
				return nil, errMalformedPDF("cross-reference stream: ASCII85Decode with parameters")
			}
			r = ascii85.NewDecoder(&ascii85Clean{r: r})
		default:
			return nil, errMalformedPDF("cross-reference stream: unsupported filter %v", f)
		}
	}
	data, err := io.ReadAll(io.LimitReader(r, want))
	if err != nil && int64(len(data)) < want {
		return nil, errMalformedPDF("cross-reference stream: %v", err)
	}
	return data, nil
}

// pngUp undoes the PNG Up predictor as the library does: every row starts
// with the filter type 2.
type pngUp struct {
	r    io.Reader
	row  []byte
	prev []byte
	pend []byte
}

func (p *pngUp) Read(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		if len(p.pend) > 0 {
			m := copy(b, p.pend)
			n += m
			b = b[m:]
			p.pend = p.pend[m:]
			continue
		}
		if _, err := io.ReadFull(p.r, p.row); err != nil {
			return n, err
		}
		if p.row[0] != 2 {
			return n, errors.New("malformed PNG-Up encoding")
		}
		for i, c := range p.row[1:] {
			p.prev[i] += c
		}
		if len(p.prev) == 0 {
			continue
		}
		p.pend = p.prev
	}
	return n, nil
}

// ascii85Clean drops the bytes that ASCII85 data may hold but
// encoding/ascii85 refuses, and ends at the ~ of the end marker, as the
// library does.
type ascii85Clean struct {
	r   io.Reader
	eod bool
}

func (a *ascii85Clean) Read(b []byte) (int, error) {
	if a.eod {
		return 0, io.EOF
	}
	n, err := a.r.Read(b)
	out := b[:0]
	for _, c := range b[:n] {
		if c == '~' {
			a.eod = true
			return len(out), io.EOF
		}
		if c >= '!' && c <= 'u' || c == 'z' {
			out = append(out, c)
		}
	}
	return len(out), err
}

func isPDFRef(v any) bool {
	_, ok := v.(pdfRef)
	return ok
}

// checkObjectStreams checks every object stream that an entry of a
// cross-reference stream points into, and the streams they extend.
func checkObjectStreams(b []byte, xr *pdfXref, maxObjects int64, budget *int) error {
	inStream := make(map[int64]bool, len(xr.inStream))
	var queue []int64
	for _, p := range xr.inStream {
		inStream[p.obj] = true
		queue = append(queue, p.v)
	}
	slices.SortFunc(xr.offsets, func(a, b pdfPair) int { return cmp.Compare(a.obj, b.obj) })
	checked := map[int64]bool{}
	for len(queue) > 0 {
		s := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		if checked[s] {
			continue
		}
		checked[s] = true
		if inStream[s] {
			return errMalformedPDF("object stream %d is itself stored in an object stream", s)
		}
		i, _ := slices.BinarySearchFunc(xr.offsets, s, func(p pdfPair, s int64) int { return cmp.Compare(p.obj, s) })
		for ; i < len(xr.offsets) && xr.offsets[i].obj == s; i++ {
			id, d, _, err := readStreamObject(b, xr.offsets[i].v, budget)
			if *budget < 0 {
				return nil
			}
			if err != nil || id != s {
				continue // the library fails on it, and recovers
			}
			if n, ok := d["N"].(int64); ok && n > maxObjects {
				return errMalformedPDF("object stream %d claims %d objects, over the limit of %d for a file this size", s, n, maxObjects)
			}
			for _, k := range slices.Sorted(maps.Keys(d)) {
				v := d[k]
				ref, isRef := v.(pdfRef)
				switch {
				case isRef && (k == "Length" || k == "Extends"):
					if inStream[ref.id] {
						return errMalformedPDF("the /%s of object stream %d is stored in an object stream", k, s)
					}
					if k == "Extends" {
						queue = append(queue, ref.id)
					}
				case hasRef(v, 0):
					return errMalformedPDF("object stream %d has an indirect reference in its /%s", s, k)
				}
			}
			if err := checkPredictor(d["DecodeParms"]); err != nil {
				return fmt.Errorf("object stream %d: %w", s, err)
			}
		}
	}
	return nil
}

// checkPredictor refuses predictor parameters (a dictionary, or an array
// of them) whose row width the library cannot allocate.
func checkPredictor(params any) error {
	var list pdfArray
	switch p := params.(type) {
	case pdfDict:
		list = pdfArray{p}
	case pdfArray:
		list = p
	}
	for _, x := range list {
		p, _ := x.(pdfDict)
		if _, ok := p["Predictor"]; !ok {
			continue
		}
		if cols, ok := pdfInt(p["Columns"]); ok && (cols < 0 || cols > maxPredictorColumns) {
			return errMalformedPDF("predictor with %d columns", cols)
		}
	}
	return nil
}

// hasRef reports an indirect reference anywhere in v.
func hasRef(v any, depth int) bool {
	if depth > maxPDFNesting {
		return true
	}
	switch x := v.(type) {
	case pdfRef:
		return true
	case pdfArray:
		for _, e := range x {
			if hasRef(e, depth+1) {
				return true
			}
		}
	case pdfDict:
		for _, e := range x {
			if hasRef(e, depth+1) {
				return true
			}
		}
	}
	return false
}
