package freshen

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// More sentinel errors, wrapped with %w by implementations.
var (
	// ErrUnsupported reports content that freshen does not index (binary
	// or unknown types). The object is skipped with the reason recorded;
	// retrying does not help.
	ErrUnsupported = errors.New("unsupported content")
	// ErrTooLarge reports an object over the configured size limit.
	ErrTooLarge = errors.New("object too large")
	// ErrPreconditionFailed reports that an object changed between the
	// moment freshen decided on a version and the moment it read it.
	// The key is simply processed again.
	ErrPreconditionFailed = errors.New("object changed while reading")
)

// ObjectInfo is one version of one object, as a Source reports it.
type ObjectInfo struct {
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
	// ETag is the entity tag without surrounding quotes.
	ETag string `json:"etag"`
	// VersionID is empty when the bucket is not versioned.
	VersionID    string    `json:"version_id,omitempty"`
	Size         int64     `json:"size"`
	LastModified time.Time `json:"last_modified"`
	// ContentType is known after Stat, usually not after List.
	ContentType string `json:"content_type,omitempty"`
	// Metadata is the object's user metadata (S3 x-amz-meta-*, names
	// lower-cased, without the prefix), known after Stat.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// ChangeKind says what an event claims happened to a key. It is a hint: the
// worker always reads the key's current state.
type ChangeKind uint8

const (
	ChangeUnknown ChangeKind = iota
	ChangeUpsert
	ChangeDelete
	// ChangeVanished is the reconciler's verdict: the listing that began
	// at EventTime did not have the key. The listing is authoritative for
	// existence: unless another change to the key arrives, or the key is
	// committed after EventTime, the worker removes it without asking
	// the store (whose HEAD may answer for a spelling it normalises, such
	// as "a//b.md" for "a/b.md").
	ChangeVanished
)

func (k ChangeKind) String() string {
	switch k {
	case ChangeUpsert:
		return "upsert"
	case ChangeDelete:
		return "delete"
	case ChangeVanished:
		return "vanished"
	}
	return "unknown"
}

// Change is a normalized hint that a key may have changed, from any event
// transport or from the reconciler.
type Change struct {
	Bucket    string     `json:"bucket"`
	Key       string     `json:"key"`
	Kind      ChangeKind `json:"kind"`
	ETag      string     `json:"etag,omitempty"`
	VersionID string     `json:"version_id,omitempty"`
	// Sequencer orders events for the same key where the store provides
	// it (see CompareSequencers); empty otherwise. freshen does not rely
	// on it: the worker reads the key's current state, and some stores
	// (versitygw) restart their sequencers at 1.
	Sequencer string    `json:"sequencer,omitempty"`
	Size      int64     `json:"size,omitempty"`
	EventTime time.Time `json:"event_time"`
	// Origin names where the hint came from ("webhook", "reconcile", ...),
	// for metrics only.
	Origin string `json:"origin,omitempty"`
}

// BlockKind is the structural role of a block of text.
type BlockKind uint8

const (
	BlockParagraph BlockKind = iota
	BlockHeading
	BlockListItem
	BlockCode
	BlockTableRow
	BlockQuote
	// BlockRecord is one record of a JSON array or one JSONL line.
	BlockRecord
)

var blockKindNames = [...]string{"paragraph", "heading", "list-item", "code", "table-row", "quote", "record"}

func (k BlockKind) String() string {
	if int(k) < len(blockKindNames) {
		return blockKindNames[k]
	}
	return "unknown"
}

// Block is a structural unit of a document: the chunker never cuts inside
// one unless it alone exceeds the chunk budget.
type Block struct {
	Kind BlockKind `json:"kind"`
	// Level is the heading level (1 for a top-level heading); 0 otherwise.
	Level int    `json:"level,omitempty"`
	Text  string `json:"text"`
	// Page is the page (or slide) the block is on, from 1, in formats
	// that have pages (PDF, PowerPoint); 0 otherwise.
	Page int `json:"page,omitempty"`
}

// Document is an object's extracted text.
type Document struct {
	Blocks []Block `json:"blocks"`
	// Title is the document's title where the format has one.
	Title string `json:"title,omitempty"`
	// Notes records what extraction had to repair, such as invalid UTF-8.
	Notes []string `json:"notes,omitempty"`
}

// ChunkHash identifies a chunk's content: hex of a hash over the chunker
// version and the chunk's normalized text. Equal text under the same
// chunker means equal hash, wherever it occurs.
type ChunkHash string

// HashChunk computes the ChunkHash of text under a chunker version.
func HashChunk(chunkerVersion, normalizedText string) ChunkHash {
	h := sha256.New()
	io.WriteString(h, chunkerVersion)
	h.Write([]byte{0})
	io.WriteString(h, normalizedText)
	return ChunkHash(hex.EncodeToString(h.Sum(nil)[:16]))
}

// Chunk is a piece of a document that is embedded as one vector.
type Chunk struct {
	Hash ChunkHash `json:"hash"`
	Text string    `json:"text"`
	// Headings is the trail of headings above the chunk, outermost first.
	Headings []string `json:"headings,omitempty"`
	// Ordinal is the chunk's position in the document, from 0.
	Ordinal int `json:"ordinal"`
	// Tokens is the chunker's estimate of the chunk's length in tokens.
	Tokens int `json:"tokens"`
	// Page and PageEnd are the first and last page (or slide) of the
	// chunk's blocks in paged formats (PDF, PowerPoint); 0 otherwise. Like
	// Ordinal, they are not part of the chunk's identity.
	Page    int `json:"page,omitempty"`
	PageEnd int `json:"page_end,omitempty"`
}

// ChunkID is a chunk's identity in the vector index, derived from where it
// is and what it holds (see MakeChunkID): an unchanged chunk keeps its ID
// across edits elsewhere in the object, so it needs no index write.
type ChunkID string

// MakeChunkID derives the index ID of the occurrence-th chunk with hash h
// in the object bucket/key (occurrence counts from 0 among equal hashes).
func MakeChunkID(bucket, key string, h ChunkHash, occurrence int) ChunkID {
	s := sha256.New()
	io.WriteString(s, bucket)
	s.Write([]byte{0})
	io.WriteString(s, key)
	s.Write([]byte{0})
	io.WriteString(s, string(h))
	s.Write(binary.BigEndian.AppendUint32([]byte{0}, uint32(occurrence)))
	return ChunkID(hex.EncodeToString(s.Sum(nil)[:16]))
}

// Record is one chunk as stored in a vector index.
//
// Ordinal and Headings describe the chunk when it was written: ChunkHash
// covers the text only, so an edit elsewhere that moves a chunk, or renames
// a section above it, keeps its ID and costs no index write, and these two
// fields may lag behind. The ledger holds the current ordinals.
type Record struct {
	ID       ChunkID   `json:"id"`
	Bucket   string    `json:"bucket"`
	Key      string    `json:"key"`
	Hash     ChunkHash `json:"hash"`
	Ordinal  int       `json:"ordinal"`
	Text     string    `json:"text"`
	Headings []string  `json:"headings,omitempty"`
	// Version is the object version the record was written for (see
	// ObjectWrite); indexes that do not keep it leave it empty.
	Version string `json:"version,omitempty"`
	// Metadata is the object's attributes, for filtered search: its user
	// metadata, content type, size and last-modified time, and its
	// sidecar's attributes (see ObjectMetadata).
	Metadata map[string]any `json:"metadata,omitempty"`
	Vector   []float32      `json:"-"`
}

// Query is a nearest-neighbour search.
type Query struct {
	Vector []float32
	K      int
	// Prefix restricts hits to keys starting with it; empty for all.
	Prefix string
	// Filters restrict hits to chunks whose metadata satisfies every one.
	Filters []Filter
}

// Hit is a search result; Record.Vector is not filled.
type Hit struct {
	Record
	// Score is the cosine similarity to the query, higher is closer.
	Score float32 `json:"score"`
}

// Source reads objects from a bucket.
//
// Contract:
//   - List calls fn for each object whose key starts with prefix and sorts
//     after startAfter, in ascending byte order of keys, from the calling
//     goroutine. It streams: memory does not grow with the listing. An
//     error from fn stops the listing and is returned as is.
//   - Stat returns the current version of key, or an error wrapping
//     ErrNotFound.
//   - Open reads exactly the version obj describes (pinned by VersionID,
//     else by ETag); if the object changed since, it fails with an error
//     wrapping ErrPreconditionFailed, and if it is gone, ErrNotFound.
//   - All methods are safe for concurrent use and may be retried.
type Source interface {
	List(ctx context.Context, prefix, startAfter string, fn func(ObjectInfo) error) error
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	Open(ctx context.Context, obj ObjectInfo) (io.ReadCloser, error)
}

// Extractor turns an object's bytes into a Document.
//
// Contract: it fails with an error wrapping ErrUnsupported for content it
// does not index, and never panics on malformed input. Repairs (such as
// replacing invalid UTF-8) are listed in Document.Notes. It is safe for
// concurrent use.
type Extractor interface {
	Extract(ctx context.Context, r io.Reader, obj ObjectInfo) (*Document, error)
}

// Chunker cuts a Document into chunks.
//
// Contract: Split is deterministic (same document and version, same
// chunks) and safe for concurrent use. Version changes whenever a setting
// or the algorithm changes what Split returns; it is part of every
// ChunkHash, so changing it re-chunks explicitly.
type Chunker interface {
	Version() string
	Split(doc *Document) ([]Chunk, error)
}

// Index is a vector index of one model's vectors.
//
// Contract:
//   - Dim is the length of every vector the index holds and accepts: the
//     model's dimension, fixed when the index is opened.
//   - Upsert and Delete are idempotent by ID, so callers may retry them
//     after any error; deleting a missing ID is not an error. A record
//     whose vector is not Dim long fails the whole call with an error
//     wrapping ErrDimension (permanent), and nothing is written.
//   - Search returns at most q.K hits, best first; a query vector that is
//     not Dim long is an error wrapping ErrDimension.
//   - Errors are retryable unless classified otherwise (see IsPermanent).
//   - All methods but Close are safe for concurrent use. Close releases
//     the index's resources; no method may be called after it.
type Index interface {
	Dim() int
	Upsert(ctx context.Context, records []Record) error
	Delete(ctx context.Context, ids []ChunkID) error
	Search(ctx context.Context, q Query) ([]Hit, error)
	Close() error
}

// CompareSequencers orders two S3 event sequencers for the same key: the
// shorter is right-padded with zeros, then they compare as strings (as
// AWS documents). It returns -1, 0 or +1.
func CompareSequencers(a, b string) int {
	for len(a) < len(b) {
		a += "0"
	}
	for len(b) < len(a) {
		b += "0"
	}
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// maxLogKey bounds how much of a key goes into a log line or an error.
const maxLogKey = 200

// KeyForLog returns key as logs and error messages should show it: keys
// can be 1,024 bytes (and a hostile event's far longer), so long ones are
// cut, with their length said.
func KeyForLog(key string) string {
	if len(key) <= maxLogKey {
		return key
	}
	cut := maxLogKey
	for cut > 0 && !utf8.RuneStart(key[cut]) {
		cut--
	}
	return fmt.Sprintf("%s…(%d bytes)", key[:cut], len(key))
}

// ValidKey reports why key cannot name an S3 object, or nil: S3 keys are
// 1 to 1,024 bytes of UTF-8, and freshen refuses NUL bytes, which no
// store accepts and which break logs and databases.
func ValidKey(key string) error {
	switch {
	case key == "":
		return errors.New("empty key")
	case len(key) > 1024:
		return fmt.Errorf("key of %d bytes: S3 keys are at most 1,024", len(key))
	case !utf8.ValidString(key):
		return errors.New("key is not valid UTF-8")
	case strings.IndexByte(key, 0) >= 0:
		return errors.New("key holds a NUL byte")
	}
	return nil
}
