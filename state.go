package freshen

import "context"

// Stamped is implemented by ledgers and indexes that know which partner
// they were written with. A start compares the stamps (and the row
// counts) of the ledger and the index, so that a lost, emptied or
// replaced database is noticed and repaired instead of trusted.
type Stamped interface {
	// Stamp returns this store's identity, made when it was created, and
	// the identity of the partner it was last paired with ("" if never).
	Stamp(ctx context.Context) (self, partner string, err error)
	// Pair records partner as this store's partner.
	Pair(ctx context.Context, partner string) error
}

// Scanner is implemented by indexes that can list what they hold, with
// vectors: the recovery path when the ledger was lost reuses the vectors
// instead of paying for them again, and deletes rows of objects gone.
type Scanner interface {
	// Count returns the number of records.
	Count(ctx context.Context) (int, error)
	// Scan calls fn for every record, vector included, from the calling
	// goroutine. fn must not write to the index.
	Scan(ctx context.Context, fn func(Record) error) error
}

// Reclaim names a key to converge after the index and the ledger were
// found to disagree, and the index rows that may belong to it.
type Reclaim struct {
	Bucket, Key string
	IDs         []ChunkID
}
