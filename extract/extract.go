package extract

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/yuin/goldmark"

	"github.com/freshen-io/freshen"
)

// DefaultMaxBytes is the size limit used when Config.MaxBytes is zero.
const DefaultMaxBytes int64 = 32 << 20

// maxMaxBytes bounds Config.MaxBytes: an object is held in memory whole,
// and parsing needs several times its size, so a limit beyond this is a
// configuration mistake rather than a wish.
const maxMaxBytes int64 = 1 << 30

// sniffLen is how much of the object Detect looks at for binary content.
const sniffLen = 8 << 10

// maxDepth bounds the nesting of arrays and objects in JSON and JSON Lines,
// and of quotes and list items in Markdown; deeper structure is refused
// with an error wrapping freshen.ErrUnsupported that names the depth. No
// document a person reads nests this deep (APIs, configurations and GeoJSON
// stay within about ten levels, Markdown within six), and at 64 levels a
// flattened JSON path is cut to its tail (maxPathLen) unless every key is a
// single letter, so deeper levels could not be told apart anyway; what does
// nest deeper is generated or hostile (100,000 brackets, which
// encoding/json refuses past 10,000 levels, were indexed as plain text: as
// hundreds of chunks of brackets). It also bounds every recursion over a
// parsed value (decoding, flattening, compact JSON). HTML has no
// such limit: real pages nest divs by the dozen, and the HTML parser bounds
// its tree at 512 open elements; beyond, the text is read with the
// tokenizer alone (see extractHTML).
const maxDepth = 64

// errInternal marks a parser that panicked. It is wrapped together with
// freshen.ErrUnsupported so the object is skipped with a reason instead of
// retried forever; tests use it to tell such a bug from a refusal.
var errInternal = errors.New("internal parser failure")

// Config configures an Extractor. The zero Config is valid and means the
// defaults.
type Config struct {
	// MaxBytes is the largest object Extract reads; a larger one fails with
	// an error wrapping freshen.ErrTooLarge. Zero means DefaultMaxBytes.
	MaxBytes int64 `yaml:"max-bytes" json:"max-bytes"`
}

// Validate reports a configuration that New would not honour. It does no
// I/O.
func (c Config) Validate() error {
	if c.MaxBytes < 0 {
		return fmt.Errorf("extract: max-bytes must not be negative, got %d", c.MaxBytes)
	}
	if c.MaxBytes > maxMaxBytes {
		return fmt.Errorf("extract: max-bytes %d is over the limit of %d: objects are held in memory whole", c.MaxBytes, maxMaxBytes)
	}
	return nil
}

// Extractor implements freshen.Extractor for text, CSV, Markdown, HTML,
// JSON, JSON Lines, PDF, Word (.docx) and PowerPoint (.pptx). It is safe
// for concurrent use.
type Extractor struct {
	maxBytes int64
	md       goldmark.Markdown
	// pdfTimeout, if not zero, replaces the time allowed per PDF (see
	// pdfTimeout); tests set it.
	pdfTimeout time.Duration
}

var _ freshen.Extractor = (*Extractor)(nil)

// New returns an Extractor. Zero fields of cfg take their defaults. New does
// not validate: call cfg.Validate first; a MaxBytes that Validate rejects is
// replaced by the nearest valid value (the default for a negative one).
func New(cfg Config) *Extractor {
	maxBytes := cfg.MaxBytes
	switch {
	case maxBytes <= 0:
		maxBytes = DefaultMaxBytes
	case maxBytes > maxMaxBytes:
		maxBytes = maxMaxBytes
	}
	return &Extractor{maxBytes: maxBytes, md: newMarkdown()}
}

// Extract reads r (at most MaxBytes+1 bytes of it) and returns the blocks
// of the object obj describes, in document order. The format comes from
// Detect(obj.ContentType, obj.Key, first bytes).
//
// Errors:
//   - freshen.ErrTooLarge when obj.Size or the bytes read exceed MaxBytes
//     (checked before reading when obj.Size says so), and for a PDF whose
//     streams or text expand past their budgets (see pdfLimits);
//   - freshen.ErrUnsupported for binary or unknown content; for JSON, JSON
//     Lines or Markdown nested more than 64 levels deep; for a PDF that is
//     malformed, encrypted, without text (scanned) or too slow to read;
//     for a .docx or .pptx that is not a valid package or expands past
//     its limits; with the reason in the message; retrying does not help;
//   - the reader's error, wrapped, when reading fails; whether a retry helps
//     depends on the reader;
//   - ctx.Err() when ctx is done before parsing starts, or, for PDF, .docx
//     and .pptx, while parsing.
//
// Empty or blank content yields a Document with no blocks and no error.
// Malformed text is repaired, not refused: invalid UTF-8 is replaced with
// U+FFFD, malformed JSON is indexed as text, bad JSONL lines are skipped,
// a PDF page that cannot be read is skipped, and each repair is listed in
// Document.Notes. Blocks of PDF and .pptx files carry their page (slide)
// number. Every block, the title and
// every note are valid UTF-8 without control characters other than tab and
// newline. Extract never panics and never closes r.
func (e *Extractor) Extract(ctx context.Context, r io.Reader, obj freshen.ObjectInfo) (*freshen.Document, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if obj.Size > e.maxBytes {
		return nil, fmt.Errorf("extract: read %q: %w: size %d is over the limit of %d bytes", obj.Key, freshen.ErrTooLarge, obj.Size, e.maxBytes)
	}
	data, err := readLimited(r, e.maxBytes, obj.Size)
	if err != nil {
		return nil, fmt.Errorf("extract: read %q: %w", obj.Key, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return e.extractBytes(ctx, data, obj)
}

// readLimited reads all of r unless it holds more than limit bytes, in
// which case it fails with ErrTooLarge after reading limit+1 bytes.
func readLimited(r io.Reader, limit, sizeHint int64) ([]byte, error) {
	var buf bytes.Buffer
	if sizeHint > 0 && sizeHint <= limit {
		buf.Grow(int(sizeHint) + 1) // +1 so the EOF probe does not regrow
	}
	n, err := buf.ReadFrom(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", freshen.ErrTooLarge, limit)
	}
	return buf.Bytes(), nil
}

func (e *Extractor) extractBytes(ctx context.Context, raw []byte, obj freshen.ObjectInfo) (doc *freshen.Document, err error) {
	var nt notes
	data, enc := decodeBOM(raw)
	format, err := Detect(obj.ContentType, obj.Key, raw[:min(len(raw), sniffLen)])
	if err != nil {
		return nil, err
	}
	if format.isBinary() {
		return e.extractBinary(ctx, format, raw, obj)
	}
	if enc != "" {
		nt.add("decoded %s text", enc)
	}

	var text string
	if utf8.Valid(data) {
		text = string(data)
	} else {
		text = strings.ToValidUTF8(string(data), "\uFFFD")
		nt.add("repaired invalid UTF-8")
	}
	if strings.IndexByte(text, '\r') >= 0 {
		text = strings.ReplaceAll(text, "\r\n", "\n")
		text = strings.ReplaceAll(text, "\r", "\n")
	}

	doc = &freshen.Document{Blocks: []freshen.Block{}}
	if strings.TrimSpace(text) == "" {
		doc.Notes = nt.result()
		return doc, nil
	}

	defer func() {
		// The parsers are third-party code run on untrusted bytes; a panic
		// there must skip one object, not kill a worker.
		if p := recover(); p != nil {
			doc = nil
			err = fmt.Errorf("extract: parse %s %q: %w: %w: %v", format, obj.Key, freshen.ErrUnsupported, errInternal, p)
		}
	}()

	var blocks []freshen.Block
	switch format {
	case FormatMarkdown:
		blocks, doc.Title, err = extractMarkdown(e.md, text, &nt)
	case FormatHTML:
		blocks, doc.Title = extractHTML(text, &nt)
	case FormatJSON:
		blocks, err = extractJSON(text, &nt)
	case FormatJSONL:
		blocks, err = extractJSONL(text, &nt)
	case FormatCSV:
		blocks = extractCSV(text, &nt)
	default:
		blocks = extractText(text)
	}
	if err != nil {
		return nil, fmt.Errorf("extract: parse %s %q: %w", format, obj.Key, err)
	}
	doc.Blocks = cleanBlocks(blocks, &nt)
	doc.Title = cleanLine(doc.Title, &nt)
	doc.Notes = nt.result()
	return doc, nil
}

// extractBinary extracts the formats that are read from bytes rather than
// text: PDF, .docx and .pptx. Blank content is an empty Document, as for
// the text formats.
func (e *Extractor) extractBinary(ctx context.Context, format Format, data []byte, obj freshen.ObjectInfo) (doc *freshen.Document, err error) {
	doc = &freshen.Document{Blocks: []freshen.Block{}}
	if len(bytes.TrimSpace(data)) == 0 {
		return doc, nil
	}
	var nt notes
	defer func() {
		// As in extractBytes; the PDF reader is the least trusted parser
		// of all. extractPDF turns its own aborts (deadline, context) into
		// errors before they get here.
		if p := recover(); p != nil {
			doc = nil
			err = fmt.Errorf("extract: parse %s %q: %w: %w: %v", format, obj.Key, freshen.ErrUnsupported, errInternal, p)
		}
	}()
	var blocks []freshen.Block
	switch format {
	case FormatPDF:
		blocks, doc.Title, err = extractPDF(ctx, data, e.pdfLimits(len(data)), &nt)
	case FormatDOCX:
		blocks, doc.Title, err = extractDOCX(ctx, data, e.officeLimits(), &nt)
	case FormatPPTX:
		blocks, doc.Title, err = extractPPTX(ctx, data, e.officeLimits(), &nt)
	}
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return nil, err
		}
		return nil, fmt.Errorf("extract: parse %s %q: %w", format, obj.Key, err)
	}
	// The parsers decode text from many encodings; a broken one (or a
	// font mapping codes to lone surrogates) yields invalid UTF-8.
	repaired := false
	for i := range blocks {
		if !utf8.ValidString(blocks[i].Text) {
			blocks[i].Text = strings.ToValidUTF8(blocks[i].Text, "\uFFFD")
			repaired = true
		}
	}
	if !utf8.ValidString(doc.Title) {
		doc.Title = strings.ToValidUTF8(doc.Title, "\uFFFD")
		repaired = true
	}
	if repaired {
		nt.add("repaired invalid UTF-8")
	}
	doc.Blocks = cleanBlocks(blocks, &nt)
	doc.Title = cleanLine(doc.Title, &nt)
	doc.Notes = nt.result()
	return doc, nil
}

// decodeBOM strips a UTF-8 byte order mark, and decodes UTF-16 text that
// starts with one into UTF-8 (naming the encoding it decoded). Unpaired
// surrogates become U+FFFD; a trailing odd byte is dropped.
func decodeBOM(b []byte) ([]byte, string) {
	switch {
	case bytes.HasPrefix(b, []byte{0xEF, 0xBB, 0xBF}):
		return b[3:], ""
	case bytes.HasPrefix(b, []byte{0xFF, 0xFE}):
		return decodeUTF16(b[2:], false), "UTF-16LE"
	case bytes.HasPrefix(b, []byte{0xFE, 0xFF}):
		return decodeUTF16(b[2:], true), "UTF-16BE"
	}
	return b, ""
}

func decodeUTF16(b []byte, bigEndian bool) []byte {
	u := make([]uint16, len(b)/2)
	for i := range u {
		if bigEndian {
			u[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
		} else {
			u[i] = uint16(b[2*i+1])<<8 | uint16(b[2*i])
		}
	}
	out := make([]byte, 0, len(u)*3/2)
	for _, r := range utf16.Decode(u) {
		out = utf8.AppendRune(out, r)
	}
	return out
}

// add appends a block; empty and whitespace-only texts are dropped later by
// cleanBlocks, so callers need not check.
func add(blocks []freshen.Block, kind freshen.BlockKind, level int, text string) []freshen.Block {
	return append(blocks, freshen.Block{Kind: kind, Level: level, Text: text})
}

// cleanBlocks normalizes every block's text by kind and drops empty blocks,
// in place.
func cleanBlocks(blocks []freshen.Block, nt *notes) []freshen.Block {
	out := blocks[:0]
	for _, b := range blocks {
		t := stripControls(b.Text, nt)
		if b.Kind == freshen.BlockCode {
			t = normalizeCode(t)
		} else {
			t = normalizeProse(t)
		}
		if t == "" {
			continue
		}
		b.Text = t
		if b.Kind == freshen.BlockHeading {
			b.Level = min(max(b.Level, 1), 6)
		} else {
			b.Level = 0
		}
		out = append(out, b)
	}
	if out == nil {
		out = []freshen.Block{}
	}
	return out
}

// cleanLine normalizes a one-line text such as a title.
func cleanLine(s string, nt *notes) string {
	return strings.Join(strings.Fields(stripControls(s, nt)), " ")
}

// stripControls removes C0 control characters other than tab and newline,
// and DEL: downstream stores (PostgreSQL text among them) reject NUL, and
// none of them carries meaning in an embedding. Vertical tab and form feed
// become spaces so that the words they separate stay apart.
func stripControls(s string, nt *notes) string {
	i := strings.IndexFunc(s, isStrippedControl)
	if i < 0 {
		return s
	}
	removed := false
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\v' || r == '\f':
			return ' '
		case isStrippedControl(r):
			removed = true
			return -1
		}
		return r
	}, s)
	if removed && nt != nil {
		nt.add("removed control characters")
	}
	return s
}

func isStrippedControl(r rune) bool {
	return (r < 0x20 && r != '\t' && r != '\n') || r == 0x7F
}

// normalizeProse trims every line, collapses runs of white space inside a
// line to one space, and drops empty lines. Line breaks are kept: they carry
// structure in plain text and are what a <br> means.
func normalizeProse(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for line := range strings.SplitSeq(s, "\n") {
		first := true
		for f := range strings.FieldsSeq(line) {
			if first {
				if b.Len() > 0 {
					b.WriteByte('\n')
				}
				first = false
			} else {
				b.WriteByte(' ')
			}
			b.WriteString(f)
		}
	}
	return b.String()
}

// normalizeCode keeps code verbatim except for blank lines before the first
// line with text and white space at the end.
func normalizeCode(s string) string {
	for {
		line, rest, found := strings.Cut(s, "\n")
		if !found || strings.TrimSpace(line) != "" {
			break
		}
		s = rest
	}
	return strings.TrimRightFunc(s, func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' })
}

// maxNotes bounds Document.Notes: a JSONL file with a million bad lines
// needs a count, not a million notes.
const maxNotes = 20

// notes collects what extraction repaired, without duplicates, at most
// maxNotes of them.
type notes struct {
	list    []string
	omitted int
}

func (n *notes) add(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	// Notes quote parser errors, which may quote input bytes.
	msg = strings.ToValidUTF8(msg, "\uFFFD")
	msg = strings.Join(strings.Fields(strings.Map(func(r rune) rune {
		if isStrippedControl(r) {
			return ' '
		}
		return r
	}, msg)), " ")
	for _, m := range n.list {
		if m == msg {
			return
		}
	}
	if len(n.list) >= maxNotes {
		n.omitted++
		return
	}
	n.list = append(n.list, msg)
}

func (n *notes) result() []string {
	if n.omitted > 0 {
		return append(n.list, fmt.Sprintf("%d more notes omitted", n.omitted))
	}
	return n.list
}
