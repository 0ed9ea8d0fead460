package freshen

import (
	"context"
	"errors"
)

// ErrStaleWrite reports an index write for a key that the index has
// already seen a newer write for (a greater fence): a worker that stalled
// past its lease must not undo a newer commit. Nothing was written; the
// newer writer owns the key.
var ErrStaleWrite = errors.New("stale write: the index already holds a newer write of this key")

// ObjectWrite is one object's change to an index: what one processing of
// one key writes.
type ObjectWrite struct {
	Bucket, Key string
	// Version is the object version the rows are written for: its
	// VersionID where the bucket is versioned, else its ETag; empty when
	// the object is gone.
	Version string
	// Fence orders the writes of one key: the lease's fencing token,
	// which grows with every lease the ledger grants.
	Fence int64
	// Upserts are written (each with Version), Deletes removed.
	Upserts []Record
	Deletes []ChunkID
}

// ObjectWriter is implemented by indexes that apply one object's change
// atomically and fenced: every index an application reads directly.
//
// Contract:
//   - Apply writes all of w or nothing: a reader never sees half of it.
//   - If the index applied a write of w.Key with a greater Fence, Apply
//     writes nothing and returns an error wrapping ErrStaleWrite. A write
//     with an equal Fence is a retry and is applied again (idempotent).
//   - The fence of a key survives the deletion of all its rows.
//   - Fences compare within one ledger's tokens: an index that is also
//     Stamped forgets every fence when it is paired with another ledger
//     (a new ledger's tokens start again from 1).
//   - The pipeline calls Apply instead of Upsert and Delete when the
//     index has it.
type ObjectWriter interface {
	Apply(ctx context.Context, w ObjectWrite) error
}

// Isolated is implemented by ObjectWriters whose Apply is one
// transaction (pgvector): a reader sees exactly one version of an
// object's rows, never a mix. An ObjectWriter without it (Weaviate, which
// has no transactions) writes the new rows before deleting the old ones:
// a reader always sees at least one whole version, and while Apply runs
// some rows of the other.
type Isolated interface {
	ObjectWriter
	Isolated()
}

// Row is an index row without its vector, as verify compares it with the
// ledger.
type Row struct {
	ID          ChunkID
	Bucket, Key string
	Hash        ChunkHash
	// Text is the stored text: verify rehashes it to find rows whose
	// text was changed in the store.
	Text string
	// Version is the object version the row was written for ("" when
	// the index does not record it).
	Version string
}

// RowScanner is implemented by indexes that verify can check.
type RowScanner interface {
	// Rows calls fn for every row of bucket, without vectors, in
	// ascending byte order of (key, id), from the calling goroutine. It
	// streams: memory does not grow with the index. fn must not write to
	// the index.
	Rows(ctx context.Context, bucket string, fn func(Row) error) error
}

// Publisher is implemented by indexes that applications may query
// directly: Publish makes a stable name (a PostgreSQL view, a Weaviate
// alias) refer to this index, atomically, so that a switch of index
// generations moves those applications too. With replace false it only
// creates the name when it does not exist yet.
type Publisher interface {
	Publish(ctx context.Context, name string, replace bool) error
}

// Dropper is implemented by indexes that can delete themselves (the
// storage of an index generation that is no longer wanted).
type Dropper interface {
	Drop(ctx context.Context) error
}
