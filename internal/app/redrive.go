package app

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/internal/reconcile"
)

// DeadLetter is an object freshen gave up on (failed: its retries ran
// out) or chose not to index (skipped), with the reason.
type DeadLetter struct {
	Key      string              `json:"key"`
	State    freshen.ObjectState `json:"state"`
	Reason   string              `json:"reason"`
	Attempts int                 `json:"attempts,omitempty"`
	ETag     string              `json:"etag,omitempty"`
	Size     int64               `json:"size"`
	Since    time.Time           `json:"since"`
}

// MaxDeadLetters bounds one listing.
const MaxDeadLetters = 100_000

// DeadLetters lists up to limit failed objects (0: MaxDeadLetters), and
// with skipped the skipped ones too, oldest first; reason, if set, keeps
// those whose reason contains it (case-insensitive).
func (a *App) DeadLetters(ctx context.Context, skipped bool, reason string, limit int) ([]DeadLetter, error) {
	if limit <= 0 || limit > MaxDeadLetters {
		limit = MaxDeadLetters
	}
	states := []freshen.ObjectState{freshen.StateFailed}
	if skipped {
		states = append(states, freshen.StateSkipped)
	}
	out := []DeadLetter{}
	for _, st := range states {
		objs, err := a.Ledger.ObjectsInState(ctx, st, limit)
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			if freshen.IsSidecar(o.Key) && o.State == freshen.StateSkipped {
				continue // a metadata sidecar is skipped by design, not a dead letter
			}
			if reason != "" && !strings.Contains(strings.ToLower(o.Reason), strings.ToLower(reason)) {
				continue
			}
			if len(out) == limit {
				return out, nil
			}
			out = append(out, DeadLetter{Key: o.Key, State: o.State, Reason: o.Reason, Attempts: o.Attempts, ETag: o.ETag,
				Size: o.Size, Since: o.UpdatedAt})
		}
	}
	return out, nil
}

// Redrive queues keys again, as fresh changes with their attempts reset,
// in every live generation. A key the ledger does not know is refused:
// re-drive is for objects freshen has seen.
func (a *App) Redrive(ctx context.Context, keys []string) (int, error) {
	return a.RedriveThrough(ctx, a.Sink(nil, nil), keys)
}

// RedriveThrough is Redrive through the intake in (the service's, which
// also wakes its workers).
func (a *App) RedriveThrough(ctx context.Context, in reconcile.Intake, keys []string) (int, error) {
	now := time.Now()
	changes := make([]freshen.Change, 0, len(keys))
	for _, k := range keys {
		if err := freshen.ValidKey(k); err != nil {
			return 0, freshen.Permanent(fmt.Errorf("key %q: %w", k, err))
		}
		st, err := a.Ledger.State(ctx, a.Config.Source.Bucket, k)
		if err != nil {
			return 0, err
		}
		if !st.Known {
			return 0, freshen.Permanent(fmt.Errorf("the ledger has no object %q: %w", k, freshen.ErrNotFound))
		}
		changes = append(changes, freshen.Change{Bucket: a.Config.Source.Bucket, Key: k, Kind: freshen.ChangeUpsert, EventTime: now, Origin: "redrive"})
	}
	if len(changes) == 0 {
		return 0, nil
	}
	if _, err := in.Add(ctx, "redrive", changes); err != nil {
		return 0, err
	}
	return len(changes), nil
}
