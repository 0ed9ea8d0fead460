package extract

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/freshen-io/freshen"
)

// Word (.docx) and PowerPoint (.pptx) files are Office Open XML packages
// (ECMA-376): zip archives of XML parts, linked by relationship parts
// (_rels/*.rels). This file reads them safely: the archive is untrusted,
// so the number of entries, the uncompressed size of each part read and
// of all of them together, and the nesting of the XML are bounded, and
// every failure is an error wrapping freshen.ErrUnsupported that says
// what is wrong. Only the parts that hold the text are read.

const (
	// maxZipEntries bounds the entries of an archive: a long document has
	// a few dozen parts, a large presentation a few thousand (slides,
	// their notes, layouts, media, and the relationships of each).
	maxZipEntries = 20000
	// maxXMLDepth bounds the nesting of elements in a part. Word nests
	// tables in tables and text boxes in drawings, some fifty levels at
	// most.
	maxXMLDepth = 256
)

// officeLimits bounds the reading of one package.
type officeLimits struct {
	// maxPart bounds the uncompressed size of one part, and maxTotal that
	// of all the parts read.
	maxPart, maxTotal int64
}

// officeLimits returns the limits for a package: its parts may expand to
// eight times MaxBytes (text compresses four to ten times), at least 64
// MiB.
func (e *Extractor) officeLimits() officeLimits {
	n := max(64<<20, 8*e.maxBytes)
	return officeLimits{maxPart: n, maxTotal: n}
}

// Namespaces, in their transitional and strict (ISO 29500) forms.
var (
	nsWord = []string{"http://schemas.openxmlformats.org/wordprocessingml/2006/main", "http://purl.oclc.org/ooxml/wordprocessingml/main"}
	nsDraw = []string{"http://schemas.openxmlformats.org/drawingml/2006/main", "http://purl.oclc.org/ooxml/drawingml/main"}
	nsPres = []string{"http://schemas.openxmlformats.org/presentationml/2006/main", "http://purl.oclc.org/ooxml/presentationml/main"}
	nsMath = []string{"http://schemas.openxmlformats.org/officeDocument/2006/math", "http://purl.oclc.org/ooxml/officeDocument/math"}
	nsRels = []string{"http://schemas.openxmlformats.org/officeDocument/2006/relationships", "http://purl.oclc.org/ooxml/officeDocument/relationships"}
	nsMC   = []string{"http://schemas.openxmlformats.org/markup-compatibility/2006"}
	nsDC   = []string{"http://purl.org/dc/elements/1.1/"}
)

// is reports an element or attribute name in one of the namespaces ns
// with the local name local.
func is(n xml.Name, ns []string, local string) bool {
	if n.Local != local {
		return false
	}
	for _, s := range ns {
		if n.Space == s {
			return true
		}
	}
	return false
}

// attr returns the value of the attribute local (in any namespace, or in
// ns if given).
func attr(e xml.StartElement, local string, ns ...string) string {
	for _, a := range e.Attr {
		if a.Name.Local == local && (ns == nil || is(a.Name, ns, local)) {
			return a.Value
		}
	}
	return ""
}

// ooxml is an open package.
type ooxml struct {
	ctx   context.Context
	what  string               // "Word document", for messages
	files map[string]*zip.File // by lower-cased part name
	lim   officeLimits
	read  int64 // uncompressed bytes read
}

// openOOXML opens the package in data; what names the kind of document
// for messages.
func openOOXML(ctx context.Context, data []byte, lim officeLimits, what string) (*ooxml, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, fmt.Errorf("%w: not a valid %s: the zip archive is damaged (%v)", freshen.ErrUnsupported, what, err)
	}
	if len(zr.File) > maxZipEntries {
		return nil, fmt.Errorf("%w: the %s's zip archive has %d entries, over the limit of %d", freshen.ErrUnsupported, what, len(zr.File), maxZipEntries)
	}
	o := &ooxml{ctx: ctx, what: what, files: make(map[string]*zip.File, len(zr.File)), lim: lim}
	for _, f := range zr.File {
		name := partName(f.Name)
		if _, dup := o.files[name]; !dup {
			o.files[name] = f
		}
	}
	return o, nil
}

// partName normalizes a part name for lookup: part names compare without
// case (ECMA-376 Part 2, §6.2.2), and some writers use backslashes.
func partName(name string) string {
	name = strings.ReplaceAll(name, `\`, "/")
	return strings.ToLower(strings.TrimPrefix(path.Clean("/"+name), "/"))
}

func (o *ooxml) has(name string) bool {
	_, ok := o.files[partName(name)]
	return ok
}

// open opens a part for reading, within the limits.
func (o *ooxml) open(name string) (io.ReadCloser, error) {
	if err := o.ctx.Err(); err != nil {
		return nil, err
	}
	f, ok := o.files[partName(name)]
	if !ok {
		return nil, fmt.Errorf("%w: not a valid %s: no %s part", freshen.ErrUnsupported, o.what, name)
	}
	// archive/zip fails a read past the declared size, so the declared
	// size is a bound that holds.
	size := f.UncompressedSize64
	if size > uint64(o.lim.maxPart) || o.read+int64(size) > o.lim.maxTotal {
		return nil, fmt.Errorf("%w: the %s's part %s expands to %d bytes, over the limit of %d (a zip bomb?)",
			freshen.ErrUnsupported, o.what, name, size, min(o.lim.maxPart, o.lim.maxTotal-o.read))
	}
	o.read += int64(size)
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: not a valid %s: part %s: %v", freshen.ErrUnsupported, o.what, name, err)
	}
	return rc, nil
}

// walk reads the XML part name, calling fn for each token (see walkXML).
// Failing to read the part, or its XML, is an error wrapping
// freshen.ErrUnsupported that names the part; a done context is its error.
func (o *ooxml) walk(name string, fn func(t xml.Token, depth int) (bool, error)) error {
	rc, err := o.open(name)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := walkXML(o.ctx, rc, fn); err != nil {
		return o.malformed(name, err)
	}
	return nil
}

// relationship is an entry of a relationships part.
type relationship struct {
	id, typ, target string
}

// rels returns the relationships of the part name (those of the package
// for ""), with their targets resolved to part names. A missing
// relationships part has none.
func (o *ooxml) rels(name string) ([]relationship, error) {
	dir, file := path.Split(name)
	relsName := dir + "_rels/" + file + ".rels"
	if !o.has(relsName) {
		return nil, nil
	}
	var out []relationship
	err := o.walk(relsName, func(t xml.Token, _ int) (bool, error) {
		if e, ok := t.(xml.StartElement); ok && e.Name.Local == "Relationship" {
			if strings.EqualFold(attr(e, "TargetMode"), "External") {
				return false, nil
			}
			target := attr(e, "Target")
			if !strings.HasPrefix(target, "/") {
				target = path.Join("/", dir, target)
			}
			out = append(out, relationship{attr(e, "Id"), attr(e, "Type"), strings.TrimPrefix(path.Clean(target), "/")})
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// relTarget returns the target of the first relationship of the part name
// whose type ends with /typ, or fallback.
func (o *ooxml) relTarget(name, typ, fallback string) string {
	rels, err := o.rels(name)
	if err != nil {
		return fallback
	}
	for _, r := range rels {
		if strings.HasSuffix(r.typ, "/"+typ) {
			return r.target
		}
	}
	return fallback
}

// title returns dc:title from the package's core properties, if any.
func (o *ooxml) title(nt *notes) string {
	name := o.relTarget("", "core-properties", "docProps/core.xml")
	if !o.has(name) {
		return ""
	}
	var title strings.Builder
	in := false
	err := o.walk(name, func(t xml.Token, _ int) (bool, error) {
		switch t := t.(type) {
		case xml.StartElement:
			in = is(t.Name, nsDC, "title")
		case xml.EndElement:
			if in {
				return true, nil
			}
		case xml.CharData:
			if in {
				title.Write(t)
			}
		}
		return false, nil
	})
	if err != nil {
		nt.add("%s: the document properties cannot be read: %v", o.what, err)
		return ""
	}
	return title.String()
}

// malformed explains an error reading the XML of a part.
func (o *ooxml) malformed(name string, err error) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, errXMLDepth):
		return fmt.Errorf("%w: the %s's part %s has %v", freshen.ErrUnsupported, o.what, name, err)
	}
	return fmt.Errorf("%w: not a valid %s: part %s: %v", freshen.ErrUnsupported, o.what, name, err)
}

// errXMLDepth is the error of XML nested deeper than maxXMLDepth.
var errXMLDepth = fmt.Errorf("XML elements nested more than %d levels deep", maxXMLDepth)

// walkXML calls fn for each token of the XML document r, with the depth of
// the element it is in (1 for the root and the tokens directly in it). fn
// returns true to stop. Elements nested deeper than maxXMLDepth fail the
// walk with errXMLDepth; malformed XML with the decoder's error. The
// context is checked as it goes.
func walkXML(ctx context.Context, r io.Reader, fn func(t xml.Token, depth int) (bool, error)) error {
	dec := xml.NewDecoder(r)
	depth := 0
	for n := 0; ; n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		t, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, ok := t.(xml.StartElement); ok {
			if depth++; depth > maxXMLDepth {
				return errXMLDepth
			}
		}
		stop, err := fn(t, depth)
		if err != nil || stop {
			return err
		}
		if _, ok := t.(xml.EndElement); ok {
			depth--
		}
	}
}

// skipper skips the subtree of an element: start it at the element's
// depth; it reports whether a token at depth is still inside.
type skipper struct{ depth int }

// skipping reports whether t, a token at depth, is inside the skipped
// subtree, and ends the skip at its end element.
func (s *skipper) skipping(t xml.Token, depth int) bool {
	if s.depth == 0 {
		return false
	}
	if _, end := t.(xml.EndElement); end && depth == s.depth {
		s.depth = 0
	}
	return true
}

func (s *skipper) skip(depth int) { s.depth = depth }
