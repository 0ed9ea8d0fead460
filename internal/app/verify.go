package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/internal/reconcile"
	"github.com/freshen-io/freshen/internal/verify"
)

// repairBatch is how many keys or rows a repair writes at once.
const repairBatch = 500

// Verify compares the index with the ledger (package verify). With
// repair, it deletes the rows of keys the ledger does not index and
// queues every other key with drift for a full rewrite (Reclaim), which
// the pipeline then makes with vectors from the embedding cache: no
// embedding calls. Report.Repaired counts the rows so dealt with.
//
// The mass-delete rule applies: a repair that would delete more than
// mass-delete.max-fraction as many rows as the ledger lists chunks, and
// at least min-objects, deletes
// nothing unless allowed (an index shared with something else, or a
// ledger pointed at the wrong index, must not be emptied by a repair).
func (a *App) Verify(ctx context.Context, repair, allowMassDelete bool) (verify.Report, error) {
	rs, ok := a.Index.(freshen.RowScanner)
	if !ok {
		return verify.Report{}, fmt.Errorf("verify: index.type %s cannot list its rows", a.Config.Index.Type)
	}
	bucket := a.Config.Source.Bucket
	rep, err := verify.Run(ctx, a.Ledger, rs, bucket, nil)
	if err != nil || !repair || rep.Drifts() == 0 {
		return rep, err
	}
	mass := a.Config.MassDelete
	// Measured against what freshen put there: the ledger's chunks.
	limit := int64(mass.MaxFraction * float64(rep.ChunksChecked))
	if rep.Orphans > limit && rep.Orphans >= int64(mass.MinObjects) && !allowMassDelete && !mass.Allow {
		return rep, fmt.Errorf("verify: %w: refusing to delete %d rows, more than %.0f%% of the %d chunks freshen indexed (mass-delete.max-fraction): is index %s shared with "+
			"something else, or the ledger of another index? Nothing was repaired. If those rows really are strays, repair with "+
			"--allow-mass-delete", reconcile.ErrMassDelete, rep.Orphans, 100*mass.MaxFraction, rep.ChunksChecked, a.Config.Index.Type)
	}
	// The first pass decided; the second repairs what it finds now.
	var deletes []freshen.ChunkID
	var reclaims []freshen.Reclaim
	var repaired int64
	flush := func(all bool) error {
		if len(deletes) >= repairBatch || all && len(deletes) > 0 {
			if err := a.Index.Delete(ctx, deletes); err != nil {
				return fmt.Errorf("verify: deleting orphan rows: %w", err)
			}
			deletes = deletes[:0]
		}
		if len(reclaims) >= repairBatch || all && len(reclaims) > 0 {
			if err := a.Ledger.Reclaim(ctx, reclaims); err != nil {
				return fmt.Errorf("verify: queueing rewrites: %w", err)
			}
			reclaims = reclaims[:0]
		}
		return nil
	}
	second, err := verify.Run(ctx, a.Ledger, rs, bucket, func(k verify.Key) error {
		repaired += int64(len(k.Missing) + len(k.Orphans) + len(k.Mismatched))
		if !k.Known {
			deletes = append(deletes, k.Orphans...)
		} else {
			// The rewrite deletes the IDs named that the key should not
			// have, and rewrites every chunk it should.
			reclaims = append(reclaims, freshen.Reclaim{Bucket: k.Bucket, Key: k.Key, IDs: append(k.Orphans, k.Mismatched...)})
		}
		return flush(false)
	})
	if err == nil {
		err = flush(true)
	}
	second.Repaired = repaired
	if err != nil {
		return second, errors.Join(err, fmt.Errorf("verify: %d rows were repaired before the error", repaired))
	}
	return second, nil
}
