// Package extract turns the bytes of an S3 object into a freshen.Document:
// an ordered list of structural blocks (headings, paragraphs, list items,
// code, table rows, quotes, JSON records) that the chunker groups into
// chunks. It is the only place that knows about file formats.
//
// Supported formats are plain text, CSV, Markdown (CommonMark with GFM
// tables), HTML, JSON and JSON Lines. The format is chosen by Detect: the
// object's Content-Type first, then the key's extension, then sniffing the
// first bytes. Binary and unknown content is refused with an error wrapping
// freshen.ErrUnsupported whose text says why, so that `freshen status` can
// show it; so is JSON, JSON Lines or Markdown nested more than 64 levels
// deep, which no one writes by hand (see maxDepth).
//
// What the package must never do:
//   - touch the network or the file system: it reads only the io.Reader it
//     is given;
//   - read without a bound: it reads at most Config.MaxBytes+1 bytes and
//     fails with freshen.ErrTooLarge beyond the limit;
//   - panic on any input, however malformed: bad input is repaired (and the
//     repair recorded in Document.Notes) or refused with an error;
//   - recurse as deep as its input nests: trees are walked with explicit
//     stacks, or their depth is bounded first;
//   - return invalid UTF-8 or NUL bytes in a block, a title or a note.
//
// Block texts are deterministic functions of the object's bytes and its
// detected format, because the chunker hashes them: an unchanged paragraph
// must extract to the same text after any edit elsewhere in the object.
package extract
