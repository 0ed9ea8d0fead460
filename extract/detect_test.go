package extract

import (
	"errors"
	"strings"
	"testing"

	"github.com/freshen-io/freshen"
)

func TestDetect(t *testing.T) {
	png := "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
	tests := []struct {
		name   string
		ct     string
		key    string
		head   string
		want   Format
		errHas string // non-empty: want an error wrapping ErrUnsupported containing this
	}{
		// Content-Type first.
		{name: "type beats extension", ct: "text/markdown; charset=utf-8", key: "a.txt", want: FormatMarkdown},
		{name: "type beats sniff", ct: "text/html", head: `{"a":1}`, want: FormatHTML},
		{name: "type case and spaces", ct: " TEXT/HTML ; charset=x", want: FormatHTML},
		{name: "x-markdown", ct: "text/x-markdown", want: FormatMarkdown},
		{name: "xhtml", ct: "application/xhtml+xml", want: FormatHTML},
		{name: "json type beats md extension", ct: "application/json", key: "a.md", want: FormatJSON},
		{name: "json suffix", ct: "application/geo+json", want: FormatJSON},
		{name: "ndjson", ct: "application/x-ndjson", key: "a.json", want: FormatJSONL},
		{name: "jsonl", ct: "application/jsonl", want: FormatJSONL},
		{name: "jsonlines", ct: "application/x-jsonlines", want: FormatJSONL},
		{name: "csv", ct: "text/csv", want: FormatCSV},
		{name: "other text type", ct: "text/x-python", key: "a.md", want: FormatText},
		{name: "xml is text", ct: "application/xml", want: FormatText},
		{name: "svg is not", ct: "image/svg+xml", key: "a.svg", head: "<svg/>", errHas: "content type image/svg+xml"},
		{name: "zip type", ct: "application/zip", errHas: "content type application/zip is not a supported format"},

		// The binary formats: the type or the extension decides, the
		// content must start like one.
		{name: "pdf type", ct: "application/pdf", key: "a.txt", head: "%PDF-1.4\n", want: FormatPDF},
		{name: "x-pdf type", ct: "application/x-pdf", head: "%PDF-1.4\n", want: FormatPDF},
		{name: "pdf type, empty", ct: "application/pdf", want: FormatPDF},
		{name: "pdf type but png", ct: "application/pdf", head: png, errHas: "content type application/pdf but the content is image/png, not a PDF"},
		{name: "pdf type but text", ct: "application/pdf", head: "hello", errHas: "content type application/pdf but the content is text, not a PDF (no %PDF- header)"},
		{name: "pdf ext", key: "docs/A.PDF", head: "%PDF-1.7\n", want: FormatPDF},
		{name: "pdf ext, junk before the header", key: "a.pdf", head: "junk\r\n%PDF-1.4\n", want: FormatPDF},
		{name: "pdf ext, header too late", key: "a.pdf", head: strings.Repeat(" ", 1024) + "%PDF-1.4\n", errHas: "not a PDF"},
		{name: "pdf ext but html", key: "a.pdf", head: "<!doctype html><p>Not found", errHas: "content is text, not a PDF"},
		{name: "pdf labelled text/plain", ct: "text/plain", key: "a.pdf", head: "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", want: FormatPDF},
		{name: "docx type", ct: "application/vnd.openxmlformats-officedocument.wordprocessingml.document", head: "PK\x03\x04\x14\x00", want: FormatDOCX},
		{name: "pptx type", ct: "application/vnd.openxmlformats-officedocument.presentationml.presentation; x=y", head: "PK\x03\x04\x14\x00", want: FormatPPTX},
		{name: "docx ext", key: "a.docx", head: "PK\x03\x04\x14\x00", want: FormatDOCX},
		{name: "pptx ext, generic type", ct: "binary/octet-stream", key: "talks/Deck.PPTX", head: "PK\x03\x04\x14\x00", want: FormatPPTX},
		{name: "docx ext, empty archive", key: "a.docx", head: "PK\x05\x06" + strings.Repeat("\x00", 18), want: FormatDOCX},
		{name: "docx ext but pdf", key: "a.docx", head: "%PDF-1.4\n", errHas: "content is application/pdf, not a Word document (a .docx file is a zip archive)"},
		{name: "pptx type but text", ct: "application/vnd.openxmlformats-officedocument.presentationml.presentation", head: "slides",
			errHas: "but the content is text, not a PowerPoint presentation"},
		{name: "docx ext, blank", key: "a.docx", head: " \n", want: FormatDOCX},
		{name: "zip sniffed stays unsupported", head: "PK\x03\x04\x14\x00", errHas: "content is application/zip"},
		{name: "zip with another ext", key: "book.xlsx", head: "PK\x03\x04\x14\x00", errHas: "content is application/zip"},
		{name: "unknown type", ct: "application/vnd.foo", head: "text", errHas: "application/vnd.foo"},

		// text/plain yields to a known extension, not to sniffing.
		{name: "text/plain with .md", ct: "text/plain", key: "README.md", want: FormatMarkdown},
		{name: "text/plain with .json", ct: "text/plain; charset=utf-8", key: "a.JSON", want: FormatJSON},
		{name: "text/plain with unknown ext", ct: "text/plain", key: "a.weird", head: "# Title", want: FormatText},
		{name: "text/plain no ext no sniff", ct: "text/plain", head: `{"a":1}`, want: FormatText},

		// Generic types fall through to the extension.
		{name: "octet-stream uses ext", ct: "application/octet-stream", key: "dir/My File+1%.MD", head: "plain", want: FormatMarkdown},
		{name: "binary/octet-stream", ct: "binary/octet-stream", key: "x.JSONL", want: FormatJSONL},
		{name: "empty type", key: "data.ndjson", want: FormatJSONL},
		{name: "malformed type is generic", ct: "garbage", key: "a.html", want: FormatHTML},
		{name: "htm", key: "a.HTM", want: FormatHTML},
		{name: "markdown ext", key: "a.markdown", want: FormatMarkdown},
		{name: "mdx", key: "docs/x.mdx", want: FormatMarkdown},
		{name: "log", key: "a.log", head: "# not a heading", want: FormatText},
		{name: "rst", key: "a.rst", want: FormatText},
		{name: "adoc", key: "a.adoc", want: FormatText},
		{name: "csv ext", key: "a.csv", want: FormatCSV},
		{name: "extension beats sniff", key: "a.txt", head: "<!doctype html>", want: FormatText},
		{name: "dot in dir only", key: "dir.md/README", head: "hello", want: FormatText},
		{name: "trailing slash", key: "a.md/", head: "hello", want: FormatText},

		// Then sniffing.
		{name: "sniff object", head: " \n{\"a\": 1}", want: FormatJSON},
		{name: "sniff pretty object", head: "{\n  \"a\": 1\n}\n", want: FormatJSON},
		{name: "sniff array", head: "[1, 2]", want: FormatJSON},
		{name: "sniff array of objects", head: "[\n {\"a\":1},\n {\"a\":2}\n]", want: FormatJSON},
		{name: "sniff jsonl", head: "{\"a\":1}\n{\"b\":2}\n", want: FormatJSONL},
		{name: "ini section is not json", head: "[section]\nkey=1", want: FormatText},
		{name: "md link is not json", head: "[link](x) text", want: FormatText},
		{name: "sniff doctype", head: "<!DOCTYPE html><html>", want: FormatHTML},
		{name: "sniff html tag", head: "\n<HTML lang=en>", want: FormatHTML},
		{name: "sniff p tag", head: "<p>hello", want: FormatHTML},
		{name: "sniff heading", key: "README", head: "# Title\n\ntext", want: FormatMarkdown},
		{name: "sniff fence", head: "```go\nx\n```", want: FormatMarkdown},
		{name: "sniff two headings", head: "intro\n## A\ntext\n## B\n", want: FormatMarkdown},
		{name: "one comment is not markdown", head: "x = 1\n# comment\n", want: FormatText},
		{name: "shebang is not markdown", head: "#!/bin/sh\necho", want: FormatText},
		{name: "plain", head: "hello world", want: FormatText},
		{name: "empty", want: FormatText},
		{name: "invalid utf-8 is still text", head: "caf\xe9", want: FormatText},
		{name: "utf-16 with BOM", head: "\xff\xfe#\x00 \x00T\x00\n\x00", want: FormatMarkdown},
		{name: "utf-8 BOM", head: "\xef\xbb\xbf{}", want: FormatJSON},

		// Binary content, whatever the route.
		{name: "png sniffed", key: "noext", head: png, errHas: "image/png"},
		{name: "png with text ext", key: "a.txt", head: png, errHas: "content is image/png"},
		{name: "png declared text", ct: "text/plain", head: png, errHas: "content type text/plain but the content is image/png"},
		{name: "gzip", key: "a.json.gz", head: "\x1f\x8b\x08\x00", errHas: "gzip"},
		{name: "pdf sniffed", head: "%PDF-1.4\n", want: FormatPDF},
		{name: "NUL", key: "a.md", head: "ab\x00cd", errHas: "NUL byte at offset 2"},
		{name: "NUL late in window", head: strings.Repeat("a", 8000) + "\x00", errHas: "NUL byte at offset 8000"},
		{name: "NUL past window", head: strings.Repeat("a", 8192) + "\x00", want: FormatText},
		{name: "control bytes undeclared", head: "ab\x01cd", errHas: "control bytes"},
		{name: "control bytes with ext", key: "a.txt", head: "ab\x01cd", want: FormatText},
		{name: "control bytes declared", ct: "text/plain", head: "ab\x01cd", want: FormatText},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Detect(tc.ct, tc.key, []byte(tc.head))
			if tc.errHas != "" {
				if !errors.Is(err, freshen.ErrUnsupported) || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("Detect = %q, %v; want ErrUnsupported containing %q", got, err, tc.errHas)
				}
				if !strings.HasPrefix(err.Error(), "extract: detect ") {
					t.Errorf("error %q lacks the package prefix", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Detect = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
