package extract

import (
	"bytes"
	"strconv"
)

// This file reads PDF syntax from bytes: the tokens and objects of PDF
// files, content streams and CMaps (PDF 32000-1:2008, §7.2–7.3). The
// extractor uses it where github.com/ledongthuc/pdf cannot be trusted with
// hostile input (see pdfcheck.go) and to interpret page content itself
// (see pdfcontent.go). Everything here is bounded: objects nest at most
// maxPDFNesting deep, an array or a dictionary keeps at most
// maxPDFElements entries (the rest are read and dropped), and nothing
// recurses deeper than the nesting bound.

const (
	// maxPDFNesting bounds the nesting of arrays and dictionaries. Content
	// streams nest two or three levels (a TJ array, an inline image
	// dictionary, marked content properties); deeper is malformed.
	maxPDFNesting = 32
	// maxPDFElements bounds the entries kept from one array or dictionary:
	// the largest legitimate ones are font width arrays and TJ arrays, a
	// few thousand entries.
	maxPDFElements = 1 << 16
)

// pdfName is a PDF name, without its slash and with #xx escapes decoded.
type pdfName string

// pdfKeyword is a bare word: an operator in a content stream, or one of
// obj, endobj, R, stream, xref, trailer... in a file. true, false and null
// are read as Go values instead.
type pdfKeyword string

// pdfRef is an indirect reference, "12 0 R".
type pdfRef struct {
	id  int64
	gen int64
}

// pdfDict is a PDF dictionary.
type pdfDict map[pdfName]any

// pdfArray is a PDF array.
type pdfArray []any

// pdfDelim is one of the delimiters that open or close a container: [ ] <<
// >> { }.
type pdfDelim string

// A PDF object read by pdfLexer is one of: nil (null), bool, int64,
// float64, string (a string's bytes, literal or hex), pdfName, pdfArray,
// pdfDict, or pdfRef.

// pdfLexer reads tokens and objects from b, starting at pos. If budget is
// not nil, the lexer reads no more than that many bytes in all: the bytes
// it reads are taken from it, and once it is spent the input ends.
type pdfLexer struct {
	b      []byte
	pos    int
	budget *int
}

func isPDFSpace(c byte) bool {
	switch c {
	case 0, '\t', '\n', '\f', '\r', ' ':
		return true
	}
	return false
}

func isPDFDelim(c byte) bool {
	switch c {
	case '(', ')', '<', '>', '[', ']', '{', '}', '/', '%':
		return true
	}
	return false
}

// skipSpace skips white space and comments.
func (l *pdfLexer) skipSpace() {
	for l.pos < len(l.b) {
		c := l.b[l.pos]
		switch {
		case isPDFSpace(c):
			l.pos++
		case c == '%':
			for l.pos < len(l.b) && l.b[l.pos] != '\n' && l.b[l.pos] != '\r' {
				l.pos++
			}
		default:
			return
		}
	}
}

// token returns the next token: nil, bool, int64, float64, string,
// pdfName, pdfKeyword or pdfDelim, and ok false at the end of the input.
// Malformed bytes never fail: a stray delimiter is returned as a
// one-letter keyword, an unterminated string ends at the end of the input.
func (l *pdfLexer) token() (tok any, ok bool) {
	start := l.pos
	tok, ok = l.next()
	if l.budget != nil {
		if *l.budget -= l.pos - start; *l.budget < 0 {
			l.pos = len(l.b)
			return nil, false
		}
	}
	return tok, ok
}

func (l *pdfLexer) next() (tok any, ok bool) {
	l.skipSpace()
	if l.pos >= len(l.b) {
		return nil, false
	}
	c := l.b[l.pos]
	switch c {
	case '(':
		l.pos++
		return l.literalString(), true
	case '<':
		if l.pos+1 < len(l.b) && l.b[l.pos+1] == '<' {
			l.pos += 2
			return pdfDelim("<<"), true
		}
		l.pos++
		return l.hexString(), true
	case '>':
		if l.pos+1 < len(l.b) && l.b[l.pos+1] == '>' {
			l.pos += 2
			return pdfDelim(">>"), true
		}
		l.pos++
		return pdfKeyword(">"), true
	case '[', ']', '{', '}':
		l.pos++
		return pdfDelim(string(c)), true
	case ')':
		l.pos++
		return pdfKeyword(")"), true
	case '/':
		l.pos++
		return l.name(), true
	}
	start := l.pos
	for l.pos < len(l.b) && !isPDFSpace(l.b[l.pos]) && !isPDFDelim(l.b[l.pos]) {
		l.pos++
	}
	word := l.b[start:l.pos]
	switch string(word) {
	case "true":
		return true, true
	case "false":
		return false, true
	case "null":
		return nil, true
	}
	if n, isNum := parsePDFNumber(word); isNum {
		return n, true
	}
	return pdfKeyword(word), true
}

// parsePDFNumber reads an integer (int64) or a real (float64). An integer
// too large for int64 is a real.
func parsePDFNumber(w []byte) (any, bool) {
	if len(w) == 0 || len(w) > 64 {
		return nil, false
	}
	digits, dots := 0, 0
	for i, c := range w {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '.':
			dots++
		case (c == '+' || c == '-') && i == 0:
		default:
			return nil, false
		}
	}
	if digits == 0 || dots > 1 {
		return nil, false
	}
	if dots == 0 {
		if i, err := strconv.ParseInt(string(w), 10, 64); err == nil {
			return i, true
		}
	}
	f, err := strconv.ParseFloat(string(w), 64)
	if err != nil {
		return nil, false
	}
	return f, true
}

func (l *pdfLexer) literalString() string {
	var out []byte
	depth := 1
	for l.pos < len(l.b) {
		c := l.b[l.pos]
		l.pos++
		switch c {
		case '(':
			depth++
		case ')':
			if depth--; depth == 0 {
				return string(out)
			}
		case '\\':
			if l.pos >= len(l.b) {
				return string(out)
			}
			c = l.b[l.pos]
			l.pos++
			switch c {
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			case 'b':
				c = '\b'
			case 'f':
				c = '\f'
			case '\r':
				if l.pos < len(l.b) && l.b[l.pos] == '\n' {
					l.pos++
				}
				continue
			case '\n':
				continue
			case '0', '1', '2', '3', '4', '5', '6', '7':
				x := int(c - '0')
				for i := 0; i < 2 && l.pos < len(l.b) && l.b[l.pos] >= '0' && l.b[l.pos] <= '7'; i++ {
					x = x*8 + int(l.b[l.pos]-'0')
					l.pos++
				}
				c = byte(x)
			}
		}
		out = append(out, c)
	}
	return string(out)
}

func (l *pdfLexer) hexString() string {
	var out []byte
	var hi byte
	half := false
	for l.pos < len(l.b) {
		c := l.b[l.pos]
		l.pos++
		if c == '>' {
			break
		}
		v, ok := unhexPDF(c)
		if !ok {
			continue // white space, or junk: skipped
		}
		if half {
			out = append(out, hi<<4|v)
		} else {
			hi = v
		}
		half = !half
	}
	if half {
		out = append(out, hi<<4)
	}
	return string(out)
}

func unhexPDF(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func (l *pdfLexer) name() pdfName {
	start := l.pos
	for l.pos < len(l.b) && !isPDFSpace(l.b[l.pos]) && !isPDFDelim(l.b[l.pos]) {
		l.pos++
	}
	raw := l.b[start:l.pos]
	if bytes.IndexByte(raw, '#') < 0 {
		return pdfName(raw)
	}
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		if raw[i] == '#' && i+2 < len(raw) {
			h, ok1 := unhexPDF(raw[i+1])
			l, ok2 := unhexPDF(raw[i+2])
			if ok1 && ok2 {
				out = append(out, h<<4|l)
				i += 2
				continue
			}
		}
		out = append(out, raw[i])
	}
	return pdfName(out)
}

// object reads one object. With refs, "12 0 R" is read as a pdfRef (in a
// file; content streams have none). A token that cannot start an object
// (a keyword, a closing delimiter) is returned as is, with ok true; ok is
// false only at the end of the input.
func (l *pdfLexer) object(refs bool) (any, bool) {
	return l.objectAt(refs, 0)
}

func (l *pdfLexer) objectAt(refs bool, depth int) (any, bool) {
	tok, ok := l.token()
	if !ok {
		return nil, false
	}
	switch t := tok.(type) {
	case pdfDelim:
		switch t {
		case "[":
			return l.array(refs, depth+1), true
		case "<<":
			return l.dict(refs, depth+1), true
		}
	case int64:
		if refs && t >= 0 {
			save := l.pos
			if gen, ok := l.token(); ok {
				if g, isInt := gen.(int64); isInt && g >= 0 {
					if r, ok := l.token(); ok && r == pdfKeyword("R") {
						return pdfRef{t, g}, true
					}
				}
			}
			l.pos = save
		}
	}
	return tok, true
}

// array reads the rest of an array whose [ was read. Too deep, it skips
// the array whole and returns nil.
func (l *pdfLexer) array(refs bool, depth int) pdfArray {
	if depth > maxPDFNesting {
		l.skipContainer()
		return nil
	}
	a := pdfArray{}
	for {
		v, ok := l.objectAt(refs, depth)
		if !ok || v == pdfDelim("]") {
			return a
		}
		if _, isDelim := v.(pdfDelim); isDelim {
			continue // a stray >> or }
		}
		if len(a) < maxPDFElements {
			a = append(a, v)
		}
	}
}

// dict reads the rest of a dictionary whose << was read. A value without
// a name before it is dropped. Too deep, it skips the dictionary whole and
// returns nil.
func (l *pdfLexer) dict(refs bool, depth int) pdfDict {
	if depth > maxPDFNesting {
		l.skipContainer()
		return nil
	}
	d := pdfDict{}
	for {
		k, ok := l.objectAt(refs, depth)
		if !ok || k == pdfDelim(">>") {
			return d
		}
		key, isName := k.(pdfName)
		if !isName {
			continue
		}
		v, ok := l.objectAt(refs, depth)
		if !ok || v == pdfDelim(">>") {
			return d
		}
		if len(d) < maxPDFElements {
			d[key] = v
		}
	}
}

// skipContainer skips to the end of the array or dictionary just opened,
// counting brackets but not recursing.
func (l *pdfLexer) skipContainer() {
	depth := 1
	for depth > 0 {
		tok, ok := l.token()
		if !ok {
			return
		}
		switch tok {
		case pdfDelim("["), pdfDelim("<<"):
			depth++
		case pdfDelim("]"), pdfDelim(">>"):
			depth--
		}
	}
}

// pdfInt returns v as an integer: an int64, or a float64 with an integral
// value in range.
func pdfInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case float64:
		if n == float64(int64(n)) && n > -1<<53 && n < 1<<53 {
			return int64(n), true
		}
	}
	return 0, false
}

// pdfNum returns v as a number.
func pdfNum(v any) (float64, bool) {
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}
