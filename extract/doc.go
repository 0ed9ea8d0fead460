// Package extract turns the bytes of an S3 object into a freshen.Document:
// an ordered list of structural blocks (headings, paragraphs, list items,
// code, table rows, quotes, JSON records) that the chunker groups into
// chunks. It is the only place that knows about file formats.
//
// Supported formats are plain text, CSV, Markdown (CommonMark with GFM
// tables), HTML, JSON and JSON Lines, and three binary formats: PDF (the
// text layer of its pages, with headings recognized by font size; see
// extractPDF), Word documents (.docx: paragraphs, heading styles, lists
// and tables; see extractDOCX) and PowerPoint presentations (.pptx: slide
// titles, text, tables and speaker notes; see extractPPTX). Blocks of PDF
// pages and slides carry their page number in Block.Page. The format is
// chosen by Detect: the object's Content-Type first, then the key's
// extension, then sniffing the first bytes (a PDF by its signature; a zip
// archive is a .docx or .pptx only by its extension or type). Other
// binary and unknown content is refused with an error wrapping
// freshen.ErrUnsupported whose text says why, so that `freshen status` can
// show it; so is JSON, JSON Lines or Markdown nested more than 64 levels
// deep, which no one writes by hand (see maxDepth), and a PDF that is
// encrypted, scanned without a text layer, or malformed.
//
// What the package must never do:
//   - touch the network or the file system: it reads only the io.Reader it
//     is given;
//   - read without a bound: it reads at most Config.MaxBytes+1 bytes and
//     fails with freshen.ErrTooLarge beyond the limit; what the binary
//     formats expand to (zip entries, PDF streams) is bounded too, and so
//     is the time a PDF may take;
//   - panic on any input, however malformed: bad input is repaired (and the
//     repair recorded in Document.Notes) or refused with an error;
//   - recurse as deep as its input nests: trees are walked with explicit
//     stacks, or their depth is bounded first; the PDF library, which
//     recurses and allocates as its input says, is shielded by checks of
//     the file's structure (see pdfcheck.go);
//   - return invalid UTF-8 or NUL bytes in a block, a title or a note.
//
// Block texts are deterministic functions of the object's bytes and its
// detected format, because the chunker hashes them: an unchanged paragraph
// must extract to the same text after any edit elsewhere in the object.
package extract
