package pipeline

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/freshen-io/freshen"
)

// embedCache finds vectors for chunks: first in the ledger's durable
// cache, then by embedding the misses. Concurrent requests for the same
// chunk hash share one embedding (single flight), so identical chunks in
// objects processed at the same time are still embedded once.
type embedCache struct {
	led   freshen.EmbeddingCache
	emb   freshen.Embedder
	batch int
	// budget is the most tokens to embed per UTC day (0: no limit).
	budget int64
	// spentToday counts the tokens spent today (the ledger's counters, or
	// those of every generation built side by side: one budget).
	spentToday func(ctx context.Context) (int64, error)
	// reuse, if set, finds vectors for misses elsewhere (the other
	// generation's cache, for the same model); nil results are misses.
	reuse func(ctx context.Context, model string, chunks []freshen.Chunk) (map[freshen.ChunkHash][]float32, error)
	now   func() time.Time

	mu       sync.Mutex
	inflight map[freshen.ChunkHash]*call
	// shared counts lookups that waited for another caller's embedding.
	shared atomic.Int64
}

type call struct {
	done chan struct{}
	vec  []float32
	err  error
}

func newEmbedCache(led freshen.EmbeddingCache, emb freshen.Embedder, batch int) *embedCache {
	return &embedCache{led: led, emb: emb, batch: batch, inflight: map[freshen.ChunkHash]*call{}, now: time.Now,
		spentToday: func(ctx context.Context) (int64, error) {
			c, err := led.Counters(ctx)
			return c.TokensToday, err
		}}
}

// vectors returns a vector per distinct hash of chunks, the embedding work
// this call paid for, and which hashes it embedded itself.
func (c *embedCache) vectors(ctx context.Context, model string, chunks []freshen.Chunk) (map[freshen.ChunkHash][]float32, freshen.Counters, map[freshen.ChunkHash]bool, error) {
	var work freshen.Counters
	texts := map[freshen.ChunkHash]string{}
	var hashes []freshen.ChunkHash
	for _, ch := range chunks {
		if _, ok := texts[ch.Hash]; !ok {
			texts[ch.Hash] = ch.Text
			hashes = append(hashes, ch.Hash)
		}
	}
	out, err := c.led.CachedEmbeddings(ctx, model, hashes)
	if err != nil {
		return nil, work, nil, err
	}
	if err := c.reuseVectors(ctx, model, hashes, texts, out); err != nil {
		return nil, work, nil, err
	}
	var mine []freshen.ChunkHash
	waits := map[freshen.ChunkHash]*call{}
	c.mu.Lock()
	for _, h := range hashes {
		if _, ok := out[h]; ok {
			continue
		}
		if cl, ok := c.inflight[h]; ok {
			waits[h] = cl
			c.shared.Add(1)
			continue
		}
		cl := &call{done: make(chan struct{})}
		c.inflight[h] = cl
		waits[h] = cl
		mine = append(mine, h)
	}
	c.mu.Unlock()

	// Embed our misses in batches; every batch is cached durably as soon
	// as it is back, so a crash loses at most the batch in flight.
	for start := 0; start < len(mine); start += c.batch {
		part := mine[start:min(start+c.batch, len(mine))]
		batch := make([]string, len(part))
		for i, h := range part {
			batch[i] = texts[h]
		}
		err := c.spend(ctx, batch)
		var vecs [][]float32
		var meter freshen.Meter
		if err == nil {
			vecs, err = c.emb.Embed(freshen.WithMeter(ctx, &meter), batch)
		}
		billed, reported := meter.Tokens()
		if err == nil && len(vecs) != len(batch) {
			err = freshen.Permanent(fmt.Errorf("embedder returned %d vectors for %d texts", len(vecs), len(batch)))
		}
		for i := 0; err == nil && i < len(vecs); i++ {
			// A wrong length is a broken model or a misconfigured
			// provider: never cache or index it.
			err = freshen.CheckDim(vecs[i], c.emb.Model().Dim)
		}
		if err == nil {
			fresh := make(map[freshen.ChunkHash][]float32, len(part))
			for i, h := range part {
				fresh[h] = vecs[i]
			}
			paid := freshen.Counters{ChunksEmbedded: int64(len(part))}
			for _, t := range batch {
				paid.CharsEmbedded += int64(len([]rune(t)))
				paid.TokensEmbedded += int64(c.countTokens(t))
			}
			if reported {
				// What the provider says it used, and bills, wins
				// over our own count.
				paid.TokensEmbedded = billed
			}
			// The cost is recorded with the vectors, atomically.
			err = c.led.CacheEmbeddings(ctx, model, fresh, paid)
			if err == nil {
				work.ChunksEmbedded += paid.ChunksEmbedded
				work.CharsEmbedded += paid.CharsEmbedded
				work.TokensEmbedded += paid.TokensEmbedded
			}
		}
		c.mu.Lock()
		for i, h := range part {
			cl := c.inflight[h]
			if err != nil {
				cl.err = fmt.Errorf("embed: %w", err)
			} else {
				cl.vec = vecs[i]
			}
			close(cl.done)
			delete(c.inflight, h)
		}
		c.mu.Unlock()
		if err != nil && billed > 0 && ctx.Err() == nil {
			// Part of the call was answered (and billed) before it
			// failed: count those tokens, best effort, so the counters
			// keep equal to the provider's bill.
			_ = c.led.CacheEmbeddings(ctx, model, nil, freshen.Counters{TokensEmbedded: billed})
			work.TokensEmbedded += billed
		}
		if err != nil {
			// Release the rest of ours so waiters do not hang.
			c.mu.Lock()
			for _, h := range mine[start+len(part):] {
				cl := c.inflight[h]
				cl.err = fmt.Errorf("embed: %w", err)
				close(cl.done)
				delete(c.inflight, h)
			}
			c.mu.Unlock()
			return nil, work, nil, fmt.Errorf("embed: %w", err)
		}
	}
	var orphaned []freshen.Chunk
	for h, cl := range waits {
		select {
		case <-cl.done:
		case <-ctx.Done():
			return nil, work, nil, ctx.Err()
		}
		switch {
		case cl.err != nil && ctx.Err() == nil && isCancel(cl.err):
			// The worker we waited for was cancelled (it lost its lease,
			// or is shutting down); that says nothing about our chunks.
			orphaned = append(orphaned, freshen.Chunk{Hash: h, Text: texts[h]})
		case cl.err != nil:
			return nil, work, nil, cl.err
		default:
			out[h] = cl.vec
		}
	}
	embedded := make(map[freshen.ChunkHash]bool, len(mine))
	for _, h := range mine {
		embedded[h] = true
	}
	if len(orphaned) > 0 {
		vecs, more, mine, err := c.vectors(ctx, model, orphaned)
		work.ChunksEmbedded += more.ChunksEmbedded
		work.CharsEmbedded += more.CharsEmbedded
		work.TokensEmbedded += more.TokensEmbedded
		if err != nil {
			return nil, work, nil, err
		}
		maps.Copy(out, vecs)
		maps.Copy(embedded, mine)
	}
	return out, work, embedded, nil
}

// reuseVectors fills misses of out from the reuse source, and caches
// what it found in this ledger (at no cost: nothing was embedded).
func (c *embedCache) reuseVectors(ctx context.Context, model string, hashes []freshen.ChunkHash, texts map[freshen.ChunkHash]string, out map[freshen.ChunkHash][]float32) error {
	if c.reuse == nil || len(out) == len(hashes) {
		return nil
	}
	var misses []freshen.Chunk
	for _, h := range hashes {
		if _, ok := out[h]; !ok {
			misses = append(misses, freshen.Chunk{Hash: h, Text: texts[h]})
		}
	}
	found, err := c.reuse(ctx, model, misses)
	if err != nil || len(found) == 0 {
		return err
	}
	for h, v := range found {
		if err := freshen.CheckDim(v, c.emb.Model().Dim); err != nil {
			delete(found, h)
		}
	}
	if err := c.led.CacheEmbeddings(ctx, model, found, freshen.Counters{}); err != nil {
		return err
	}
	maps.Copy(out, found)
	return nil
}

func isCancel(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

func (c *embedCache) countTokens(text string) int { return freshen.CountTokens(c.emb, text) }

// spend checks that batch fits in what is left of today's budget: the
// budget is never overrun by more than the estimate's error.
func (c *embedCache) spend(ctx context.Context, batch []string) error {
	if c.budget <= 0 {
		return nil
	}
	var need int64
	for _, t := range batch {
		need += int64(c.countTokens(t))
	}
	today, err := c.spentToday(ctx)
	if err != nil {
		return err
	}
	if today+need <= c.budget {
		return nil
	}
	now := c.now().UTC()
	midnight := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
	return freshen.Retryable(fmt.Errorf("%w: %d of %d tokens used today, this batch needs %d; embedding resumes at %s",
		freshen.ErrBudgetSpent, today, c.budget, need, midnight.Format(time.RFC3339)), midnight.Sub(now))
}
