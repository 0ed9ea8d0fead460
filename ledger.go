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
	Chunker string `json:"chunker,omitempty"`
	Model   string `json:"model,omitempty"`
	// Meta identifies the metadata its chunks carry (MetadataHash): a
	// change of it alone rewrites the chunks' metadata, embedding nothing.
	Meta      string    `json:"meta,omitempty"`
	Attempts  int       `json:"attempts,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ChunkRef is one chunk of an object's committed chunk set.
type ChunkRef struct {
	ID      ChunkID   `json:"id"`
	Hash    ChunkHash `json:"hash"`
	Ordinal int       `json:"ordinal"`
}

// Lease is the exclusive right to process one dirty key until Expires.
//
// Token is the lease's fencing token: every lease the ledger grants gets
// a new one, greater than any before it. Only the key's current lease may
// record an intent, commit, fail or release it; a holder whose lease
// expired and was granted to someone else gets ErrLeaseLost from all of
// them, even if it is the same process under the same owner name.
type Lease struct {
	Bucket string
	Key    string
	// Token fences this lease from every other lease of the key.
	Token int64
	// Owner names who holds the lease (for operators; not a fence).
	Owner string
	// Expires is when the lease ends unless extended (see Queue.Extend).
	Expires time.Time
	// Generation counts the changes queued for the key; a lease completes
	// (removes the key from the queue) only if no change arrived since it
	// was taken.
	Generation int64
	// FirstSeen is the time of the earliest change not yet processed.
	FirstSeen time.Time
	Attempts  int
	Origin    string
	// Vanished is set when every change queued for the key was a
	// ChangeVanished (FirstSeen is then the listing's start).
	Vanished bool
	// Fresh is set when an event announced a change to the key (its
	// work is Urgent), unset for backlog the reconciler or a backfill
	// queued.
	Fresh bool
}

// LeaseParams asks for leases.
type LeaseParams struct {
	// Owner names the caller (a process and pool), for operators.
	Owner string
	// Max is the most keys to lease.
	Max int
	// TTL is how long the leases last unless extended.
	TTL time.Duration
	// FreshOnly leases only keys that events announced (Lease.Fresh).
	FreshOnly bool
}

// Failure is a failed attempt at a leased key.
type Failure struct {
	Err error
	// RetryAt is the earliest time the key may be leased again.
	RetryAt time.Time
	// MaxAttempts parks the key once its attempts reach it.
	MaxAttempts int
	// Permanent parks the key now, whatever its attempts.
	Permanent bool
	// NotAttempt records the error and the retry time without counting
	// an attempt (the object changed while being read): such failures
	// never park a key.
	NotAttempt bool
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
	// TokensToday is the part of TokensEmbedded since midnight UTC, by
	// the ledger's clock (read only: adding to it does nothing).
	TokensToday int64 `json:"tokens_today"`
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

// KeyState is what the ledger knows of one key, read in one round trip.
type KeyState struct {
	// Object is the key's row; Known is false when there is none.
	Object ObjectRecord
	Known  bool
	// Chunks is the committed chunk set, in ordinal order.
	Chunks []ChunkRef
	// Intent is the unfinished write-ahead intent; Pending is false when
	// there is none.
	Intent  Intent
	Pending bool
}

// Queue is the dirty-key queue with fenced leases.
//
// Contract:
//   - Enqueue coalesces: a key appears in the queue at most once, keeping
//     the earliest unprocessed change time; the entry is Vanished only
//     while every change merged into it is a ChangeVanished. It returns
//     how many of the changes' keys were not queued yet. It is durable on
//     return.
//   - Lease hands each key to one caller at a time, with a new fencing
//     token, until the lease expires; it never returns a key whose retry
//     time has not come. Keys announced by events (any origin but
//     "reconcile" and "recovery") are leased before the others, each
//     group oldest first, so a backfill never delays a fresh edit.
//   - Extend, Release and Fail (and Complete and BeginIntent) fail with
//     ErrLeaseLost for any lease but the key's current one; nothing
//     changes then. An expired lease that nobody took over is still the
//     current one.
//   - Extend moves the lease's expiry to now+ttl and updates l.Expires.
//   - Release gives a key back unprocessed and uncounted (shutdown, or a
//     failure that was not an attempt); it may be leased again at once.
//   - Fail records a failed attempt; at f.MaxAttempts attempts, or at once
//     when f.Permanent, the key is parked as StateFailed with the error and
//     leaves the queue. With f.NotAttempt it only delays the key.
type Queue interface {
	Enqueue(ctx context.Context, changes []Change) (added int, err error)
	Lease(ctx context.Context, p LeaseParams) ([]Lease, error)
	Extend(ctx context.Context, l *Lease, ttl time.Duration) error
	Release(ctx context.Context, l Lease) error
	Fail(ctx context.Context, l Lease, f Failure) error
	// Backlog returns the number of queued keys and the oldest FirstSeen.
	Backlog(ctx context.Context) (n int, oldest time.Time, err error)
	// Queued reports whether key has a change waiting.
	Queued(ctx context.Context, bucket, key string) (bool, error)
}

// Catalog is the ledger's record of what the index holds for each key.
//
// Contract:
//   - Complete applies c atomically for the current lease l: chunk set,
//     object row, counters, clearing the key's intents and dequeueing it
//     (unless a newer change arrived, which keeps it queued).
//   - BeginIntent durably records index writes before they are made; it
//     fails with ErrLeaseLost unless l is current, so no index write
//     happens without an intent of the current lease. Intents of a key
//     accumulate until its Complete.
//   - Object returns an error wrapping ErrNotFound for an unknown key.
//   - Objects calls fn for each object of bucket whose key starts with
//     prefix and sorts after startAfter, in ascending byte order of keys,
//     from the calling goroutine, outside any transaction; fn may call the
//     ledger. It streams.
type Catalog interface {
	State(ctx context.Context, bucket, key string) (KeyState, error)
	BeginIntent(ctx context.Context, l Lease, in Intent) error
	Complete(ctx context.Context, l Lease, c Commit) error
	// KeysWithIntents lists keys whose index writes may not have been
	// committed (a crash between index write and ledger commit).
	KeysWithIntents(ctx context.Context) ([]Change, error)
	// Reclaim queues each key with a pending intent naming its IDs (none
	// is fine), so that the key's next processing rewrites every chunk it
	// should have (vectors from the cache) and deletes the others named:
	// what a crash leaves, made on purpose when the index and the ledger
	// disagree. It takes no lease (start-up recovery by the process that
	// owns the data) and is idempotent.
	Reclaim(ctx context.Context, keys []Reclaim) error
	Object(ctx context.Context, bucket, key string) (ObjectRecord, error)
	Objects(ctx context.Context, bucket, prefix, startAfter string, fn func(ObjectRecord) error) error
	// ObjectsInState lists up to limit objects in state, oldest update first.
	ObjectsInState(ctx context.Context, state ObjectState, limit int) ([]ObjectRecord, error)
	// Summary counts objects by state and chunks in total.
	Summary(ctx context.Context) (Summary, error)
}

// EmbeddingCache stores vectors by (model, chunk hash).
//
// Contract: CacheEmbeddings stores vectors and, in the same transaction,
// adds the work that made them to the lifetime counters, so the counters
// survive a crash before the object's commit. It is durable on return and
// idempotent. With no vectors it only adds the work (tokens a provider
// billed for a call that then failed). Counters returns the lifetime sums.
type EmbeddingCache interface {
	CachedEmbeddings(ctx context.Context, model string, hashes []ChunkHash) (map[ChunkHash][]float32, error)
	CacheEmbeddings(ctx context.Context, model string, vecs map[ChunkHash][]float32, work Counters) error
	Counters(ctx context.Context) (Counters, error)
}

// Ledger is freshen's durable state: the dirty-key queue with leases, the
// object rows and chunk sets with write-ahead intents, and the embedding
// cache with the cost counters. Components depend on the smallest of
// these interfaces that does their job.
//
// Every method is safe for concurrent use by many workers (and, for
// implementations on a shared database, many processes). Errors are
// retryable unless they wrap ErrNotFound or ErrLeaseLost.
type Ledger interface {
	Queue
	Catalog
	EmbeddingCache
	Close() error
}

// ErrLeaseLost reports that a lease expired and the key moved on.
var ErrLeaseLost = errLeaseLost{}

type errLeaseLost struct{}

func (errLeaseLost) Error() string { return "lease lost" }

// Settings is implemented by ledgers that keep small named values for
// every process that shares them: freshen keeps its registry of index
// generations there (which one serves search, which one is being built).
type Settings interface {
	// Setting returns the value of name; ok is false when it is unset.
	Setting(ctx context.Context, name string) (value string, ok bool, err error)
	// SwapSetting sets name to value if its value is still old (unset,
	// when oldOK is false), atomically; it reports whether it did.
	SwapSetting(ctx context.Context, name, old string, oldOK bool, value string) (bool, error)
}

// Purger is implemented by ledgers that can forget a whole generation:
// Purge deletes every object row, chunk set, intent, queued key and
// cached embedding, and keeps the settings and the lifetime counters.
type Purger interface {
	Purge(ctx context.Context) error
}
