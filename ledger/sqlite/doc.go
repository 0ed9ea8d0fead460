// Package sqlite is freshen's embedded ledger: object state, chunk sets,
// the dirty-key queue with leases, write-ahead intents, the embedding cache
// and lifetime counters, in one SQLite file (pure Go, modernc.org/sqlite).
//
// It must never hold a transaction open across I/O to S3, the embedder or
// the index: every method is one short transaction, so a slow network call
// never blocks other workers, and a crash loses at most the work in flight.
package sqlite
