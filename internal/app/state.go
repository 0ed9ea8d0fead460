package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/freshen-io/freshen"
)

// StateReport says what CheckState found.
type StateReport struct {
	// Problem is empty when the ledger and the index agree; otherwise it
	// says how they differ and what is being done about it.
	Problem string `json:"problem,omitempty"`
	// Reclaimed counts the keys queued for a full rewrite; Seeded, the
	// vectors taken from the index into the embedding cache.
	Reclaimed int `json:"reclaimed,omitempty"`
	Seeded    int `json:"seeded,omitempty"`
}

const reclaimBatch = 500

// CheckState makes sure the ledger and the index belong together before
// anything trusts either: each records the other's identity, and the
// index holds as many chunks as the ledger lists. When they disagree (an
// index.db deleted, truncated or replaced; a ledger lost with its volume)
// it says so and queues the repair, which costs no embedding calls for
// vectors either side still has:
//
//   - every object the ledger knows is rewritten in full (vectors from
//     the embedding cache);
//   - every row the index holds is reclaimed: its vector seeds the cache,
//     and its key is processed, so rows of objects that are gone are
//     deleted and the others rewritten.
//
// The reconcile pass that follows finds objects neither side knows.
// Only a process that owns the data (app.Options.Exclusive) may call it.
func (a *App) CheckState(ctx context.Context) (StateReport, error) {
	var rep StateReport
	ls, ok1 := a.Ledger.(freshen.Stamped)
	is, ok2 := a.Index.(freshen.Stamped)
	if !ok1 || !ok2 {
		return rep, nil
	}
	lself, lpartner, err := ls.Stamp(ctx)
	if err != nil {
		return rep, err
	}
	iself, ipartner, err := is.Stamp(ctx)
	if err != nil {
		return rep, err
	}
	sum, err := a.Ledger.Summary(ctx)
	if err != nil {
		return rep, err
	}
	known := sum.Indexed + sum.Skipped + sum.Failed
	scan, _ := a.Index.(freshen.Scanner)
	rows := -1
	if scan != nil {
		if rows, err = scan.Count(ctx); err != nil {
			return rep, err
		}
	}
	pending, err := a.Ledger.KeysWithIntents(ctx)
	if err != nil {
		return rep, err
	}
	paired := lpartner == iself && ipartner == lself
	// A ledger other processes write to changes between the counts: they
	// cannot be compared (verify is the check for a live cluster).
	_, shared := a.Ledger.(freshen.Coordinator)
	switch {
	case paired && (rows < 0 || rows == sum.Chunks || len(pending) > 0 || shared):
		// Agreed (or a crash left intents, which recovery resolves).
		return rep, nil
	case !paired && known == 0 && rows <= 0:
		// Both new: a first start.
		return rep, a.pair(ctx, ls, is, lself, iself)
	case paired:
		rep.Problem = fmt.Sprintf("the index holds %d chunks but the ledger lists %d", rows, sum.Chunks)
	case known > 0 && ipartner != lself && rows <= 0:
		rep.Problem = fmt.Sprintf("the index is empty or new (deleted, truncated or replaced?) but the ledger lists %d objects with %d chunks", known, sum.Chunks)
	case known == 0 && rows > 0:
		rep.Problem = fmt.Sprintf("the ledger is empty or new (lost?) but the index holds %d chunks", rows)
	default:
		rep.Problem = fmt.Sprintf("the ledger and the index were not written together (the ledger lists %d chunks, the index holds %d)", sum.Chunks, rows)
	}
	if rep.Reclaimed, rep.Seeded, err = a.reclaim(ctx, scan); err != nil {
		return rep, fmt.Errorf("repairing: %w", err)
	}
	rep.Problem += fmt.Sprintf("; rebuilding: %d keys queued for a full rewrite, %d vectors reused from the index", rep.Reclaimed, rep.Seeded)
	return rep, a.pair(ctx, ls, is, lself, iself)
}

func (a *App) pair(ctx context.Context, ls, is freshen.Stamped, lself, iself string) error {
	return errors.Join(ls.Pair(ctx, iself), is.Pair(ctx, lself))
}

// reclaim queues every key either side knows for a full rewrite, and
// seeds the embedding cache with the index's vectors.
func (a *App) reclaim(ctx context.Context, scan freshen.Scanner) (reclaimed, seeded int, err error) {
	bucket := a.Config.Source.Bucket
	model := a.Embedder.Model().Name
	var batch []freshen.Reclaim
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		reclaimed += len(batch)
		err := a.Ledger.Reclaim(ctx, batch)
		batch = batch[:0]
		return err
	}
	ids := map[string][]freshen.ChunkID{}
	if scan != nil {
		// The index is in ID order, not key order: group its rows by key.
		vecs := map[freshen.ChunkHash][]float32{}
		err := scan.Scan(ctx, func(r freshen.Record) error {
			if r.Bucket != bucket {
				return nil
			}
			ids[r.Key] = append(ids[r.Key], r.ID)
			if len(r.Vector) == a.Index.Dim() {
				vecs[r.Hash] = r.Vector
			}
			if len(vecs) >= reclaimBatch {
				seeded += len(vecs)
				if err := a.Ledger.CacheEmbeddings(ctx, model, vecs, freshen.Counters{}); err != nil {
					return err
				}
				clear(vecs)
			}
			return nil
		})
		if err != nil {
			return reclaimed, seeded, err
		}
		seeded += len(vecs)
		if err := a.Ledger.CacheEmbeddings(ctx, model, vecs, freshen.Counters{}); err != nil {
			return reclaimed, seeded, err
		}
		for key, list := range ids {
			batch = append(batch, freshen.Reclaim{Bucket: bucket, Key: key, IDs: list})
			if len(batch) >= reclaimBatch {
				if err := flush(); err != nil {
					return reclaimed, seeded, err
				}
			}
		}
	}
	err = a.Ledger.Objects(ctx, bucket, "", "", func(o freshen.ObjectRecord) error {
		if _, done := ids[o.Key]; done {
			return nil
		}
		batch = append(batch, freshen.Reclaim{Bucket: bucket, Key: o.Key})
		if len(batch) >= reclaimBatch {
			return flush()
		}
		return nil
	})
	if err != nil {
		return reclaimed, seeded, err
	}
	return reclaimed, seeded, flush()
}
