// Package sqlite is freshen's embedded ledger: the dirty-key queue with
// fenced leases (freshen.Queue), object state, chunk sets and write-ahead
// intents (freshen.Catalog), the embedding cache and lifetime counters
// (freshen.EmbeddingCache), in one SQLite file (pure Go,
// modernc.org/sqlite). Fencing tokens come from one counter that only
// grows, so a lease of an earlier incarnation of a key never matches.
//
// It must never hold a transaction open across I/O to S3, the embedder or
// the index: every method is one short transaction, so a slow network call
// never blocks other workers, and a crash loses at most the work in flight.
package sqlite
