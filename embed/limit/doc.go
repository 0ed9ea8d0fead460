// Package limit is an Embedder decorator whose one job is to keep the
// calls reaching an inner Embedder (a provider's API) within its limits:
// requests per minute and tokens per minute (token buckets), and calls in
// flight (a concurrency cap). It adapts to the provider (AIMD): an answer
// wrapping freshen.ErrRateLimited cuts the rates by a factor and pauses new
// calls for the answer's retry-after; each success raises them again by a
// step, up to the configured rates.
//
// It must never retry (every error goes back to the caller as the inner
// embedder returned it: stack the retry decorator outside), never change
// a request (texts are neither split, merged nor reordered), never keep a
// call waiting past its ctx, and never block a call forever: a call
// needing more tokens than the token bucket holds goes alone once the
// bucket is full, and the calls after it wait for the excess.
package limit
