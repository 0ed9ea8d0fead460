// Package verify proves that an index holds exactly what the ledger says
// it holds, and finds where it does not: anti-entropy for indexes that
// other programs (or people) can write to.
//
// It streams the ledger's objects and the index's rows side by side, both
// in byte order of keys, so memory holds one key's chunks at a time
// whatever the size of the bucket. For each key it compares the ledger's
// chunk set with the rows:
//
//   - missing: a chunk the ledger lists that has no row;
//   - orphan: a row of a key the ledger does not index, or of a chunk the
//     key's chunk set does not have;
//   - mismatched: a row whose hash is not the ledger's, whose text does
//     not hash to its hash (changed in the store), or that was written
//     for another version of the object.
//
// Keys with work in flight (queued, or with an unfinished write) are
// counted apart and not reported: their rows are about to change.
package verify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/freshen-io/freshen"
)

// Ledger is what verify reads of the ledger.
type Ledger interface {
	Objects(ctx context.Context, bucket, prefix, startAfter string, fn func(freshen.ObjectRecord) error) error
	State(ctx context.Context, bucket, key string) (freshen.KeyState, error)
	Queued(ctx context.Context, bucket, key string) (bool, error)
}

// Report is the outcome of a pass.
type Report struct {
	// KeysChecked counts keys either side has; ChunksChecked the chunks
	// the ledger lists; RowsChecked the index's rows.
	KeysChecked   int64 `json:"keys_checked"`
	ChunksChecked int64 `json:"chunks_checked"`
	RowsChecked   int64 `json:"rows_checked"`
	Missing       int64 `json:"missing"`
	Orphans       int64 `json:"orphans"`
	Mismatched    int64 `json:"mismatched"`
	// InFlight counts keys skipped because work on them is under way.
	InFlight int64 `json:"in_flight"`
	// Repaired counts the rows a repair rewrote or deleted.
	Repaired int64   `json:"repaired"`
	Seconds  float64 `json:"seconds"`
	// Examples are the first drifts found, for people.
	Examples []Drift `json:"examples,omitempty"`
}

// Drifts is the number of rows that are not as the ledger says.
func (r Report) Drifts() int64 { return r.Missing + r.Orphans + r.Mismatched }

// Drift is one row that differs.
type Drift struct {
	Kind   string          `json:"kind"` // missing, orphan or mismatched
	Key    string          `json:"key"`
	ID     freshen.ChunkID `json:"id"`
	Detail string          `json:"detail,omitempty"`
}

// Key is one key's drift, for repair.
type Key struct {
	Bucket, Key string
	// Known is whether the ledger has the key; if not, every row is an
	// orphan.
	Known                        bool
	Missing, Orphans, Mismatched []freshen.ChunkID
}

// maxExamples bounds Report.Examples.
const maxExamples = 20

// Run compares the ledger's bucket with the index's rows, calling onKey
// (if set) for every key with drift, in key order. An error from onKey
// stops the pass.
func Run(ctx context.Context, led Ledger, idx freshen.RowScanner, bucket string, onKey func(Key) error) (Report, error) {
	start := time.Now()
	v := &pass{ctx: ctx, led: led, bucket: bucket, onKey: onKey}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rows := make(chan freshen.Row, 512)
	scanErr := make(chan error, 1)
	go func() {
		defer close(rows)
		scanErr <- idx.Rows(ctx, bucket, func(r freshen.Row) error {
			select {
			case rows <- r:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	v.rows = rows
	err := led.Objects(ctx, bucket, "", "", func(o freshen.ObjectRecord) error {
		// Rows of keys before this one belong to keys the ledger lacks.
		for r := v.peek(); r != nil && r.Key < o.Key; r = v.peek() {
			if err := v.check(r.Key, nil); err != nil {
				return err
			}
		}
		return v.check(o.Key, &o)
	})
	for r := v.peek(); err == nil && r != nil; r = v.peek() {
		err = v.check(r.Key, nil)
	}
	cancel()
	for range rows { // let the scanner finish
	}
	if serr := <-scanErr; err == nil && serr != nil && !errors.Is(serr, context.Canceled) {
		err = fmt.Errorf("verify: reading the index: %w", serr)
	}
	v.rep.Seconds = time.Since(start).Seconds()
	if err != nil {
		return v.rep, err
	}
	return v.rep, nil
}

type pass struct {
	ctx    context.Context
	led    Ledger
	bucket string
	onKey  func(Key) error
	rows   <-chan freshen.Row
	next   *freshen.Row
	rep    Report
}

// peek returns the next index row without taking it (nil at the end).
func (v *pass) peek() *freshen.Row {
	if v.next == nil {
		if r, ok := <-v.rows; ok {
			v.next = &r
		}
	}
	return v.next
}

// check compares key's rows with the ledger's object o (nil: the ledger
// has no row for key).
func (v *pass) check(key string, o *freshen.ObjectRecord) error {
	var rows []freshen.Row
	for r := v.peek(); r != nil && r.Key == key; r = v.peek() {
		rows = append(rows, *r)
		v.next = nil
	}
	v.rep.KeysChecked++
	v.rep.RowsChecked += int64(len(rows))
	var st freshen.KeyState
	if o != nil {
		var err error
		if st, err = v.led.State(v.ctx, v.bucket, key); err != nil {
			return fmt.Errorf("verify: %s: %w", freshen.KeyForLog(key), err)
		}
	}
	v.rep.ChunksChecked += int64(len(st.Chunks))
	d := Key{Bucket: v.bucket, Key: key, Known: o != nil}
	var details []string
	want := make(map[freshen.ChunkID]freshen.ChunkHash, len(st.Chunks))
	for _, c := range st.Chunks {
		want[c.ID] = c.Hash
	}
	version := ""
	if o != nil {
		version = o.VersionID
		if version == "" {
			version = o.ETag
		}
	}
	for _, r := range rows {
		h, ok := want[r.ID]
		if !ok {
			d.Orphans = append(d.Orphans, r.ID)
			details = append(details, "")
			continue
		}
		delete(want, r.ID)
		switch {
		case r.Hash != h:
			d.Mismatched = append(d.Mismatched, r.ID)
			details = append(details, fmt.Sprintf("hash %s, the ledger's %s", r.Hash, h))
		case freshen.HashChunk(o.Chunker, r.Text) != r.Hash:
			d.Mismatched = append(d.Mismatched, r.ID)
			details = append(details, "text changed in the store")
		case r.Version != "" && r.Version != version:
			d.Mismatched = append(d.Mismatched, r.ID)
			details = append(details, fmt.Sprintf("written for version %s, the ledger's is %s", r.Version, version))
		}
	}
	for _, c := range st.Chunks {
		if _, ok := want[c.ID]; ok {
			d.Missing = append(d.Missing, c.ID)
		}
	}
	if len(d.Missing)+len(d.Orphans)+len(d.Mismatched) == 0 {
		return nil
	}
	// Drift on a key in work is work in progress, not drift.
	if o == nil {
		var err error
		if st, err = v.led.State(v.ctx, v.bucket, key); err != nil {
			return fmt.Errorf("verify: %s: %w", freshen.KeyForLog(key), err)
		}
	}
	queued, err := v.led.Queued(v.ctx, v.bucket, key)
	if err != nil {
		return fmt.Errorf("verify: %s: %w", freshen.KeyForLog(key), err)
	}
	if queued || st.Pending {
		v.rep.InFlight++
		return nil
	}
	v.rep.Missing += int64(len(d.Missing))
	v.rep.Orphans += int64(len(d.Orphans))
	v.rep.Mismatched += int64(len(d.Mismatched))
	v.example("missing", key, d.Missing, nil)
	v.example("orphan", key, d.Orphans, nil)
	var mismatchDetails []string
	for _, s := range details {
		if s != "" {
			mismatchDetails = append(mismatchDetails, s)
		}
	}
	v.example("mismatched", key, d.Mismatched, mismatchDetails)
	if v.onKey != nil {
		return v.onKey(d)
	}
	return nil
}

func (v *pass) example(kind, key string, ids []freshen.ChunkID, details []string) {
	for i, id := range ids {
		if len(v.rep.Examples) >= maxExamples {
			return
		}
		ex := Drift{Kind: kind, Key: key, ID: id}
		if i < len(details) {
			ex.Detail = details[i]
		}
		v.rep.Examples = append(v.rep.Examples, ex)
	}
}
