package extract

import (
	"bytes"
	"fmt"
	"net/http"
	"path"
	"strings"

	"github.com/freshen-io/freshen"
)

// Format is a content format that Extract can read.
type Format string

// The formats Detect returns.
const (
	FormatText     Format = "text"
	FormatMarkdown Format = "markdown"
	FormatHTML     Format = "html"
	FormatJSON     Format = "json"
	FormatJSONL    Format = "jsonl"
	// FormatCSV is comma-, semicolon- or tab-separated values: one table
	// row per record.
	FormatCSV Format = "csv"
	// FormatPDF is a PDF document: the text of its pages, with Block.Page
	// set (see extractPDF).
	FormatPDF Format = "pdf"
	// FormatDOCX is a Word document (Office Open XML, .docx).
	FormatDOCX Format = "docx"
	// FormatPPTX is a PowerPoint presentation (Office Open XML, .pptx):
	// the text of its slides, with Block.Page set to the slide number.
	FormatPPTX Format = "pptx"
)

// Media types of the binary formats.
const (
	mediaPDF  = "application/pdf"
	mediaDOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
	mediaPPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
)

// isBinary reports the formats that are read from the object's bytes
// rather than from its text.
func (f Format) isBinary() bool {
	return f == FormatPDF || f == FormatDOCX || f == FormatPPTX
}

// Detect chooses the format of an object from its Content-Type, its key and
// its first bytes (head; Detect looks at up to 8 KiB of it, DetectContentType
// at the first 512), in that order of precedence:
//
//  1. A specific Content-Type (parameters ignored) decides, except that
//     text/plain yields to a known extension (S3 uploaders often label
//     Markdown, JSON or even PDF as text/plain). Any other text/* type is
//     text.
//  2. An empty or generic type (application/octet-stream,
//     binary/octet-stream, ...) falls through to the key's extension,
//     compared case-insensitively.
//  3. Otherwise the head is sniffed: PDF by its %PDF- signature; JSON,
//     JSON Lines, HTML and Markdown by their first lines; anything else
//     that looks like text is text.
//
// The binary formats (PDF, .docx, .pptx) must then start like one: a PDF
// has a %PDF- header in its first 1,024 bytes, an Office document is a zip
// archive. A zip archive is never sniffed: only its extension or its
// Content-Type says which kind of document it is, so an unlabelled zip
// stays unsupported. For the text formats, head is checked for binary
// content: a NUL byte or a signature that net/http.DetectContentType
// recognizes (image/png, application/zip, ...). Either mismatch makes
// Detect fail with an error wrapping freshen.ErrUnsupported that names
// what it saw. So does a Content-Type that is neither generic nor one of
// the supported formats. Empty or blank content passes any check (Extract
// returns an empty Document for it). Detect is pure and cheap; it accepts
// head with a UTF-8 or UTF-16 byte order mark, as Extract does.
func Detect(contentType, key string, head []byte) (Format, error) {
	raw := head[:min(len(head), sniffLen)]
	head, _ = decodeBOM(raw)
	binary, strong := binaryReason(head)
	unsupported := func(reason string, args ...any) (Format, error) {
		return "", fmt.Errorf("extract: detect %q: %w: %s", key, freshen.ErrUnsupported, fmt.Sprintf(reason, args...))
	}

	mt := mediaType(contentType)
	if f, ok := formatOfType(mt); ok {
		if mt == "text/plain" {
			if fe, ok := formatOfKey(key); ok {
				f = fe
			}
		}
		if f.isBinary() {
			if what, ok := signatureMismatch(f, raw, binary); ok {
				return unsupported("content type %s but the content is %s", mt, what)
			}
			return f, nil
		}
		if strong {
			return unsupported("content type %s but the content is %s", mt, binary)
		}
		return f, nil
	}
	if !isGenericType(mt) {
		return unsupported("content type %s is not a supported format", mt)
	}
	if f, ok := formatOfKey(key); ok {
		if f.isBinary() {
			if what, ok := signatureMismatch(f, raw, binary); ok {
				return unsupported("content is %s", what)
			}
			return f, nil
		}
		if strong {
			return unsupported("content is %s", binary)
		}
		return f, nil
	}
	if binary == mediaPDF {
		return FormatPDF, nil
	}
	if binary != "" {
		return unsupported("content is %s", binary)
	}
	return sniff(head), nil
}

// pdfHeaderWindow is how far into an object a PDF header may start: the
// PDF specification lets readers accept junk before it, and Acrobat looks
// this far.
const pdfHeaderWindow = 1024

// signatureMismatch reports whether raw, the first bytes of an object
// detected as the binary format f, does not start like one, and if so
// describes what it is instead; binary is what binaryReason saw in it.
// Blank content matches every format.
func signatureMismatch(f Format, raw []byte, binary string) (string, bool) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return "", false
	}
	var ok bool
	var want string
	switch f {
	case FormatPDF:
		ok = bytes.Contains(raw[:min(len(raw), pdfHeaderWindow)], []byte("%PDF-"))
		want = "a PDF (no %PDF- header)"
	case FormatDOCX:
		ok = isZip(raw)
		want = "a Word document (a .docx file is a zip archive)"
	case FormatPPTX:
		ok = isZip(raw)
		want = "a PowerPoint presentation (a .pptx file is a zip archive)"
	}
	if ok {
		return "", false
	}
	if binary == "" {
		binary = "text"
	}
	return binary + ", not " + want, true
}

// isZip reports bytes that start with a zip local file header, or the end
// record of an empty archive.
func isZip(b []byte) bool {
	return bytes.HasPrefix(b, []byte("PK\x03\x04")) || bytes.HasPrefix(b, []byte("PK\x05\x06"))
}

// binaryReason says whether head looks binary and why. A known signature or
// a NUL byte is strong evidence and overrides a declared text type; other
// control bytes (DetectContentType's application/octet-stream) are weak and
// only refuse content that nothing declared as text.
func binaryReason(head []byte) (reason string, strong bool) {
	ct := mediaType(http.DetectContentType(head))
	if !strings.HasPrefix(ct, "text/") && ct != "application/octet-stream" {
		return ct, true
	}
	if i := bytes.IndexByte(head, 0); i >= 0 {
		return fmt.Sprintf("binary data (NUL byte at offset %d)", i), true
	}
	if ct == "application/octet-stream" {
		return "binary data (application/octet-stream: control bytes)", false
	}
	return "", false
}

// mediaType returns the lower-cased type/subtype of a Content-Type value,
// without parameters. A malformed value yields "" (generic).
func mediaType(contentType string) string {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	if !strings.Contains(mt, "/") {
		return ""
	}
	return mt
}

func formatOfType(mt string) (Format, bool) {
	switch mt {
	case mediaPDF, "application/x-pdf":
		return FormatPDF, true
	case mediaDOCX:
		return FormatDOCX, true
	case mediaPPTX:
		return FormatPPTX, true
	case "text/markdown", "text/x-markdown", "text/x-web-markdown", "text/mdx":
		return FormatMarkdown, true
	case "text/html", "application/xhtml+xml":
		return FormatHTML, true
	case "application/json", "text/json", "application/x-json":
		return FormatJSON, true
	case "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonl",
		"application/jsonlines", "application/x-jsonlines", "text/jsonl":
		return FormatJSONL, true
	case "text/csv", "text/x-csv", "application/csv", "text/tab-separated-values":
		return FormatCSV, true
	case "application/xml", "application/javascript", "application/x-javascript", "application/ecmascript",
		"application/yaml", "application/x-yaml", "application/toml", "application/x-sh",
		"application/sql", "application/x-tex", "application/graphql":
		return FormatText, true
	}
	switch {
	case strings.HasPrefix(mt, "image/"), strings.HasPrefix(mt, "audio/"), strings.HasPrefix(mt, "video/"),
		strings.HasPrefix(mt, "font/"), strings.HasPrefix(mt, "model/"):
		return "", false // image/svg+xml is XML, but not text to index
	case strings.HasSuffix(mt, "+json"):
		return FormatJSON, true
	case strings.HasSuffix(mt, "+xml"):
		return FormatText, true
	case strings.HasPrefix(mt, "text/"):
		return FormatText, true
	}
	return "", false
}

// isGenericType reports a Content-Type that says nothing about the content:
// S3 stores these when the uploader did not know better.
func isGenericType(mt string) bool {
	switch mt {
	case "", "application/octet-stream", "binary/octet-stream", "application/binary",
		"application/unknown", "application/x-unknown", "unknown/unknown",
		"application/force-download", "application/x-download":
		return true
	}
	return false
}

func formatOfKey(key string) (Format, bool) {
	switch strings.ToLower(path.Ext(key)) {
	case ".txt", ".text", ".log", ".rst", ".adoc", ".asciidoc":
		return FormatText, true
	case ".md", ".markdown", ".mdx", ".mkd", ".mdown":
		return FormatMarkdown, true
	case ".htm", ".html", ".xhtml":
		return FormatHTML, true
	case ".json":
		return FormatJSON, true
	case ".jsonl", ".ndjson":
		return FormatJSONL, true
	case ".csv", ".tsv":
		return FormatCSV, true
	case ".pdf":
		return FormatPDF, true
	case ".docx":
		return FormatDOCX, true
	case ".pptx":
		return FormatPPTX, true
	}
	return "", false
}

// sniff guesses the format of text with no declared type. It errs towards
// FormatText, which indexes anything acceptably.
func sniff(head []byte) Format {
	s := strings.TrimLeft(string(head), " \t\r\n")
	lower := strings.ToLower(s[:min(len(s), 64)])
	switch {
	case strings.HasPrefix(s, "{"), looksLikeJSONArray(s):
		if looksLikeJSONL(s) {
			return FormatJSONL
		}
		return FormatJSON
	case strings.HasPrefix(lower, "<!doctype html"), strings.HasPrefix(lower, "<html"),
		strings.HasPrefix(http.DetectContentType(head), "text/html"):
		return FormatHTML
	case looksLikeMarkdown(s):
		return FormatMarkdown
	}
	return FormatText
}

// looksLikeJSONArray tells a JSON array from text that starts with a
// bracket, such as an INI section or a Markdown link.
func looksLikeJSONArray(s string) bool {
	rest, ok := strings.CutPrefix(s, "[")
	if !ok {
		return false
	}
	rest = strings.TrimLeft(rest, " \t\r\n")
	if rest == "" {
		return true // cut off by the sniff window
	}
	switch c := rest[0]; {
	case c == '{' || c == '[' || c == '"' || c == ']' || c == '-' || (c >= '0' && c <= '9'):
		return true
	}
	return strings.HasPrefix(rest, "true") || strings.HasPrefix(rest, "false") || strings.HasPrefix(rest, "null")
}

// looksLikeJSONL reports a first line that is a complete value followed by
// a line that starts another: pretty-printed JSON ends its first line with
// an opening bracket or a comma instead.
func looksLikeJSONL(s string) bool {
	first, rest, ok := strings.Cut(s, "\n")
	if !ok {
		return false
	}
	first = strings.TrimSpace(first)
	if !strings.HasSuffix(first, "}") && !strings.HasSuffix(first, "]") {
		return false
	}
	rest = strings.TrimLeft(rest, " \t\r\n")
	return strings.HasPrefix(rest, "{") || strings.HasPrefix(rest, "[")
}

// looksLikeMarkdown reports text whose first line is an ATX heading or a
// code fence, or that has at least two ATX headings in the sniff window. A
// lone "# comment" deep in a script is not enough.
func looksLikeMarkdown(s string) bool {
	headings := 0
	for i, line := range strings.Split(s, "\n") {
		line = strings.TrimRight(line, "\r")
		if i == 0 && (strings.HasPrefix(line, "```") || strings.HasPrefix(line, "~~~")) {
			return true
		}
		if isATXHeading(line) {
			if i == 0 {
				return true
			}
			headings++
		}
	}
	return headings >= 2
}

func isATXHeading(line string) bool {
	n := 0
	for n < len(line) && line[n] == '#' {
		n++
	}
	if n == 0 || n > 6 || n+1 >= len(line) || line[n] != ' ' {
		return false
	}
	return strings.TrimSpace(line[n:]) != ""
}
