// Package pipeline is freshen's worker pool: it leases dirty keys from the
// ledger, reads each key's current state from the source, extracts,
// chunks, embeds only chunks whose vectors are not cached, writes the
// index behind a write-ahead intent, and commits to the ledger.
//
// It must never trust an event's claims about an object (the source is
// read every time), never write the index without an intent recorded
// first, and never acknowledge a key before the ledger commit.
package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/freshen-io/freshen"
)

// Config tunes the pipeline.
type Config struct {
	Bucket string
	// Workers is how many keys are processed at once.
	Workers int
	// Match reports whether a key is watched; others are removed from
	// the index if present and otherwise ignored. Nil watches everything.
	Match func(key string) bool
	// MaxObjectBytes skips larger objects (recorded, not retried).
	MaxObjectBytes int64
	// MaxAttempts before a failing key is parked as failed.
	MaxAttempts int
	// LeaseTTL bounds how long a crashed worker keeps a key.
	LeaseTTL time.Duration
	// Backoff is the delay before the first retry; it doubles per attempt
	// up to MaxBackoff.
	Backoff, MaxBackoff time.Duration
	// EmbedBatch is how many texts go to the embedder per call.
	EmbedBatch int
}

func (c *Config) defaults() {
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 5 * time.Minute
	}
	if c.Backoff <= 0 {
		c.Backoff = time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 5 * time.Minute
	}
	if c.EmbedBatch <= 0 {
		c.EmbedBatch = 32
	}
	if c.MaxObjectBytes <= 0 {
		c.MaxObjectBytes = 32 << 20
	}
}

// Outcome says what processing a key did.
type Outcome string

const (
	OutcomeIndexed   Outcome = "indexed"
	OutcomeUnchanged Outcome = "unchanged"
	OutcomeDeleted   Outcome = "deleted"
	// OutcomeAbsent: the key does not exist and never was indexed (an
	// event for a key variant, a create-then-delete).
	OutcomeAbsent  Outcome = "absent"
	OutcomeSkipped Outcome = "skipped"
	OutcomeRetry   Outcome = "retry"
	OutcomeFailed  Outcome = "failed"
)

// Result describes one processed key, for progress and metrics.
type Result struct {
	Key     string
	Outcome Outcome
	Reason  string
	// Chunks is the object's chunk count after processing.
	Chunks int
	Work   freshen.Counters
	// TokensReused estimates (by the chunker's measure) the tokens of the
	// chunks of a re-read object that needed no embedding.
	TokensReused int64
	// FirstSeen is when the earliest change to the key was noticed.
	FirstSeen time.Time
	Duration  time.Duration
	// EmbedTime is the part of Duration spent waiting for the embedder.
	EmbedTime time.Duration
	Err       error
}

// Pipeline processes dirty keys.
type Pipeline struct {
	cfg    Config
	src    freshen.Source
	ext    freshen.Extractor
	chk    freshen.Chunker
	emb    freshen.Embedder
	idx    freshen.Index
	led    freshen.Ledger
	log    *slog.Logger
	owner  string
	cache  *embedCache
	onDone func(Result)
}

// New builds a pipeline. onDone, if not nil, is called from worker
// goroutines after each key (it must be safe for concurrent use).
func New(cfg Config, src freshen.Source, ext freshen.Extractor, chk freshen.Chunker, emb freshen.Embedder,
	idx freshen.Index, led freshen.Ledger, log *slog.Logger, onDone func(Result)) *Pipeline {
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var b [6]byte
	rand.Read(b[:])
	return &Pipeline{cfg: cfg, src: src, ext: ext, chk: chk, emb: emb, idx: idx, led: led, log: log,
		owner: "worker-" + hex.EncodeToString(b[:]), cache: newEmbedCache(led, emb, cfg.EmbedBatch), onDone: onDone}
}

// Recover queues every key whose index writes may not have been committed
// before a crash; processing them converges index and ledger.
func (p *Pipeline) Recover(ctx context.Context) (int, error) {
	keys, err := p.led.KeysWithIntents(ctx)
	if err != nil || len(keys) == 0 {
		return 0, err
	}
	for i := range keys {
		keys[i].EventTime = time.Now()
	}
	_, err = p.led.Enqueue(ctx, keys)
	return len(keys), err
}

// Drain processes keys until the queue is empty, waiting out retry
// backoffs, and returns how many keys it processed. It is what `freshen
// sync` runs; a key that keeps failing ends parked, so Drain terminates.
func (p *Pipeline) Drain(ctx context.Context) (int, error) {
	return p.run(ctx, true, nil)
}

// Run processes keys until ctx is done. wake, when it receives, makes idle
// workers look for work at once instead of at their next poll.
func (p *Pipeline) Run(ctx context.Context, wake <-chan struct{}) error {
	_, err := p.run(ctx, false, wake)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

func (p *Pipeline) run(ctx context.Context, drain bool, wake <-chan struct{}) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	leases := make(chan freshen.Lease)
	var wg sync.WaitGroup
	var mu sync.Mutex
	processed := 0
	for i := 0; i < p.cfg.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ls := range leases {
				// Finish the key even if we are asked to stop: the lease
				// commits or fails cleanly instead of waiting to expire.
				p.handle(context.WithoutCancel(ctx), ls)
				mu.Lock()
				processed++
				mu.Unlock()
			}
		}()
	}
	err := p.dispatch(ctx, leases, drain, wake)
	close(leases)
	wg.Wait()
	return processed, err
}

// dispatch leases keys and hands them to the workers.
func (p *Pipeline) dispatch(ctx context.Context, out chan<- freshen.Lease, drain bool, wake <-chan struct{}) error {
	const poll = 500 * time.Millisecond
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		ls, err := p.led.Lease(ctx, p.owner, p.cfg.Workers, p.cfg.LeaseTTL)
		if err != nil {
			p.log.Warn("lease failed", "err", err)
			if !sleep(ctx, poll) {
				return ctx.Err()
			}
			continue
		}
		for i, l := range ls {
			select {
			case out <- l:
			case <-ctx.Done():
				// Give back what no worker took, so a restart need not
				// wait for the leases to expire.
				for _, rest := range ls[i:] {
					p.led.Release(context.WithoutCancel(ctx), rest)
				}
				return ctx.Err()
			}
		}
		if len(ls) > 0 {
			continue
		}
		// Leased keys stay queued until committed, so an empty backlog
		// means nothing is in flight either.
		if drain {
			n, _, err := p.led.Backlog(ctx)
			if err == nil && n == 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		case <-time.After(p.idleWait(drain)):
		}
	}
}

func (p *Pipeline) idleWait(drain bool) time.Duration {
	if drain {
		return 20 * time.Millisecond
	}
	return 500 * time.Millisecond
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// handle processes one lease and records the outcome in the ledger.
func (p *Pipeline) handle(ctx context.Context, ls freshen.Lease) {
	start := time.Now()
	res, err := p.process(ctx, ls)
	res.Key, res.FirstSeen, res.Duration = ls.Key, ls.FirstSeen, time.Since(start)
	if err != nil {
		res.Err = err
		attempts := ls.Attempts + 1
		res.Outcome = OutcomeRetry
		if attempts >= p.cfg.MaxAttempts {
			res.Outcome, res.Reason = OutcomeFailed, err.Error()
		}
		backoff := p.cfg.Backoff << min(ls.Attempts, 20)
		backoff = min(backoff, p.cfg.MaxBackoff)
		if ferr := p.led.Fail(ctx, ls, err, time.Now().Add(backoff), p.cfg.MaxAttempts); ferr != nil && !errors.Is(ferr, freshen.ErrLeaseLost) {
			p.log.Error("record failure", "key", ls.Key, "err", ferr)
		}
		p.log.Warn("processing failed", "key", ls.Key, "attempt", attempts, "err", err)
	}
	if p.onDone != nil {
		p.onDone(res)
	}
}

// target is the chunk set an object should have in the index.
type target struct {
	refs   []freshen.ChunkRef
	chunks map[freshen.ChunkID]freshen.Chunk
}

func (p *Pipeline) process(ctx context.Context, ls freshen.Lease) (Result, error) {
	model := p.emb.Model().Name
	prev, err := p.led.Chunks(ctx, ls.Bucket, ls.Key)
	if err != nil {
		return Result{}, err
	}
	intent, pending, err := p.led.PendingIntent(ctx, ls.Bucket, ls.Key)
	if err != nil {
		return Result{}, err
	}

	rec := freshen.ObjectRecord{Bucket: ls.Bucket, Key: ls.Key, Chunker: p.chk.Version(), Model: model}
	var tgt target
	gone, skipped := false, ""
	var obj freshen.ObjectInfo
	if p.cfg.Match != nil && !p.cfg.Match(ls.Key) {
		gone = true // not watched (any more): make sure nothing of it stays
	} else {
		obj, err = p.src.Stat(ctx, ls.Key)
		switch {
		case errors.Is(err, freshen.ErrNotFound):
			gone = true
		case err != nil:
			return Result{}, err
		}
	}
	cur, err := p.led.Object(ctx, ls.Bucket, ls.Key)
	known := err == nil
	if err != nil && !errors.Is(err, freshen.ErrNotFound) {
		return Result{}, err
	}
	if !gone {
		rec.ETag, rec.VersionID, rec.Size, rec.LastModified = obj.ETag, obj.VersionID, obj.Size, obj.LastModified
		if known && !pending && cur.State != freshen.StateFailed && cur.ETag == obj.ETag && cur.Size == obj.Size &&
			cur.Chunker == rec.Chunker && cur.Model == rec.Model {
			// Same bytes as committed (a duplicate event, a metadata-only
			// change): nothing to do but leave the queue.
			cur.LastModified, cur.VersionID = obj.LastModified, obj.VersionID
			if err := p.led.Complete(ctx, ls, freshen.Commit{Object: cur, Chunks: prev}); err != nil {
				return Result{}, err
			}
			return Result{Outcome: OutcomeUnchanged, Chunks: len(prev), Work: freshen.Counters{ChunksReused: int64(len(prev))}}, nil
		}
		tgt, skipped, err = p.read(ctx, obj)
		if errors.Is(err, freshen.ErrNotFound) {
			gone, err = true, nil
		}
		if err != nil {
			return Result{}, err
		}
	}

	// Diff against what the index holds. After a crash (pending intent)
	// the index may hold anything the intent named, and may lack chunks
	// the ledger lists: rewrite every target chunk, delete the rest.
	have := map[freshen.ChunkID]bool{}
	for _, c := range prev {
		have[c.ID] = true
	}
	want := map[freshen.ChunkID]bool{}
	for _, r := range tgt.refs {
		want[r.ID] = true
	}
	var upserts, deletes []freshen.ChunkID
	for _, r := range tgt.refs {
		if pending || !have[r.ID] {
			upserts = append(upserts, r.ID)
		}
	}
	candidates := maps.Clone(have)
	if pending {
		for _, id := range slices.Concat(intent.Upserts, intent.Deletes) {
			candidates[id] = true
		}
	}
	for id := range candidates {
		if !want[id] {
			deletes = append(deletes, id)
		}
	}
	slices.Sort(deletes)

	res := Result{Chunks: len(tgt.refs)}
	var records []freshen.Record
	embedded := map[freshen.ChunkHash]bool{}
	if len(upserts) > 0 {
		need := make([]freshen.Chunk, 0, len(upserts))
		for _, id := range upserts {
			need = append(need, tgt.chunks[id])
		}
		t0 := time.Now()
		vecs, work, mine, err := p.cache.vectors(ctx, model, need)
		embedded = mine
		res.EmbedTime = time.Since(t0)
		res.Work = work
		if err != nil {
			return res, err
		}
		for _, id := range upserts {
			c := tgt.chunks[id]
			records = append(records, freshen.Record{ID: id, Bucket: ls.Bucket, Key: ls.Key, Hash: c.Hash, Ordinal: c.Ordinal,
				Text: c.Text, Headings: c.Headings, Vector: vecs[c.Hash]})
		}
	}
	// Chunks kept as they were, or whose vectors came from the cache,
	// cost nothing: they count as reused.
	res.Work.ChunksReused = int64(len(tgt.refs)) - res.Work.ChunksEmbedded
	if res.Work.ChunksReused < 0 {
		res.Work.ChunksReused = 0
	}
	for _, c := range tgt.chunks {
		if !embedded[c.Hash] {
			res.TokensReused += int64(c.Tokens)
		}
	}

	if len(upserts)+len(deletes) > 0 {
		if err := p.led.BeginIntent(ctx, ls.Bucket, ls.Key, freshen.Intent{Upserts: upserts, Deletes: deletes}); err != nil {
			return res, err
		}
		if err := p.idx.Upsert(ctx, records); err != nil {
			return res, fmt.Errorf("index upsert: %w", err)
		}
		if err := p.idx.Delete(ctx, deletes); err != nil {
			return res, fmt.Errorf("index delete: %w", err)
		}
	}

	// Embedding work was counted when the vectors were cached.
	commit := freshen.Commit{Object: rec, Gone: gone, Chunks: tgt.refs, Work: freshen.Counters{ChunksReused: res.Work.ChunksReused}}
	switch {
	case gone && len(prev) == 0 && !pending && !known:
		res.Outcome = OutcomeAbsent
	case gone:
		res.Outcome = OutcomeDeleted
	case skipped != "":
		commit.Object.State, commit.Object.Reason = freshen.StateSkipped, skipped
		res.Outcome, res.Reason = OutcomeSkipped, skipped
	default:
		commit.Object.State = freshen.StateIndexed
		res.Outcome = OutcomeIndexed
	}
	if err := p.led.Complete(ctx, ls, commit); err != nil {
		return res, err
	}
	return res, nil
}

// read fetches, extracts and chunks one object version. A non-empty skip
// reason means the object is deliberately not indexed.
func (p *Pipeline) read(ctx context.Context, obj freshen.ObjectInfo) (target, string, error) {
	if obj.Size > p.cfg.MaxObjectBytes {
		return target{}, fmt.Sprintf("%d bytes exceeds limits.max-object-bytes (%d)", obj.Size, p.cfg.MaxObjectBytes), nil
	}
	r, err := p.src.Open(ctx, obj)
	if err != nil {
		return target{}, "", err
	}
	defer r.Close()
	doc, err := p.ext.Extract(ctx, io.LimitReader(r, p.cfg.MaxObjectBytes+1), obj)
	if errors.Is(err, freshen.ErrUnsupported) || errors.Is(err, freshen.ErrTooLarge) {
		return target{}, err.Error(), nil
	}
	if err != nil {
		return target{}, "", fmt.Errorf("extract: %w", err)
	}
	chunks, err := p.chk.Split(doc)
	if err != nil {
		return target{}, "", fmt.Errorf("chunk: %w", err)
	}
	t := target{chunks: make(map[freshen.ChunkID]freshen.Chunk, len(chunks))}
	seen := map[freshen.ChunkHash]int{}
	for _, c := range chunks {
		id := freshen.MakeChunkID(obj.Bucket, obj.Key, c.Hash, seen[c.Hash])
		seen[c.Hash]++
		t.refs = append(t.refs, freshen.ChunkRef{ID: id, Hash: c.Hash, Ordinal: c.Ordinal})
		t.chunks[id] = c
	}
	return t, "", nil
}
