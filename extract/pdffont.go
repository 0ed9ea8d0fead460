package extract

import (
	"cmp"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/ledongthuc/pdf"
)

// A PDF string shown on a page is a sequence of character codes of 1 to 4
// bytes, which the font maps to text (through its ToUnicode CMap, else its
// encoding) and to glyph widths (which place the next string). pdfFont
// does both. The ToUnicode CMap is parsed here rather than by the library:
// the library's parser trusts the counts in the CMap (a count of 10^18
// loops, appending, until memory runs out) and decodes each code by a
// linear search.

const (
	// maxCMapBytes bounds the decompressed size of a ToUnicode CMap; the
	// largest real ones (every glyph of a CJK font) are a few hundred KiB.
	maxCMapBytes = 4 << 20
	// maxCMapCodes bounds the codes a CMap maps one by one, ranges
	// included; a range beyond is kept as a range.
	maxCMapCodes = 1 << 17
	// maxCMapRanges bounds the ranges kept as ranges.
	maxCMapRanges = 1 << 12
	// maxCMapText bounds the text one code maps to, in UTF-16 units: a
	// ligature or an abbreviation, not a paragraph.
	maxCMapText = 32
	// maxFontWidths bounds the glyph widths read from one font.
	maxFontWidths = 1 << 16
	// maxDifferences bounds an encoding's /Differences: 256 codes and
	// their positions. The library searches it for every character.
	maxDifferences = 1024
	// maxFontEntries bounds the CMap mappings and glyph widths the fonts
	// of one document keep, together (some 50 bytes each): a few bytes of
	// CMap can map 65,536 codes, and a thousand fonts can share one. Past
	// it, fonts lose their CMaps (and their text) and widths, with a note.
	maxFontEntries = 1 << 22
)

// pdfFont is what the extractor knows of a font.
type pdfFont struct {
	cmap *toUnicode       // from the ToUnicode stream, or nil
	enc  pdf.TextEncoding // the library's simple encoding, or nil
	// composite: a Type0 font, whose codes are two bytes unless its CMap
	// says otherwise.
	composite bool
	// ucs2: a composite font whose codes are UTF-16 (a UCS2 or UTF16
	// predefined CMap), readable without a ToUnicode CMap.
	ucs2 bool
	// Glyph widths, in thousandths of the font size: widths[code-first]
	// for simple fonts, cidWidths for composite ones, dw for the others.
	first     int
	widths    []float64
	cidWidths []cidRange
	dw        float64
	// estimated: the font gives no widths (one of the standard 14 fonts
	// of old PDFs); dw is an average.
	estimated bool
	// scale turns widths into text space units: 1/1000, or a Type3
	// font's FontMatrix.
	scale float64
}

// next splits the first code off raw, returning it and its length.
func (f *pdfFont) next(raw string) (code uint32, n int) {
	if f.cmap != nil && f.cmap.hasSpace {
		for n := 1; n <= 4 && n <= len(raw); n++ {
			c := codeOf(raw[:n])
			for _, r := range f.cmap.space[n-1] {
				if c >= r[0] && c <= r[1] {
					return c, n
				}
			}
		}
	}
	n = 1
	if f.composite {
		n = min(2, len(raw))
	}
	return codeOf(raw[:n]), n
}

func codeOf(b string) uint32 {
	var c uint32
	for i := 0; i < len(b); i++ {
		c = c<<8 | uint32(b[i])
	}
	return c
}

// text returns the text of one code, and false if the font cannot tell.
func (f *pdfFont) text(code uint32, raw string) (string, bool) {
	if f.cmap != nil {
		if s, ok := f.cmap.lookup(code, len(raw)); ok {
			return s, true
		}
	}
	switch {
	case f.composite && f.ucs2:
		return string(utf16.Decode([]uint16{uint16(code)})), true
	case f.composite:
		return "", false
	case f.enc != nil:
		return f.enc.Decode(raw), true
	}
	return string(rune(raw[0])), true // Latin-1: right for ASCII
}

// width returns the advance of a code, in text space units at font size 1.
func (f *pdfFont) width(code uint32) float64 {
	w := f.dw
	if f.composite {
		// The ranges are sorted by their first code.
		i, _ := slices.BinarySearchFunc(f.cidWidths, code, func(r cidRange, c uint32) int { return cmp.Compare(int64(r.lo), int64(c)+1) })
		if i > 0 {
			if r := f.cidWidths[i-1]; code <= r.hi {
				w = r.width(code)
			}
		}
	} else if i := int(code) - f.first; i >= 0 && i < len(f.widths) {
		w = f.widths[i]
	}
	return w * f.scale
}

// loadFont reads the font dictionary v, using the extraction's cache: the
// same font serves many pages, and its CMap is worth parsing once. The
// key is the dictionary's text, references included, which determines
// everything the font does.
func (d *pdfDoc) loadFont(v pdf.Value) *pdfFont {
	if v.Kind() != pdf.Dict {
		return nil
	}
	key := v.String()
	if f, ok := d.fonts[key]; ok {
		return f
	}
	f := &pdfFont{scale: 0.001}
	subtype := pdfKey(v, "Subtype").Name()
	tu := pdfKey(v, "ToUnicode")
	if tu.Kind() == pdf.Stream {
		if data, err := d.stream(tu, maxCMapBytes); err == nil {
			f.cmap = parseToUnicode(data, &d.fontEntries)
		}
	}
	enc := pdfKey(v, "Encoding")
	switch subtype {
	case "Type0":
		f.composite = true
		name := enc.Name()
		f.ucs2 = strings.Contains(name, "UCS2") || strings.Contains(name, "UTF16")
		desc := pdfIndex(pdfKey(v, "DescendantFonts"), 0)
		f.dw = 1000
		if dw := pdfKey(desc, "DW"); dw.Kind() == pdf.Integer || dw.Kind() == pdf.Real {
			f.dw = dw.Float64()
		}
		f.cidWidths = readCIDWidths(pdfKey(desc, "W"), &d.fontEntries)
	default:
		f.first = int(pdfKey(v, "FirstChar").Int64())
		ws := pdfKey(v, "Widths")
		n := min(ws.Len(), 256, max(d.fontEntries, 0))
		d.fontEntries -= n
		for i := range n {
			f.widths = append(f.widths, pdfIndex(ws, i).Float64())
		}
		f.dw = pdfKey(pdfKey(v, "FontDescriptor"), "MissingWidth").Float64()
		if len(f.widths) == 0 {
			f.estimated = true
			f.dw = 500
			if strings.Contains(pdfKey(v, "BaseFont").Name(), "Courier") {
				f.dw = 600
			}
		}
		if subtype == "Type3" {
			if m := pdfIndex(pdfKey(v, "FontMatrix"), 0).Float64(); m > 0 && m < 1 {
				f.scale = m
			}
		}
		f.enc = simpleEncoding(v, enc, tu)
	}
	if d.fontEntries <= 0 {
		d.nt.add("pdf: the fonts hold too many character mappings; text in some fonts was left out")
	}
	if len(d.fonts) < maxCachedFonts {
		d.fonts[key] = f
	}
	return f
}

// maxCachedFonts bounds the font cache of one extraction.
const maxCachedFonts = 4096

// simpleEncoding returns the library's decoder for a simple font, unless
// building it would run the library's CMap parser (the font has a
// ToUnicode stream, which the library prefers when there is no encoding
// or it is Identity-H) or search a huge /Differences array per character.
func simpleEncoding(v, enc, tu pdf.Value) pdf.TextEncoding {
	if tu.Kind() == pdf.Stream && (enc.Kind() == pdf.Null || enc.Name() == "Identity-H") {
		return nil
	}
	if enc.Kind() == pdf.Dict && pdfKey(enc, "Differences").Len() > maxDifferences {
		return nil
	}
	var te pdf.TextEncoding
	if !tryPDF(func() {
		f := pdf.Font{V: v}
		te = f.Encoder()
	}) || te == nil {
		return nil
	}
	return guardedEncoding{te}
}

// guardedEncoding runs a library decoder under tryPDF: a /Differences
// decoder resolves objects as it goes. A code it fails on has no text.
type guardedEncoding struct{ pdf.TextEncoding }

func (g guardedEncoding) Decode(raw string) (s string) {
	tryPDF(func() { s = g.TextEncoding.Decode(raw) })
	return s
}

// cidRange gives the glyphs lo..hi one width, or the widths in list.
type cidRange struct {
	lo, hi uint32
	w      float64
	list   []float64
}

func (r cidRange) width(code uint32) float64 {
	if r.list != nil {
		return r.list[code-r.lo]
	}
	return r.w
}

// readCIDWidths reads a composite font's W array: "c [w1 w2 ...]" gives
// consecutive widths from c, "c1 c2 w" one width for a range. It keeps at
// most maxFontWidths widths, and no more than budget, which it decreases.
// The ranges are returned sorted, overlaps dropped.
func readCIDWidths(w pdf.Value, budget *int) []cidRange {
	var out []cidRange
	n := min(w.Len(), 3*maxFontWidths)
	kept := 0
	for i := 0; i < n && kept < maxFontWidths && *budget > 0; {
		first, next := pdfIndex(w, i), pdfIndex(w, i+1)
		c := first.Int64()
		if first.Kind() != pdf.Integer || c < 0 || c > 0xFFFFFFFF {
			break
		}
		if next.Kind() == pdf.Array {
			r := cidRange{lo: uint32(c)}
			for j := 0; j < next.Len() && kept < maxFontWidths && c+int64(j) <= 0xFFFFFFFF; j++ {
				r.list = append(r.list, pdfIndex(next, j).Float64())
				kept++
			}
			if len(r.list) > 0 {
				r.hi = r.lo + uint32(len(r.list)) - 1
				out = append(out, r)
				*budget -= len(r.list)
			}
			i += 2
			continue
		}
		last := next.Int64()
		if next.Kind() == pdf.Integer && last >= c && last <= 0xFFFFFFFF {
			out = append(out, cidRange{lo: uint32(c), hi: uint32(last), w: pdfIndex(w, i+2).Float64()})
			kept++
			*budget--
		}
		i += 3
	}
	slices.SortStableFunc(out, func(a, b cidRange) int { return cmp.Compare(int64(a.lo), int64(b.lo)) })
	// Drop ranges that overlap an earlier one: the binary search in width
	// needs them disjoint.
	keep := out[:0]
	for _, r := range out {
		if len(keep) == 0 || r.lo > keep[len(keep)-1].hi {
			keep = append(keep, r)
		}
	}
	return keep
}

// toUnicode is a parsed ToUnicode CMap.
type toUnicode struct {
	// space holds the codespace ranges by code length.
	space    [4][][2]uint32
	hasSpace bool
	// codes maps a code (its length in the top byte) to its text.
	codes  map[uint64]string
	ranges []cmapRange
	// budget is what the document has left of maxFontEntries.
	budget *int
}

// cmapRange maps the codes lo..hi of n bytes: to the text of base with its
// last UTF-16 unit incremented by the offset in the range, or to the
// texts in list.
type cmapRange struct {
	n      int
	lo, hi uint32
	base   []uint16
	list   []string
}

func cmapKey(code uint32, n int) uint64 { return uint64(n)<<32 | uint64(code) }

func (m *toUnicode) lookup(code uint32, n int) (string, bool) {
	if s, ok := m.codes[cmapKey(code, n)]; ok {
		return s, true
	}
	for _, r := range m.ranges {
		if r.n == n && code >= r.lo && code <= r.hi {
			return r.text(code - r.lo), true
		}
	}
	return "", false
}

func (r *cmapRange) text(off uint32) string {
	if r.list != nil {
		if int(off) < len(r.list) {
			return r.list[off]
		}
		return ""
	}
	u := append([]uint16(nil), r.base...)
	u[len(u)-1] += uint16(off)
	return string(utf16.Decode(u))
}

// parseToUnicode reads the codespace ranges and the bfchar and bfrange
// mappings of a ToUnicode CMap, and ignores the rest of its PostScript.
// It keeps no more mappings than budget, which it decreases. It returns
// nil if the CMap maps nothing.
func parseToUnicode(data []byte, budget *int) *toUnicode {
	if *budget <= 0 {
		return nil
	}
	m := &toUnicode{codes: map[uint64]string{}, budget: budget}
	l := pdfLexer{b: data}
	var ops []any // operands since the last begin... operator
	for {
		v, ok := l.object(false)
		if !ok {
			break
		}
		kw, isKeyword := v.(pdfKeyword)
		if !isKeyword {
			if len(ops) < 3*10000 {
				ops = append(ops, v)
			}
			continue
		}
		switch kw {
		case "endcodespacerange":
			for i := 0; i+1 < len(ops); i += 2 {
				lo, ok1 := ops[i].(string)
				hi, ok2 := ops[i+1].(string)
				if ok1 && ok2 && len(lo) == len(hi) && len(lo) >= 1 && len(lo) <= 4 {
					m.space[len(lo)-1] = append(m.space[len(lo)-1], [2]uint32{codeOf(lo), codeOf(hi)})
					m.hasSpace = true
				}
			}
		case "endbfchar":
			for i := 0; i+1 < len(ops) && len(m.codes) < maxCMapCodes && *budget > 0; i += 2 {
				src, ok1 := ops[i].(string)
				dst, ok2 := ops[i+1].(string)
				if ok1 && ok2 && len(src) >= 1 && len(src) <= 4 {
					m.codes[cmapKey(codeOf(src), len(src))] = decodeUTF16BE(dst)
					*budget--
				}
			}
		case "endbfrange":
			for i := 0; i+2 < len(ops); i += 3 {
				m.addRange(ops[i], ops[i+1], ops[i+2])
			}
		}
		ops = ops[:0]
	}
	if len(m.codes) == 0 && len(m.ranges) == 0 {
		return nil
	}
	return m
}

// addRange adds the bfrange lo hi dst.
func (m *toUnicode) addRange(lov, hiv, dst any) {
	lo, ok1 := lov.(string)
	hi, ok2 := hiv.(string)
	if !ok1 || !ok2 || len(lo) != len(hi) || len(lo) < 1 || len(lo) > 4 {
		return
	}
	r := cmapRange{n: len(lo), lo: codeOf(lo), hi: codeOf(hi)}
	if r.hi < r.lo {
		return
	}
	switch d := dst.(type) {
	case string:
		r.base = utf16Units(d)
		if len(r.base) == 0 {
			return
		}
	case pdfArray:
		for _, x := range d[:min(len(d), int(r.hi-r.lo)+1)] {
			s, _ := x.(string)
			r.list = append(r.list, decodeUTF16BE(s))
		}
		if r.list == nil {
			return
		}
		r.hi = r.lo + uint32(len(r.list)) - 1
	default:
		return
	}
	size := int(r.hi-r.lo) + 1
	if size+len(m.codes) < maxCMapCodes && size <= *m.budget {
		for c := r.lo; ; c++ {
			m.codes[cmapKey(c, r.n)] = r.text(c - r.lo)
			if c == r.hi {
				break
			}
		}
		*m.budget -= size
		return
	}
	if len(m.ranges) < maxCMapRanges && *m.budget > 0 {
		m.ranges = append(m.ranges, r)
		*m.budget -= 1 + len(r.list)
	}
}

// utf16Units returns the big-endian UTF-16 units of s (at most
// maxCMapText); a single byte is taken as a unit of its own.
func utf16Units(s string) []uint16 {
	if len(s) == 1 {
		return []uint16{uint16(s[0])}
	}
	u := make([]uint16, 0, min(len(s)/2, maxCMapText))
	for i := 0; i+1 < len(s) && len(u) < maxCMapText; i += 2 {
		u = append(u, uint16(s[i])<<8|uint16(s[i+1]))
	}
	return u
}

// decodeUTF16BE decodes the text a CMap maps a code to.
func decodeUTF16BE(s string) string {
	u := utf16Units(s)
	out := string(utf16.Decode(u))
	if !utf8.ValidString(out) {
		return strings.ToValidUTF8(out, "\uFFFD")
	}
	return out
}
