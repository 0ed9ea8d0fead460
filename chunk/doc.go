// Package chunk cuts a freshen.Document into chunks with content-defined
// boundaries, so that an edit re-embeds only the chunk or two around it.
//
// Fixed-size and "recursive" splitters cut by position: one inserted
// paragraph moves every later boundary and every later chunk is embedded
// again. This chunker decides each boundary from the blocks next to it,
// like restic's content-defined chunking decides from the bytes next to a
// cut, but applied to structural blocks:
//
//   - Hard boundary before every heading of level <= HardHeadingLevel.
//     Sections are chunked independently, so nothing crosses them.
//   - Soft boundary after a block whose own hash falls under a threshold
//     proportional to the block's size in tokens (or that precedes a
//     deeper heading), provided MinTokens lie between it and the next such
//     candidate. The decision depends on the block and what follows it up
//     to the next candidate, never on where the chunk started, which is
//     what makes boundaries resynchronize right after an edit.
//   - Forced boundary when the next block would push the chunk over
//     MaxTokens; the cut then goes after the candidate whose hash came
//     closest to the threshold, not at the position where the budget ran
//     out, so the same cut is found again after an edit upstream.
//   - A block larger than MaxTokens is first split into sentences (lines
//     for code), then words, then content-defined pieces of a word, and
//     those pieces are grouped by the same rules.
//
// Identity: ChunkHash = freshen.HashChunk(Version(), Text). Text is exactly
// what is embedded. The heading trail is in Chunk.Headings but neither in
// Text nor in the hash: the embedding does not depend on it, so renaming a
// section re-embeds only the chunk holding that heading (callers that store
// Headings must refresh them as metadata; see Chunk.Headings).
//
// The package must never: read or write anything but its arguments, use
// randomness, the clock or map iteration order in what it returns, depend
// on a particular embedding model or tokenizer, or let a setting or an
// algorithm change alter Split's output without changing Version.
package chunk
