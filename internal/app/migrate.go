package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/chunk"
	"github.com/freshen-io/freshen/internal/config"
	"github.com/freshen-io/freshen/internal/reconcile"
	"github.com/freshen-io/freshen/ledger/sqlite"
)

// ReadRegistry reads the registry of generations as it is now.
func (a *App) ReadRegistry(ctx context.Context) (Registry, error) {
	return ReadRegistry(ctx, a.shared.root)
}

// update changes the registry (see UpdateRegistry).
func (a *App) update(ctx context.Context, change func(*Registry) error) (Registry, error) {
	return UpdateRegistry(ctx, a.shared.root, change)
}

// PublishedName is the stable name applications query for the serving
// generation: a pgvector view (<table>_live) or a Weaviate alias
// (<Collection>Live), named after the configuration's index.
func PublishedName(cfg config.Config) string {
	switch cfg.Index.Type {
	case "pgvector":
		return pgTable(cfg.Index) + "_live"
	case "weaviate":
		return weaviateCollection(cfg.Index) + "Live"
	}
	return ""
}

// Publish points the published name at the serving generation's index
// (with replace false, only creates it when missing).
func (a *App) Publish(ctx context.Context, replace bool) error {
	p, ok := a.Index.(freshen.Publisher)
	name := PublishedName(a.shared.file)
	if !ok || name == "" {
		return nil
	}
	return p.Publish(ctx, name, replace)
}

// MigrationPlan is what `freshen migrate plan` prints.
type MigrationPlan struct {
	From     Generation `json:"from"`
	Changes  []string   `json:"changes"`
	Target   string     `json:"target"`
	Estimate Estimate   `json:"estimate"`
}

// PlanMigration prices building a generation for next beside the serving
// one: every object read and chunked with next's chunker, and the tokens
// of the chunks whose vectors are not known yet (same model and text in
// the serving generation's cache are reused).
func (a *App) PlanMigration(ctx context.Context, next config.Config) (MigrationPlan, error) {
	plan := MigrationPlan{From: a.Gen}
	if err := Check(next); err != nil {
		return plan, err
	}
	g := newGeneration(next, a.Gen, a.Registry.nextID())
	plan.Changes = describeChange(a.Gen.Spec, g.Spec)
	plan.Target = g.Target()
	if len(plan.Changes) == 0 {
		return plan, errors.New("the configuration makes the same vectors in the same index as the serving generation: nothing to migrate")
	}
	t, cleanup, err := a.scratch(ctx, next, g)
	if err != nil {
		return plan, err
	}
	defer cleanup()
	plan.Estimate, err = t.Estimate(ctx)
	return plan, err
}

// scratch is generation g with an empty ledger of its own, for
// estimating: its embedder and chunker, the serving generation's source
// and cache to reuse.
func (a *App) scratch(ctx context.Context, next config.Config, g Generation) (*App, func(), error) {
	cfg := configFor(next, g)
	cfg.DataDir = a.shared.file.DataDir
	t := &App{Config: cfg, Filter: a.Filter, Source: a.Source, Log: a.Log, Gen: g, Reuse: reuseFrom(a)}
	var err error
	if sameEmbedder(cfg.Embedder, a.Config.Embedder) {
		t.Embedder = a.Embedder
	} else if t.Embedder, err = embedders[cfg.Embedder.Type](ctx, cfg); err != nil {
		return nil, nil, err
	}
	t.Extractor = a.Extractor
	if t.Chunker, err = chunk.New(cfg.Chunk); err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "freshen-plan-")
	if err != nil {
		return nil, nil, err
	}
	led, err := sqlite.Open(ctx, filepath.Join(dir, "ledger.db"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	t.Ledger = led
	return t, func() {
		led.Close()
		os.RemoveAll(dir)
	}, nil
}

// StartMigration records a generation for next as building: every
// process then builds it beside the serving one (run picks it up within
// seconds; sync builds it too).
func (a *App) StartMigration(ctx context.Context, next config.Config) (Generation, error) {
	if err := Check(next); err != nil {
		return Generation{}, err
	}
	var g Generation
	_, err := a.update(ctx, func(r *Registry) error {
		if o, ok := r.Other(); ok {
			switch o.State {
			case GenBuilding:
				return fmt.Errorf("generation %d is already being built (freshen migrate status); abort it first to start another", o.ID)
			case GenRetired:
				return fmt.Errorf("generation %d is kept for a rollback until %s; drop it first (freshen migrate abort)", o.ID, o.DropAfter.Format(time.RFC3339))
			}
		}
		for _, o := range r.Gens {
			if o.State == GenDropped {
				return fmt.Errorf("generation %d is being dropped (its index and ledger are deleted within seconds by a running freshen, or by the next sync); try again then", o.ID)
			}
		}
		serving := r.Serving()
		g = newGeneration(next, serving, r.nextID())
		if len(describeChange(serving.Spec, g.Spec)) == 0 {
			return errors.New("the configuration makes the same vectors in the same index as the serving generation: nothing to migrate")
		}
		r.Gens, r.Next = append(r.Gens, g), g.ID+1
		return nil
	})
	return g, err
}

// MigrationStatus is the progress of the generation beside the serving
// one.
type MigrationStatus struct {
	Serving Generation `json:"serving"`
	// Other is the building (or retired) generation; nil when none.
	Other *GenerationProgress `json:"other,omitempty"`
}

// GenerationProgress is how far a generation is.
type GenerationProgress struct {
	Generation
	Target string `json:"target"`
	Model  string `json:"model"`
	// Objects are those it holds (indexed, skipped or failed); Of is the
	// serving generation's count, the goal.
	Objects int `json:"objects"`
	Of      int `json:"of"`
	Backlog int `json:"backlog"`
	// Tokens and USD are what building it has cost so far.
	Tokens int64   `json:"tokens"`
	USD    float64 `json:"usd"`
	// Reused counts chunks whose vectors were reused rather than embedded.
	Reused int64 `json:"reused"`
	// ETASeconds extrapolates from the objects done since it started (0
	// when unknown or done).
	ETASeconds float64 `json:"eta_seconds,omitempty"`
}

// Migration reports the generations and the progress of the one beside
// the serving one.
func (a *App) Migration(ctx context.Context) (MigrationStatus, error) {
	st := MigrationStatus{Serving: a.Gen}
	if a.Other == nil {
		return st, nil
	}
	o := a.Other
	p := &GenerationProgress{Generation: o.Gen, Target: o.Gen.Target(), Model: o.Embedder.Model().Name}
	mine, err := o.Ledger.Summary(ctx)
	if err != nil {
		return st, err
	}
	theirs, err := a.Ledger.Summary(ctx)
	if err != nil {
		return st, err
	}
	p.Objects, p.Of = mine.Indexed+mine.Skipped+mine.Failed, theirs.Indexed+theirs.Skipped+theirs.Failed
	if p.Backlog, _, err = o.Ledger.Backlog(ctx); err != nil {
		return st, err
	}
	c, err := o.Ledger.Counters(ctx)
	if err != nil {
		return st, err
	}
	p.Tokens, p.Reused = c.TokensEmbedded, c.ChunksReused
	p.USD = float64(c.TokensEmbedded) * o.Config.Embedder.PricePerMillionTokens / 1e6
	if el := time.Since(o.Gen.Created).Seconds(); o.Gen.State == GenBuilding && p.Objects > 0 && p.Objects < p.Of {
		p.ETASeconds = el / float64(p.Objects) * float64(p.Of-p.Objects)
	}
	st.Other = p
	return st, nil
}

// ErrNotComplete reports a switch to a generation that is not complete.
var ErrNotComplete = errors.New("the generation is not complete")

// SwitchReport is what a switch checked.
type SwitchReport struct {
	From, To int
	// Listed is how many objects the completeness pass listed.
	Listed int `json:"listed"`
	// Rows is how many index rows verify compared with the ledger.
	Rows int64 `json:"rows"`
}

// Switch makes the generation beside the serving one serve search, after
// proving it complete: nothing queued, a listing of the bucket that finds
// nothing it lacks, and an index that verifies exactly against its
// ledger. The old serving generation is kept (and kept fresh) until
// keep has passed, for a rollback. The published name (pgvector view,
// Weaviate alias) moves with it.
func (a *App) Switch(ctx context.Context, keep time.Duration) (SwitchReport, error) {
	var rep SwitchReport
	o := a.Other
	if o == nil {
		return rep, errors.New("no other generation: start one with freshen migrate start --config FILE")
	}
	rep.From, rep.To = a.Gen.ID, o.Gen.ID
	if n, _, err := o.Ledger.Backlog(ctx); err != nil {
		return rep, err
	} else if n > 0 {
		return rep, fmt.Errorf("%w: generation %d still has %d objects to do (freshen migrate status)", ErrNotComplete, o.Gen.ID, n)
	}
	// A listing that finds nothing the generation lacks (the count of
	// what it would queue, without queueing it).
	var missing counter
	pass, err := o.Reconciler(&missing).Pass(ctx, false)
	if err != nil {
		return rep, fmt.Errorf("checking generation %d against the bucket: %w", o.Gen.ID, err)
	}
	rep.Listed = pass.Listed
	if missing.n > 0 {
		return rep, fmt.Errorf("%w: a listing found %d objects generation %d does not have yet (they are queued by its reconciler; try again shortly)",
			ErrNotComplete, missing.n, o.Gen.ID)
	}
	vr, err := o.Verify(ctx, false, false)
	if err != nil {
		return rep, fmt.Errorf("verifying generation %d: %w", o.Gen.ID, err)
	}
	rep.Rows = vr.RowsChecked
	if vr.Drifts() > 0 {
		return rep, fmt.Errorf("%w: generation %d's index differs from its ledger (%d missing, %d orphans, %d mismatched): freshen verify --repair, or wait for its workers",
			ErrNotComplete, o.Gen.ID, vr.Missing, vr.Orphans, vr.Mismatched)
	}
	if p, ok := o.Index.(freshen.Publisher); ok && PublishedName(a.shared.file) != "" {
		if err := p.Publish(ctx, PublishedName(a.shared.file), true); err != nil {
			return rep, err
		}
	}
	_, err = a.update(ctx, func(r *Registry) error {
		now := time.Now().UTC()
		for i := range r.Gens {
			g := &r.Gens[i]
			switch g.ID {
			case a.Gen.ID:
				if g.State != GenServing {
					return fmt.Errorf("generation %d no longer serves: another process switched meanwhile", g.ID)
				}
				g.State, g.Switched, g.DropAfter = GenRetired, now, now.Add(keep)
			case o.Gen.ID:
				if g.State != GenBuilding && g.State != GenRetired {
					return fmt.Errorf("generation %d is %s", g.ID, g.State)
				}
				g.State, g.Switched, g.DropAfter = GenServing, now, time.Time{}
			}
		}
		return nil
	})
	if err != nil {
		// Put the published name back where search still is.
		a.Publish(ctx, true)
	}
	return rep, err
}

// counter is a reconcile intake that only counts.
type counter struct{ n int }

func (c *counter) Add(_ context.Context, _ string, changes []freshen.Change) (int, error) {
	c.n += len(changes)
	return len(changes), nil
}

var _ reconcile.Intake = (*counter)(nil)

// Abort stops maintaining the generation beside the serving one (one
// being built, or the old one kept for a rollback) and drops it: its
// index and its ledger are deleted once every process has let go.
func (a *App) Abort(ctx context.Context) (Generation, error) {
	var dropped Generation
	_, err := a.update(ctx, func(r *Registry) error {
		for i := range r.Gens {
			g := &r.Gens[i]
			if g.State == GenBuilding || g.State == GenRetired {
				g.State, g.Switched = GenDropped, time.Now().UTC()
				dropped = *g
				return nil
			}
		}
		return errors.New("no generation beside the serving one")
	})
	return dropped, err
}

// dropGrace is how long a dropped generation's data stays before it is
// deleted: every process reads the registry every few seconds and stops
// writing to it.
var dropGrace = 15 * time.Second

// Collect retires and drops generations whose time has come: a retired
// generation past its DropAfter becomes dropped, and a dropped one's
// index and ledger are deleted once dropGrace has passed. Processes that
// write (run, sync) call it.
func (a *App) Collect(ctx context.Context) error {
	r, err := a.ReadRegistry(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	due := false
	for _, g := range r.Gens {
		due = due || g.State == GenRetired && !g.DropAfter.IsZero() && now.After(g.DropAfter) || g.State == GenDropped && now.Sub(g.Switched) > dropGrace
	}
	if !due {
		return nil
	}
	if co, ok := a.shared.root.(freshen.Coordinator); ok {
		// One process of those sharing the ledger does it.
		l, ok, err := co.TryLead(ctx, "collect generations")
		if err != nil || !ok {
			return err
		}
		defer l.Release()
	}
	for _, g := range r.Gens {
		switch {
		case g.State == GenRetired && !g.DropAfter.IsZero() && now.After(g.DropAfter):
			if _, err := a.update(ctx, func(r *Registry) error {
				for i := range r.Gens {
					if r.Gens[i].ID == g.ID && r.Gens[i].State == GenRetired {
						r.Gens[i].State, r.Gens[i].Switched = GenDropped, now.UTC()
					}
				}
				return nil
			}); err != nil {
				return err
			}
			a.Log.Info("the old index generation's grace period is over; dropping it", "generation", g.ID)
		case g.State == GenDropped && now.Sub(g.Switched) > dropGrace:
			if err := a.purge(ctx, g); err != nil {
				return fmt.Errorf("dropping generation %d: %w", g.ID, err)
			}
			if _, err := a.update(ctx, func(r *Registry) error {
				r.Gens = slicesDeleteGen(r.Gens, g.ID)
				return nil
			}); err != nil {
				return err
			}
			a.Log.Info("dropped an index generation", "generation", g.ID, "target", g.Target())
		}
	}
	return nil
}

func slicesDeleteGen(gens []Generation, id int) []Generation {
	out := gens[:0]
	for _, g := range gens {
		if g.ID != id {
			out = append(out, g)
		}
	}
	return out
}

// purge deletes generation g's index and ledger contents.
func (a *App) purge(ctx context.Context, g Generation) error {
	file := a.shared.file
	cfg := configFor(file, g)
	var led freshen.Ledger
	if g.ID == 1 {
		led = a.shared.root
	} else {
		l, err := ledgers[cfg.Ledger.Type](ctx, cfg)
		if err != nil {
			return err
		}
		defer l.Close()
		led = l
	}
	// Indexes check the vector length on open: use the recorded one
	// (else ask the model).
	dim := g.Dim
	if dim == 0 {
		e, err := embedders[cfg.Embedder.Type](ctx, cfg)
		if err != nil {
			return err
		}
		dim = e.Model().Dim
		if c, ok := e.(interface{ Close() error }); ok {
			c.Close()
		}
	}
	cfg.Index.Create = true
	idx, err := indexes[cfg.Index.Type](ctx, cfg, dim)
	if err != nil {
		return err
	}
	if d, ok := idx.(freshen.Dropper); ok {
		if err := d.Drop(ctx); err != nil {
			idx.Close()
			return err
		}
	}
	idx.Close()
	if p, ok := led.(freshen.Purger); ok {
		if err := p.Purge(ctx); err != nil {
			return err
		}
	}
	if g.ID > 1 && cfg.Ledger.Type == "sqlite" {
		// Close first (the deferred Close runs after; removing an open
		// SQLite file is harmless on Linux).
		return os.RemoveAll(cfg.DataDir)
	}
	return nil
}
