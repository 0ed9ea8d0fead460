package freshen

import (
	"context"
	"time"
)

// ObjectState is the ledger's verdict on an object.
type ObjectState string

const (
	// StateIndexed: the object's chunks are in the index.
	StateIndexed ObjectState = "indexed"
	// StateSkipped: the object is deliberately not indexed (unsupported
	// content, over the size limit); Reason says why. Retrying does not
	// help until the object changes.
	StateSkipped ObjectState = "skipped"
	// StateFailed: processing failed more often than the retry budget
	// allows; the object is parked (a dead letter) with its last error
	// until it changes or is re-driven.
	StateFailed ObjectState = "failed"
)

// ObjectRecord is the ledger's view of one object.
type ObjectRecord struct {
	Bucket       string      `json:"bucket"`
	Key          string      `json:"key"`
	ETag         string      `json:"etag"`
	VersionID    string      `json:"version_id,omitempty"`
	Size         int64       `json:"size"`
	LastModified time.Time   `json:"last_modified"`
	State        ObjectState `json:"state"`
	Reason       string      `json:"reason,omitempty"`
	Chunks       int         `json:"chunks"`
	// Chunker and Model are the versions the chunks were made with; a
	// change of either makes the object stale.
	Chunker   string    `json:"chunker,omitempty"`
	Model     string    `json:"model,omitempty"`
	Attempts  int       `json:"attempts,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ChunkRef is one chunk of an object's committed chunk set.
type ChunkRef struct {
	ID      ChunkID   `json:"id"`
	Hash    ChunkHash `json:"hash"`
	Ordinal int       `json:"ordinal"`
}

// Lease is the exclusive right to process one dirty key for a while.
type Lease struct {
	Bucket string
	Key    string
	// Owner is who holds the lease (set by Lease).
	Owner string
	// Generation counts the changes queued for the key; a lease completes
	// (removes the key from the queue) only if no change arrived since it
	// was taken.
	Generation int64
	// FirstSeen is the time of the earliest change not yet processed.
	FirstSeen time.Time
	Attempts  int
	Origin    string
}

// Intent is the write-ahead record of index writes about to happen for one
// key. While it exists the index may differ from the ledger's chunk set
// for that key, in either direction.
type Intent struct {
	Upserts []ChunkID
	Deletes []ChunkID
}

// Counters are lifetime sums of embedding work: the cost users pay.
type Counters struct {
	ChunksEmbedded int64 `json:"chunks_embedded"`
	ChunksReused   int64 `json:"chunks_reused"`
	TokensEmbedded int64 `json:"tokens_embedded"`
	CharsEmbedded  int64 `json:"chars_embedded"`
}

// Summary is the ledger's totals.
type Summary struct {
	Indexed int `json:"indexed"`
	Skipped int `json:"skipped"`
	Failed  int `json:"failed"`
	Chunks  int `json:"chunks"`
}

// Commit is the outcome of processing one leased key.
type Commit struct {
	// Object is the new state. When Gone is set the object no longer
	// exists and its row is removed instead.
	Object ObjectRecord
	Gone   bool
	// Chunks replaces the key's chunk set (empty for skipped or gone).
	Chunks []ChunkRef
	// Work is added to the lifetime counters. Embedding work is counted
	// when the vectors are cached (see CacheEmbeddings), so a commit
	// carries only ChunksReused.
	Work Counters
}

// Ledger is freshen's durable state: object versions and chunk sets, the
// dirty-key queue with leases, write-ahead intents, the embedding cache
// and the counters.
//
// Contract:
//   - Every method is safe for concurrent use by many workers (and, for
//     implementations on a shared database, many processes).
//   - Enqueue coalesces: a key appears in the queue at most once, keeping
//     the earliest unprocessed change time.
//   - Lease hands a key to one caller at a time until the lease expires;
//     Complete and Fail are no-ops for a lease that has expired and been
//     taken by someone else (they return ErrLeaseLost).
//   - Complete applies c atomically: chunk set, object row, counters,
//     clearing the key's intent and dequeueing it (unless a newer change
//     arrived, which keeps it queued).
//   - Errors are retryable unless they wrap ErrNotFound.
type Ledger interface {
	// Enqueue returns how many of the changes' keys were not queued yet
	// (the others coalesced into a pending entry).
	Enqueue(ctx context.Context, changes []Change) (added int, err error)
	Lease(ctx context.Context, owner string, max int, ttl time.Duration) ([]Lease, error)
	Complete(ctx context.Context, l Lease, c Commit) error
	// Fail records a failed attempt; after maxAttempts the key is parked
	// as StateFailed with the error and leaves the queue.
	Fail(ctx context.Context, l Lease, cause error, retryAt time.Time, maxAttempts int) error
	// Release gives a lease back unprocessed (graceful shutdown).
	Release(ctx context.Context, l Lease) error
	// ReleaseAll frees every lease. Only for a process that knows no other
	// process uses the ledger (it holds the data directory's lock) and is
	// starting up: leases left by a crashed run are then stale.
	ReleaseAll(ctx context.Context) error
	// Backlog returns the number of queued keys and the oldest FirstSeen.
	Backlog(ctx context.Context) (n int, oldest time.Time, err error)

	Object(ctx context.Context, bucket, key string) (ObjectRecord, error)
	Chunks(ctx context.Context, bucket, key string) ([]ChunkRef, error)
	// Objects calls fn for each object of bucket whose key starts with
	// prefix and sorts after startAfter, in ascending byte order of keys.
	Objects(ctx context.Context, bucket, prefix, startAfter string, fn func(ObjectRecord) error) error

	// BeginIntent durably records index writes before they are made.
	BeginIntent(ctx context.Context, bucket, key string, in Intent) error
	// PendingIntent returns the key's unfinished intent, if any.
	PendingIntent(ctx context.Context, bucket, key string) (Intent, bool, error)
	// KeysWithIntents lists keys whose index writes may not have been
	// committed (a crash between index write and ledger commit).
	KeysWithIntents(ctx context.Context) ([]Change, error)

	// CachedEmbeddings returns the cached vectors of model for hashes.
	CachedEmbeddings(ctx context.Context, model string, hashes []ChunkHash) (map[ChunkHash][]float32, error)
	// CacheEmbeddings stores vectors and, in the same transaction, adds
	// the work that made them to the lifetime counters, so the counters
	// survive a crash that happens before the object's commit. It is
	// durable on return.
	CacheEmbeddings(ctx context.Context, model string, vecs map[ChunkHash][]float32, work Counters) error

	Counters(ctx context.Context) (Counters, error)
	// Summary counts objects by state and chunks in total.
	Summary(ctx context.Context) (Summary, error)
	// ObjectsInState lists up to limit objects in state, oldest update first.
	ObjectsInState(ctx context.Context, state ObjectState, limit int) ([]ObjectRecord, error)
	Close() error
}

// ErrLeaseLost reports that a lease expired and the key moved on.
var ErrLeaseLost = errLeaseLost{}

type errLeaseLost struct{}

func (errLeaseLost) Error() string { return "lease lost" }
