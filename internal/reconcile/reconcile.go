// Package reconcile finds the changes that no event announced: it lists
// the bucket and merge-joins the listing against the ledger, both in key
// order, queueing new, changed and vanished keys.
//
// It streams both sides, so its memory does not grow with the bucket, and
// it never deletes anything itself: vanished keys are queued like any
// change (the worker confirms with the source), unless the mass-delete
// breaker trips.
package reconcile

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"os"
	"time"

	"github.com/freshen-io/freshen"
)

// Config tunes a reconciler.
type Config struct {
	Bucket string
	// Prefixes to list: sorted and non-overlapping (see
	// config.NormalizePrefixes), so their listings concatenate in key order.
	Prefixes []string
	// Match reports whether a listed key is watched.
	Match func(key string) bool
	// Chunker and Model are the current versions; objects indexed with
	// others are stale and re-queued.
	Chunker, Model string
	// MaxDeleteFraction and MinDeleteObjects configure the breaker: a pass
	// that would delete more than MaxDeleteFraction of the indexed objects,
	// and at least MinDeleteObjects, deletes nothing.
	MaxDeleteFraction float64
	MinDeleteObjects  int
	// TempDir holds the spill file of vanished keys.
	TempDir string
	// After and Through, when set, restrict the pass to keys k with
	// After < k <= Through (byte order; "" is unbounded): a range of the
	// bucket, so several processes can reconcile one large bucket in
	// parallel, each its own ranges.
	After, Through string
}

// inRange reports whether key is in the pass's range.
func (c Config) inRange(key string) bool {
	return key > c.After && (c.Through == "" || key <= c.Through)
}

// Report describes one pass.
type Report struct {
	Listed    int `json:"listed"`
	Ledger    int `json:"ledger"`
	New       int `json:"new"`
	Changed   int `json:"changed"`
	Vanished  int `json:"vanished"`
	Unchanged int `json:"unchanged"`
	Ignored   int `json:"ignored"`
	// Found counts the changes queued by this pass for keys that had no
	// pending change: changes no event announced (lost events).
	Found int `json:"found"`
	// MassDeleteBlocked is set when the breaker kept the vanished keys
	// from being queued; Message says why.
	MassDeleteBlocked bool          `json:"mass_delete_blocked"`
	Message           string        `json:"message,omitempty"`
	Duration          time.Duration `json:"duration_ns"`
}

// ErrMassDelete is returned (wrapped, with the report) when the breaker trips.
var ErrMassDelete = errors.New("mass delete blocked")

// Lister is the part of the ledger the reconciler reads.
type Lister interface {
	Objects(ctx context.Context, bucket, prefix, startAfter string, fn func(freshen.ObjectRecord) error) error
}

// Intake queues the changes a pass finds (intake.Sink.Add: the same path
// as every feed's, without the feed filters: the reconciler filters
// itself and must queue keys that left the filters).
type Intake interface {
	Add(ctx context.Context, origin string, changes []freshen.Change) (added int, err error)
}

// Reconciler compares a source with the ledger.
type Reconciler struct {
	cfg Config
	src freshen.Source
	led Lister
	in  Intake
	log *slog.Logger
}

// New builds a reconciler.
func New(cfg Config, src freshen.Source, led Lister, in Intake, log *slog.Logger) *Reconciler {
	if len(cfg.Prefixes) == 0 {
		cfg.Prefixes = []string{""}
	}
	if cfg.MaxDeleteFraction <= 0 {
		cfg.MaxDeleteFraction = 0.5
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Reconciler{cfg: cfg, src: src, led: led, in: in, log: log}
}

const enqueueBatch = 500

var errStop = errors.New("stop")

// Pass runs one reconciliation. allowMassDelete overrides the breaker.
// When the breaker trips, new and changed keys are still queued and the
// error wraps ErrMassDelete.
func (r *Reconciler) Pass(ctx context.Context, allowMassDelete bool) (Report, error) {
	start := time.Now()
	var rep Report
	now := start

	// The ledger side, pulled one row at a time. A failed read must abort
	// the pass: rows it did not return would look like new keys, and the
	// keys after them like vanished ones.
	var ledErr error
	pull, stop := iter.Pull(func(yield func(freshen.ObjectRecord) bool) {
		err := r.led.Objects(ctx, r.cfg.Bucket, "", r.cfg.After, func(o freshen.ObjectRecord) error {
			if !r.cfg.inRange(o.Key) || !yield(o) {
				return errStop
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			ledErr = err
		}
	})
	defer stop()
	next := func() (freshen.ObjectRecord, bool, error) {
		o, ok := pull()
		if !ok && ledErr != nil {
			return o, false, fmt.Errorf("reading the ledger: %w", ledErr)
		}
		return o, ok, nil
	}
	head, ok, err := next()
	if err != nil {
		return rep, fmt.Errorf("reconcile: %w", err)
	}

	spill, err := os.CreateTemp(r.cfg.TempDir, "vanished-*.jsonl")
	if err != nil {
		return rep, fmt.Errorf("reconcile: %w", err)
	}
	defer os.Remove(spill.Name())
	defer spill.Close()
	sw := bufio.NewWriter(spill)
	enc := json.NewEncoder(sw)

	var batch []freshen.Change
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		n, err := r.in.Add(ctx, "reconcile", batch)
		rep.Found += n
		batch = batch[:0]
		return err
	}
	queue := func(key string) error {
		batch = append(batch, freshen.Change{Bucket: r.cfg.Bucket, Key: key, Kind: freshen.ChangeUnknown, EventTime: now, Origin: "reconcile"})
		if len(batch) >= enqueueBatch {
			return flush()
		}
		return nil
	}
	vanish := func(o freshen.ObjectRecord) error {
		rep.Vanished++
		return enc.Encode(o.Key)
	}

	prev := ""
	first := true
	for _, prefix := range r.cfg.Prefixes {
		if r.cfg.Through != "" && prefix > r.cfg.Through {
			break // every key under it is past the range
		}
		err := r.src.List(ctx, prefix, r.cfg.After, func(obj freshen.ObjectInfo) error {
			if !r.cfg.inRange(obj.Key) {
				return errStop // listings are in key order: the rest is past the range
			}
			if !first && obj.Key <= prev {
				return fmt.Errorf("listing is not in key order (%q after %q): the store does not sort keys like S3", obj.Key, prev)
			}
			first, prev = false, obj.Key
			rep.Listed++
			var err error
			for ok && head.Key < obj.Key {
				rep.Ledger++
				if err := vanish(head); err != nil {
					return err
				}
				if head, ok, err = next(); err != nil {
					return err
				}
			}
			var row *freshen.ObjectRecord
			if ok && head.Key == obj.Key {
				rep.Ledger++
				h := head
				row = &h
				if head, ok, err = next(); err != nil {
					return err
				}
			}
			if r.cfg.Match != nil && !r.cfg.Match(obj.Key) {
				rep.Ignored++
				if row != nil {
					return vanish(*row)
				}
				return nil
			}
			switch {
			case row == nil:
				rep.New++
				return queue(obj.Key)
			case r.stale(*row, obj):
				rep.Changed++
				return queue(obj.Key)
			default:
				rep.Unchanged++
				return nil
			}
		})
		if err != nil && !errors.Is(err, errStop) {
			return rep, fmt.Errorf("reconcile: %w", err)
		}
	}
	for ok {
		rep.Ledger++
		if err := vanish(head); err != nil {
			return rep, fmt.Errorf("reconcile: %w", err)
		}
		if head, ok, err = next(); err != nil {
			return rep, fmt.Errorf("reconcile: %w", err)
		}
	}
	if err := flush(); err != nil {
		return rep, fmt.Errorf("reconcile: %w", err)
	}
	if err := sw.Flush(); err != nil {
		return rep, fmt.Errorf("reconcile: %w", err)
	}

	var passErr error
	limit := int(r.cfg.MaxDeleteFraction * float64(rep.Ledger))
	if rep.Vanished > limit && rep.Vanished >= r.cfg.MinDeleteObjects && !allowMassDelete {
		rep.MassDeleteBlocked = true
		rep.Message = fmt.Sprintf("refusing to delete %d of %d indexed objects (%.0f%%, over the %.0f%% mass-delete limit): "+
			"the listing may be wrong (credentials, bucket, prefix or endpoint). Nothing was deleted. If the objects really are gone, "+
			"run `freshen sync --allow-mass-delete` or set mass-delete.allow",
			rep.Vanished, rep.Ledger, 100*float64(rep.Vanished)/float64(max(rep.Ledger, 1)), 100*r.cfg.MaxDeleteFraction)
		r.log.Warn("mass delete blocked", "vanished", rep.Vanished, "indexed", rep.Ledger)
		passErr = fmt.Errorf("reconcile: %w: %s", ErrMassDelete, rep.Message)
	} else if rep.Vanished > 0 {
		n, err := r.queueSpilled(ctx, spill.Name(), now)
		rep.Found += n
		if err != nil {
			return rep, fmt.Errorf("reconcile: %w", err)
		}
	}
	rep.Duration = time.Since(start)
	return rep, passErr
}

// stale reports whether a listed object differs from the ledger's row.
func (r *Reconciler) stale(row freshen.ObjectRecord, obj freshen.ObjectInfo) bool {
	if row.ETag != obj.ETag || row.Size != obj.Size {
		return true
	}
	// A parked failure stays parked until the object changes.
	if row.State == freshen.StateFailed {
		return false
	}
	return (r.cfg.Chunker != "" && row.Chunker != r.cfg.Chunker) || (r.cfg.Model != "" && row.Model != r.cfg.Model)
}

func (r *Reconciler) queueSpilled(ctx context.Context, name string, now time.Time) (int, error) {
	f, err := os.Open(name)
	if err != nil {
		return 0, err
	}
	found := 0
	defer f.Close()
	dec := json.NewDecoder(bufio.NewReader(f))
	var batch []freshen.Change
	for {
		var key string
		if err := dec.Decode(&key); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return found, err
		}
		batch = append(batch, freshen.Change{Bucket: r.cfg.Bucket, Key: key, Kind: freshen.ChangeVanished, EventTime: now, Origin: "reconcile"})
		if len(batch) >= enqueueBatch {
			n, err := r.in.Add(ctx, "reconcile", batch)
			found += n
			if err != nil {
				return found, err
			}
			batch = batch[:0]
		}
	}
	n, err := r.in.Add(ctx, "reconcile", batch)
	return found + n, err
}
