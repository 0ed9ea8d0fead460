// Package weaviate keeps freshen's chunks in a Weaviate collection (a
// class), laid out for applications to query directly:
//
//	class <Collection>: vectorizer none, HNSW, cosine distance
//	  chunk_id  text    freshen's chunk id
//	  bucket    text    field-tokenized, filterable
//	  key       text    the S3 key; field-tokenized, filterable
//	  hash      text    hash of the chunker version and the text
//	  ordinal   int     position in the document, from 0
//	  headings  text[]  heading trail, outermost first
//	  text      text    the chunk (word-tokenized, for BM25)
//	  version   text    object version (VersionID, else ETag) written for
//	  key_hex   text    hex of key: exact prefix filters (see below)
//	  pos       text    hex of bucket NUL key NUL chunk_id: byte order
//	class <Collection>Fence: one object per bucket/key, fence int;
//	  and the stamp: two objects whose bucket is "freshen:stamp"
//
// A search is GraphQL's nearVector; a hit's score is the cosine
// similarity, 1 - _additional.distance. Each object's UUID is derived from
// its chunk id alone (ObjectID: a UUIDv5), so writes are idempotent and
// Delete, which gets ids only, needs no lookup.
//
// # Prefixes and order
//
// Weaviate cannot match a literal key prefix on the key itself: Like
// treats * and ? as wildcards with no escape, its regular expression's .*
// stops at a newline, and field tokenization trims white space from the
// indexed value. Its sort compares text case-insensitively, not by bytes.
// So each row also carries key_hex and pos, lower-case hex (no wildcard,
// no space, no case): a prefix P of keys is exactly the Like filter
// "hex(P)*" on key_hex, which Weaviate answers by seeking its sorted
// inverted index to hex(P) and walking only that range. Rows walks pos
// the same way (see Rows).
//
// # Foreign objects
//
// Objects another program writes into the collection usually lack pos
// and key_hex (or hold values, or a UUID, that do not match their
// chunk_id), so no walk of pos finds them. Rows yields them after the
// ordered rows, out of key order (those whose bucket is missing or empty
// for every bucket), so that verify reports them as orphans; when counts
// cannot rule them out, finding them costs a cursor over the whole class.
// Such an object whose UUID is not ObjectID(chunk_id) is yielded with the
// ID "uuid:<uuid>", which Delete takes to mean that exact object.
//
// # Stamp, Pair and Scan
//
// The collection knows which ledger it was written with
// (freshen.Stamped), so that a start notices a lost or replaced ledger
// or collection. Stamp's identity, 32 random hex digits, is made at the
// first Stamp and kept in the fence class as the object StampID("self");
// the partner Pair records is the object StampID("partner"). Both have
// bucket "freshen:stamp" (no bucket name holds a colon) and their value
// as key. Pair with a partner other than the stored one deletes every
// fence first (batch deletes, repeated while more match than Weaviate's
// QUERY_MAXIMUM_RESULTS, 10,000 by default, lets one request delete), as
// the new ledger's lease tokens start again from 1; the same partner
// again changes nothing. Dropping the fence class loses the stamp with
// the fences, which a start then notices.
//
// Count is the collection's object count; Scan lists every record with
// its vector, by Weaviate's cursor (UUID order, pages of 500), for a
// rebuild that reuses the vectors (freshen.Scanner).
//
// # What Weaviate does not give
//
// Weaviate has no transactions and no conditional writes. Apply checks
// and advances the key's fence, writes all the new rows (batch
// requests), and only then deletes the old ones: while it runs, a reader
// sees the old rows with some of the new, then the new rows with some of
// the old — one version whole, but not always exactly one version. (A
// search is not a snapshot either: one that overlaps the switch could in
// principle miss rows of both.) The fence check and the writes are
// serialized per key within a process; two processes writing one key at
// the same moment with different fences (a stalled worker whose check
// passed just before a newer lease was granted) can still interleave.
// With ASYNC_INDEXING on, rows reach search some time after a write
// returns. See Apply.
//
// This package must never be the only copy of anything: everything in it
// can be rebuilt from the bucket and the ledger's embedding cache.
package weaviate
