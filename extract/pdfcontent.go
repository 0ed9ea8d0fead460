package extract

import (
	"bytes"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/ledongthuc/pdf"
)

// The content interpreter follows the text operators of a content stream
// (PDF 32000-1:2008, §9.4) and the graphics state they depend on, to know
// where each string is drawn, how large, and what text it is. It ignores
// painting, and draws forms (§8.10) recursively, up to maxFormDepth and
// never into a form it is already drawing.

// pdfMatrix is an affine transformation [a b c d e f].
type pdfMatrix [6]float64

var identityMatrix = pdfMatrix{1, 0, 0, 1, 0, 0}

// mul returns m × n: m applied first.
func (m pdfMatrix) mul(n pdfMatrix) pdfMatrix {
	return pdfMatrix{
		m[0]*n[0] + m[1]*n[2], m[0]*n[1] + m[1]*n[3],
		m[2]*n[0] + m[3]*n[2], m[2]*n[1] + m[3]*n[3],
		m[4]*n[0] + m[5]*n[2] + n[4], m[4]*n[1] + m[5]*n[3] + n[5],
	}
}

// pdfGState is the part of the graphics state that places text.
type pdfGState struct {
	ctm       pdfMatrix
	font      *pdfFont
	fontSize  float64
	charSpace float64
	wordSpace float64
	hScale    float64
	leading   float64
	rise      float64
}

func newGState() pdfGState { return pdfGState{ctm: identityMatrix, hScale: 1} }

// pdfRun is a string drawn on a page: its text, where its baseline starts
// and ends in user space, and its font size there.
type pdfRun struct {
	text           string
	x0, y0, x1, y1 float64
	size           float64
	// rotated: the baseline does not run left to right.
	rotated bool
}

// maxGStateStack bounds the saved graphics states (q without Q).
const maxGStateStack = 256

// maxOperands bounds the operands kept before an operator: no operator
// takes more than a few.
const maxOperands = 64

// defaultFont stands in when no usable font is set: Latin-1 codes, an
// average width.
var defaultFont = &pdfFont{dw: 500, estimated: true, scale: 0.001}

// pdfInterp interprets the content of one page.
type pdfInterp struct {
	d        *pdfDoc
	gs       pdfGState
	saved    []pdfGState
	overflow int // q operators past maxGStateStack
	tm, tlm  pdfMatrix
	runs     []pdfRun
	images   bool // an image is drawn
	tokens   int  // read, for checking the deadline now and then
}

// run interprets content with the resources res; forms lists the forms
// being drawn, outermost first.
func (in *pdfInterp) run(content []byte, res pdf.Value, forms []string) {
	l := pdfLexer{b: content}
	var args []any
	fonts := map[pdfName]*pdfFont{} // by resource name, for Tf
	for {
		v, ok := l.object(false)
		if !ok {
			return
		}
		if in.tokens++; in.tokens%4096 == 0 {
			in.d.file.check()
		}
		kw, isOp := v.(pdfKeyword)
		if !isOp {
			if _, isDelim := v.(pdfDelim); isDelim {
				continue // a stray ] or >>
			}
			if len(args) == maxOperands {
				args = append(args[:0], args[maxOperands/2:]...)
			}
			args = append(args, v)
			continue
		}
		if kw == "BI" {
			in.inlineImage(&l)
		} else {
			in.op(string(kw), args, res, forms, fonts)
		}
		args = args[:0]
	}
}

// nums returns the last n operands as numbers.
func nums(args []any, n int) ([]float64, bool) {
	if len(args) < n {
		return nil, false
	}
	out := make([]float64, n)
	for i, a := range args[len(args)-n:] {
		f, ok := pdfNum(a)
		if !ok || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, false
		}
		out[i] = f
	}
	return out, true
}

func lastArg(args []any) any {
	if len(args) == 0 {
		return nil
	}
	return args[len(args)-1]
}

func (in *pdfInterp) op(op string, args []any, res pdf.Value, forms []string, fonts map[pdfName]*pdfFont) {
	gs := &in.gs
	switch op {
	case "q":
		if len(in.saved) < maxGStateStack {
			in.saved = append(in.saved, *gs)
		} else {
			in.overflow++
		}
	case "Q":
		switch {
		case in.overflow > 0:
			in.overflow--
		case len(in.saved) > 0:
			*gs = in.saved[len(in.saved)-1]
			in.saved = in.saved[:len(in.saved)-1]
		}
	case "cm":
		if m, ok := nums(args, 6); ok {
			gs.ctm = pdfMatrix(m).mul(gs.ctm)
		}
	case "BT":
		in.tm, in.tlm = identityMatrix, identityMatrix
	case "Tf":
		if len(args) >= 2 {
			name, _ := args[len(args)-2].(pdfName)
			if size, ok := pdfNum(args[len(args)-1]); ok {
				gs.fontSize = size
			}
			f, ok := fonts[name]
			if !ok {
				f = in.d.loadFont(pdfKey(pdfKey(res, "Font"), string(name)))
				if len(fonts) < maxCachedFonts {
					fonts[name] = f
				}
			}
			gs.font = f
		}
	case "Tc", "Tw", "Tz", "TL", "Ts":
		n, ok := nums(args, 1)
		if !ok {
			return
		}
		switch op {
		case "Tc":
			gs.charSpace = n[0]
		case "Tw":
			gs.wordSpace = n[0]
		case "Tz":
			gs.hScale = n[0] / 100
		case "TL":
			gs.leading = n[0]
		case "Ts":
			gs.rise = n[0]
		}
	case "Td", "TD":
		if n, ok := nums(args, 2); ok {
			if op == "TD" {
				gs.leading = -n[1]
			}
			in.moveLine(n[0], n[1])
		}
	case "Tm":
		if m, ok := nums(args, 6); ok {
			in.tm, in.tlm = pdfMatrix(m), pdfMatrix(m)
		}
	case "T*":
		in.moveLine(0, -gs.leading)
	case "Tj":
		if s, ok := lastArg(args).(string); ok {
			in.show(s)
		}
	case "'":
		in.moveLine(0, -gs.leading)
		if s, ok := lastArg(args).(string); ok {
			in.show(s)
		}
	case "\"":
		if len(args) >= 3 {
			if n, ok := nums(args[:len(args)-1], 2); ok {
				gs.wordSpace, gs.charSpace = n[0], n[1]
			}
		}
		in.moveLine(0, -gs.leading)
		if s, ok := lastArg(args).(string); ok {
			in.show(s)
		}
	case "TJ":
		a, _ := lastArg(args).(pdfArray)
		for _, e := range a {
			if s, ok := e.(string); ok {
				in.show(s)
			} else if n, ok := pdfNum(e); ok && !math.IsInf(n, 0) && !math.IsNaN(n) {
				in.advance(-n / 1000 * gs.fontSize * gs.hScale)
			}
		}
	case "Do":
		if name, ok := lastArg(args).(pdfName); ok {
			in.xobject(string(name), res, forms)
		}
	}
}

// moveLine starts a new line at an offset from the start of the current
// one.
func (in *pdfInterp) moveLine(tx, ty float64) {
	in.tlm = pdfMatrix{1, 0, 0, 1, tx, ty}.mul(in.tlm)
	in.tm = in.tlm
}

// advance moves the text position along the baseline by tx.
func (in *pdfInterp) advance(tx float64) {
	in.tm[4] += tx * in.tm[0]
	in.tm[5] += tx * in.tm[1]
}

// textMatrix returns the transformation from text space to user space at
// the current position.
func (in *pdfInterp) textMatrix() pdfMatrix {
	gs := &in.gs
	return pdfMatrix{gs.fontSize * gs.hScale, 0, 0, gs.fontSize, 0, gs.rise}.mul(in.tm).mul(gs.ctm)
}

// show draws the string s: decodes its codes to text, and advances the
// text position by their widths.
func (in *pdfInterp) show(s string) {
	gs := &in.gs
	f := gs.font
	if f == nil {
		f = defaultFont
	}
	start := in.textMatrix()
	var b strings.Builder
	for len(s) > 0 {
		code, n := f.next(s)
		if n <= 0 {
			break
		}
		text, ok := f.text(code, s[:n])
		if !ok || strings.ContainsRune(text, utf8.RuneError) {
			// A replacement character is a code the decoder could not
			// map: it says nothing.
			text = strings.ReplaceAll(text, string(utf8.RuneError), "")
			in.d.undecodable++
		}
		b.WriteString(text)
		tx := f.width(code)*gs.fontSize + gs.charSpace
		if n == 1 && code == ' ' {
			tx += gs.wordSpace
		}
		in.advance(tx * gs.hScale)
		s = s[n:]
	}
	if b.Len() == 0 {
		return
	}
	in.d.addText(b.Len())
	end := in.textMatrix()
	m := in.tm.mul(gs.ctm)
	size := math.Abs(gs.fontSize) * math.Hypot(m[2], m[3])
	in.runs = append(in.runs, pdfRun{
		text: b.String(),
		x0:   start[4], y0: start[5], x1: end[4], y1: end[5],
		size:    size,
		rotated: m[0] <= 0 || math.Abs(m[1]) > 0.1*math.Abs(m[0]),
	})
}

// xobject draws the external object name: a form is interpreted, an image
// noted.
func (in *pdfInterp) xobject(name string, res pdf.Value, forms []string) {
	xo := pdfKey(pdfKey(res, "XObject"), name)
	if xo.Kind() != pdf.Stream {
		return
	}
	switch pdfKey(xo, "Subtype").Name() {
	case "Image":
		in.images = true
	case "Form":
		key := xo.String()
		if len(forms) >= maxFormDepth || slices.Contains(forms, key) {
			return
		}
		data, ok := in.d.forms[key]
		if !ok {
			var err error
			data, err = in.d.stream(xo, in.d.lim.maxStream)
			if err != nil {
				in.d.nt.add("pdf: page %d: a form was skipped: %v", in.d.page, err)
				return
			}
			if in.d.formBytes+len(data) <= maxFormCache {
				in.d.forms[key] = data
				in.d.formBytes += len(data)
			}
		}
		saved, tm, tlm := in.gs, in.tm, in.tlm
		if m := pdfKey(xo, "Matrix"); m.Len() == 6 {
			var fm pdfMatrix
			for i := range fm {
				fm[i] = pdfIndex(m, i).Float64()
			}
			in.gs.ctm = fm.mul(in.gs.ctm)
		}
		fres := pdfKey(xo, "Resources")
		if fres.Kind() != pdf.Dict {
			fres = res
		}
		in.run(data, fres, append(forms[:len(forms):len(forms)], key))
		in.gs, in.tm, in.tlm = saved, tm, tlm
	}
}

// inlineImage skips an inline image: its parameters up to ID, then its
// data up to an EI between white space (its length, when given, skips the
// data in one step).
func (in *pdfInterp) inlineImage(l *pdfLexer) {
	in.images = true
	var length int64 = -1
	var prev any
	for {
		v, ok := l.object(false)
		if !ok {
			return
		}
		if v == pdfKeyword("ID") {
			break
		}
		if prev == pdfName("L") || prev == pdfName("Length") {
			if n, ok := v.(int64); ok {
				length = n
			}
		}
		prev = v
	}
	if l.pos < len(l.b) && isPDFSpace(l.b[l.pos]) {
		l.pos++
	}
	if length >= 0 && length <= int64(len(l.b)-l.pos) {
		l.pos += int(length)
	}
	for i := l.pos; ; {
		j := bytes.Index(l.b[i:], []byte("EI"))
		if j < 0 {
			l.pos = len(l.b)
			return
		}
		p := i + j
		before := p == l.pos || isPDFSpace(l.b[p-1])
		after := p+2 == len(l.b) || isPDFSpace(l.b[p+2]) || isPDFDelim(l.b[p+2])
		if before && after {
			l.pos = p + 2
			return
		}
		i = p + 2
	}
}
