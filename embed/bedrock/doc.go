// Package bedrock is a freshen.Embedder on Amazon Bedrock's InvokeModel,
// for Amazon Titan Text Embeddings v2 (amazon.titan-embed-text-v2:0) and
// Cohere Embed v3 (cohere.embed-english-v3, cohere.embed-multilingual-v3)
// and v4 (cohere.embed-v4:0). Region and credentials come from the AWS
// default chain, as for every AWS client in freshen.
//
// What it does:
//   - Titan takes one text a request; the texts of one Embed call are sent
//     a few at a time (Config.Concurrency). Cohere takes up to 96 texts a
//     request, as "search_document"; EmbedQuery sends "search_query".
//   - A text longer than the model accepts is cut into windows at
//     sentence, then word, then character boundaries, and embedded as the
//     token-weighted mean of its windows, normalized (limits in
//     models.go). Nothing is cut off here; only Cohere v3's own "END"
//     truncation can shorten a window whose real tokens pass 512.
//   - Every vector is L2-normalized here, whatever the model returned.
//   - Every failure is classified in one place (classify.go) from the
//     SDK's typed errors and HTTP status codes, into freshen's classes:
//     permanent, retryable, rate limited, unavailable. ctx errors are
//     returned as they are.
//
// What it must never do:
//   - retry: the SDK's retryer is disabled; retries, rate limits and
//     concurrency caps are decorators around the Embedder;
//   - classify an error by matching its message;
//   - translate a missing model into freshen.ErrNotFound, which means a
//     missing object and would have the pipeline delete index entries;
//   - send a request over Bedrock's documented limits (texts a request,
//     characters a text), or truncate an input without saying so;
//   - hold credentials of its own or log texts.
package bedrock
