// Package openaitest is a fake OpenAI /v1/embeddings server for tests and
// benchmarks: it speaks the wire format exactly (string, string array and
// token-array inputs; float and base64 encodings; dimensions; usage),
// answers with real vectors from any freshen.Embedder (Hash, a fast
// stand-in, by default; the built-in model for real ones), checks the key,
// and misbehaves on demand: faults queued with Inject or drawn at a seeded
// rate (429 with Retry-After and x-ratelimit-* headers, 5xx, hangs, TCP
// resets, malformed JSON, wrong vector counts and lengths), per-request
// caps, RPM/TPM limits over a sliding minute, and latency. It counts what
// it served (Stats) so tests can compare a client's accounting with it.
//
// It listens on 127.0.0.1 only and must never forward anything to a real
// provider; it is not a model, and its token counts are whatever measure
// it is given (Hash counts words).
package openaitest
