package app

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/freshen-io/freshen"
)

// Estimate is what a sync would spend, computed before spending anything
// (`freshen estimate`).
type Estimate struct {
	// Objects and Chunks are those a sync would (re)process; Tokens the
	// tokens of the chunks whose vectors are not cached, each distinct
	// chunk once, counted as the sync counts them.
	Objects int   `json:"objects"`
	Chunks  int   `json:"chunks"`
	Tokens  int64 `json:"tokens"`
	// Cached counts the distinct chunks whose vectors are already known
	// (the embedding cache, or another generation's for the same model
	// and text): they cost nothing.
	Cached int `json:"cached"`
	// Requests is how many embedding calls that takes at the batch size.
	Requests int64 `json:"requests"`
	// USD prices Tokens with embedder.price-per-million-tokens.
	USD float64 `json:"usd"`
	// Seconds is how long the embedding takes at embedder.rpm and
	// embedder.tpm (0 when neither is set: the provider's speed decides).
	Seconds float64 `json:"seconds"`
	// Skipped counts objects a sync would skip (size, type, limits).
	Skipped int `json:"skipped"`
}

// Estimate lists the bucket, reads every object the ledger has not
// indexed as it is now, chunks it, and counts the tokens of the chunks
// whose vectors are not in the embedding cache.
func (a *App) Estimate(ctx context.Context) (Estimate, error) {
	var est Estimate
	if a.Source == nil {
		return est, errors.New("estimate: no source")
	}
	p := a.Pipeline(nil)
	model := a.Embedder.Model().Name
	chunker := a.Chunker.Version()
	bucket := a.Config.Source.Bucket
	counted := map[freshen.ChunkHash]bool{}
	for _, prefix := range a.Filter.Prefixes() {
		err := a.Source.List(ctx, prefix, "", func(obj freshen.ObjectInfo) error {
			if !a.Filter.Match(obj.Key) {
				return nil
			}
			st, err := a.Ledger.State(ctx, bucket, obj.Key)
			if err != nil {
				return err
			}
			o := st.Object
			if st.Known && !st.Pending && o.ETag == obj.ETag && o.Size == obj.Size && o.Chunker == chunker && o.Model == model &&
				o.State != freshen.StateFailed {
				return nil // unchanged: a sync costs nothing here
			}
			if obj.ContentType == "" {
				// Listings omit the content type that extraction uses.
				if full, err := a.Source.Stat(ctx, obj.Key); err == nil {
					obj = full
				} else if errors.Is(err, freshen.ErrNotFound) {
					return nil
				} else {
					return err
				}
			}
			chunks, skip, err := p.Chunks(ctx, obj)
			switch {
			case errors.Is(err, freshen.ErrNotFound):
				return nil
			case err != nil:
				return fmt.Errorf("estimate %s: %w", freshen.KeyForLog(obj.Key), err)
			case skip != "":
				est.Skipped++
				return nil
			}
			est.Objects++
			est.Chunks += len(chunks)
			var hashes []freshen.ChunkHash
			for _, c := range chunks {
				if !counted[c.Hash] {
					hashes = append(hashes, c.Hash)
				}
			}
			cached, err := a.Ledger.CachedEmbeddings(ctx, model, hashes)
			if err != nil {
				return err
			}
			if a.Reuse != nil {
				var misses []freshen.Chunk
				for _, c := range chunks {
					if !counted[c.Hash] && cached[c.Hash] == nil {
						misses = append(misses, c)
					}
				}
				found, err := a.Reuse(ctx, model, misses)
				if err != nil {
					return err
				}
				for h, v := range found {
					cached[h] = v
				}
			}
			for _, c := range chunks {
				if counted[c.Hash] {
					continue
				}
				if cached[c.Hash] != nil {
					counted[c.Hash] = true
					est.Cached++
					continue
				}
				counted[c.Hash] = true
				est.Tokens += int64(freshen.CountTokens(a.Embedder, c.Text))
			}
			return nil
		})
		if err != nil {
			return est, err
		}
	}
	batch := int64(a.Config.Pipeline().WithDefaults().EmbedBatch)
	est.Requests = (int64(len(counted)-est.Cached) + batch - 1) / batch
	est.USD = float64(est.Tokens) * a.Config.Embedder.PricePerMillionTokens / 1e6
	if tpm := a.Config.Embedder.TPM; tpm > 0 {
		est.Seconds = math.Max(est.Seconds, float64(est.Tokens)/float64(tpm)*60)
	}
	if rpm := a.Config.Embedder.RPM; rpm > 0 {
		est.Seconds = math.Max(est.Seconds, float64(est.Requests)/float64(rpm)*60)
	}
	return est, nil
}
