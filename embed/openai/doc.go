// Package openai is a freshen.Embedder for OpenAI's /v1/embeddings API
// and the servers that speak it: Azure OpenAI, Ollama, vLLM, Hugging Face
// TEI, LiteLLM. It is built on github.com/openai/openai-go.
//
// It splits each Embed call into requests under the server's caps (inputs
// and tokens per request), windows inputs longer than the model's context
// (or cuts them, with Config.Truncate), normalizes what comes back, checks
// its shape, records the tokens the server says it used (Usage), and
// classifies every failure for the retry decorator: rate limited (with the
// server's wait), unavailable, too large, permanent.
//
// It must never retry on its own — the SDK's retries are off, because
// retries, rate limits and concurrency caps are decorators that must see
// every failure — and never print or log the API key: Config.APIKey is a
// Secret, error messages from servers are stripped of it, and this
// package reads no environment variables (the caller passes the key).
//
// Tokens are estimated (ceil(bytes/3), see Embedder.CountTokens): there is
// no tokenizer here. The estimate only sizes requests and windows; the
// provider's own count is Usage.
package openai
