// Package retry is an Embedder decorator whose one job is to turn a
// transient failure of an embedding call into a later success: it retries
// retryable errors with exponential backoff and full jitter, never sooner
// than the error's retry-after asks, within a budget of attempts and time;
// and it answers a request the provider rejects as too large by embedding
// each half of it (recursively) instead of the whole again.
//
// It must never retry what cannot succeed (a permanent error, the
// caller's cancelled or expired context), never hide an error's class (the
// error it gives up with is the last one, wrapped, so freshen.IsPermanent
// and freshen.RetryAfter still answer for it), never change results
// (vectors come back one per text, in input order) and never wait past the
// caller's deadline. It does not limit rates or open circuits: stack
// limit and breaker decorators for that (see Embedder).
package retry
