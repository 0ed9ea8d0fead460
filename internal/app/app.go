// Package app builds freshen's components from a configuration: the
// composition root. registry.go is the one place that lists the built-in
// implementations (restic's backend/all); nothing registers itself, and
// everything above this package depends on the root interfaces only.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/chunk"
	"github.com/freshen-io/freshen/extract"
	"github.com/freshen-io/freshen/internal/config"
	"github.com/freshen-io/freshen/internal/intake"
	"github.com/freshen-io/freshen/internal/pipeline"
	"github.com/freshen-io/freshen/internal/reconcile"
	s3source "github.com/freshen-io/freshen/source/s3"
)

// App holds the components of one freshen process.
type App struct {
	Config    config.Config
	Filter    *config.Filter
	Source    freshen.Source
	Ledger    freshen.Ledger
	Index     freshen.Index
	Embedder  freshen.Embedder
	Extractor freshen.Extractor
	Chunker   freshen.Chunker
	Log       *slog.Logger
	// Health, when set (by `freshen run`), reports why the service
	// cannot make progress now; Status shows it.
	Health func() error
	// BudgetSpent, when set (by `freshen run`), reports that today's
	// embedding budget no longer fits a batch.
	BudgetSpent func() error
	waits       commits
	// ActivityLog, when set (by `freshen run`), records what this
	// process did lately (the dashboard's charts).
	ActivityLog *ActivityLog
	// Notified is set when every commit of the serving generation
	// reaches Committed (`freshen run` on a ledger of its own, or on one
	// that announces commits): waiters then never poll.
	Notified bool
	// Gen is the generation this App is; Other, on the serving one, is
	// the live generation beside it (building or retired), or nil.
	Gen   Generation
	Other *App
	// Registry is the generation registry as read at Open.
	Registry Registry
	// Reuse finds vectors for this generation's chunks in the other
	// generation's cache (see pipeline.Config.Reuse).
	Reuse          func(ctx context.Context, model string, chunks []freshen.Chunk) (map[freshen.ChunkHash][]float32, error)
	sharedEmbedder bool
	spentToday     func(ctx context.Context) (int64, error)
	// shared is set on the serving generation's App, which closes it.
	shared    *shared
	closeOnce sync.Once
	closeErr  error
	// Owner names this process's leases and its entry in a shared
	// ledger's process registry ("" picks a random name per pipeline).
	Owner string
}

// Options adjust Open.
type Options struct {
	Log *slog.Logger
	// Embedder replaces the configured one (benchmarks count tokens with
	// a fake one; tests use a fast one).
	Embedder freshen.Embedder
	// Source replaces the S3 source (tests use an in-memory bucket).
	Source freshen.Source
	// NoSource skips building the S3 client (search and status do not
	// need one).
	NoSource bool
	// Exclusive locks the data directory for this process (sync and run
	// write; search and status only read) and frees leases that a crashed
	// predecessor left in a ledger only this process uses.
	Exclusive bool
}

// Check reports what Open would refuse in cfg without opening anything:
// `freshen config check` runs it, so it reports exactly what a start
// would.
func Check(cfg config.Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	var errs []error
	for kind, name := range map[string]string{"ledger.type": cfg.Ledger.Type, "index.type": cfg.Index.Type, "embedder.type": cfg.Embedder.Type} {
		if !registered(kind, name) {
			errs = append(errs, fmt.Errorf("%s = %q is not built into this binary", kind, name))
		}
	}
	for _, f := range cfg.Feeds.Names {
		if _, ok := feeds[f]; !ok {
			errs = append(errs, fmt.Errorf("feed %q is not built into this binary", f))
		} else if err := checkFeed(f, cfg); err != nil {
			errs = append(errs, fmt.Errorf("feeds.%s: %w", f, err))
		}
	}
	if _, err := config.NewFilter(cfg.Source); err != nil {
		errs = append(errs, err)
	}
	if _, err := chunk.New(cfg.Chunk); err != nil {
		errs = append(errs, err)
	}
	if err := checkEmbedder(cfg); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Open builds every component of the serving generation, and of the
// generation beside it (App.Other) when a migration is under way or an
// old generation is kept for a rollback. Close releases them.
func Open(ctx context.Context, cfg config.Config, o Options) (_ *App, err error) {
	if err := Check(cfg); err != nil {
		return nil, err
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &shared{}
	defer func() {
		if err != nil && s.lock != nil {
			s.lock.Close()
		}
	}()
	filter, err := config.NewFilter(cfg.Source)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data-dir: %w", err)
	}
	// The data directory is locked when it holds a database only one
	// process may write: the SQLite ledger, the embedded index.
	if o.Exclusive && (cfg.Ledger.Type == "sqlite" || cfg.Index.Type == "embedded") {
		if s.lock, err = lockDataDir(cfg.DataDir); err != nil {
			return nil, err
		}
	}
	switch {
	case o.Source != nil:
		s.source = o.Source
	case !o.NoSource:
		if s.source, err = s3source.New(ctx, s3source.Config{Bucket: cfg.Source.Bucket, Endpoint: cfg.Source.Endpoint,
			Region: cfg.Source.Region, PathStyle: cfg.Source.PathStyle}); err != nil {
			return nil, err
		}
	}
	s.file, s.opts, s.filter, s.log = cfg, o, filter, log
	return s.open(ctx)
}

// Reopen opens the generations the registry lists now, sharing this
// App's data-dir lock and source (which it takes over); the caller
// closes this App once nothing uses it.
func (a *App) Reopen(ctx context.Context) (*App, error) {
	s := a.shared
	ns := &shared{lock: s.lock, source: s.source, file: s.file, opts: s.opts, filter: s.filter, log: s.log}
	n, err := ns.open(ctx)
	if err != nil {
		return nil, err
	}
	s.lock = nil
	return n, nil
}

// open opens the root ledger, reads (or starts) the registry and opens
// the live generations.
func (s *shared) open(ctx context.Context) (_ *App, err error) {
	cfg, o, filter, log := s.file, s.opts, s.filter, s.log
	defer func() {
		if err != nil && s.root != nil && !s.rootOwned {
			s.root.Close()
		}
	}()
	// Through locals: a constructor's typed nil must not become a
	// non-nil interface that Close would call.
	root, err := ledgers[cfg.Ledger.Type](ctx, cfg)
	if err != nil {
		return nil, err
	}
	s.root = root
	if r, ok := root.(interface{ ReleaseAll(context.Context) error }); ok && o.Exclusive && cfg.Ledger.Type == "sqlite" {
		// The data-dir lock proves no other process uses this ledger:
		// every lease in it is a crashed predecessor's. (A shared
		// ledger waits for leases to expire instead.)
		if err := r.ReleaseAll(ctx); err != nil {
			return nil, err
		}
	}
	reg, err := ReadRegistry(ctx, root)
	if err != nil {
		return nil, err
	}
	if len(reg.Gens) == 0 {
		if reg, err = adoptRegistry(ctx, root, cfg); err != nil {
			return nil, fmt.Errorf("recording generation 1: %w", err)
		}
	}
	a, err := s.openGen(ctx, cfg, filter, reg.Serving(), nil, o, log)
	if err != nil {
		return nil, err
	}
	a.Registry, a.shared = reg, s
	if g, ok := reg.Other(); ok {
		if a.Other, err = s.openGen(ctx, cfg, filter, g, a, o, log); err != nil {
			a.shared = nil
			a.Close()
			return nil, fmt.Errorf("generation %d: %w", g.ID, err)
		}
		a.Other.Registry = reg
		a.Other.Reuse, a.Reuse = reuseFrom(a), reuseFrom(a.Other)
		// One budget for all the embedding, whichever generation it is for.
		spent := func(ctx context.Context) (int64, error) {
			var sum int64
			for _, l := range []freshen.Ledger{a.Ledger, a.Other.Ledger} {
				c, err := l.Counters(ctx)
				if err != nil {
					return 0, err
				}
				sum += c.TokensToday
			}
			return sum, nil
		}
		a.spentToday, a.Other.spentToday = spent, spent
	}
	if err := a.recordDims(ctx); err != nil {
		a.Close()
		return nil, err
	}
	if !a.Matches(cfg) {
		log.Warn("the configuration's embedder or chunking differs from the generation serving search; it is not applied until a migration builds it",
			"serving", a.Gen.ID, "differences", strings.Join(describeChange(a.Gen.Spec, specOf(cfg)), "; "),
			"next", "freshen migrate plan --config FILE")
	}
	return a, nil
}

// recordDims records the vector length of the open generations that the
// registry does not know yet.
func (a *App) recordDims(ctx context.Context) error {
	dims := map[int]int{}
	for _, g := range []*App{a, a.Other} {
		if g != nil && g.Gen.Dim == 0 {
			dims[g.Gen.ID] = g.Embedder.Model().Dim
		}
	}
	if len(dims) == 0 {
		return nil
	}
	r, err := a.update(ctx, func(r *Registry) error {
		for i := range r.Gens {
			if d, ok := dims[r.Gens[i].ID]; ok && r.Gens[i].Dim == 0 {
				r.Gens[i].Dim = d
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("recording the generations' vector lengths: %w", err)
	}
	a.Registry = r
	if a.Other != nil {
		a.Other.Registry = r
	}
	return nil
}

// Matches reports whether cfg's embedder and chunking are those of a live
// generation (the serving one, or the one beside it).
func (a *App) Matches(cfg config.Config) bool {
	if sameVectors(specOf(cfg), a.Gen.Spec) && cfg.Index.Type == a.Gen.Spec.Index.Type {
		return true
	}
	return a.Other != nil && sameVectors(specOf(cfg), a.Other.Gen.Spec) && cfg.Index.Type == a.Other.Gen.Spec.Index.Type
}

// shared is what the generations of one process share: the data-dir
// lock, the source and the root ledger (which holds the registry).
type shared struct {
	lock   *os.File
	source freshen.Source
	root   freshen.Ledger
	// rootOwned is set when a generation's App closes the root ledger.
	rootOwned bool
	// What Open was given, for Reopen.
	file   config.Config
	opts   Options
	filter *config.Filter
	log    *slog.Logger
}

func (s *shared) close() error {
	var err error
	if s.root != nil && !s.rootOwned {
		err = s.root.Close()
	}
	if s.lock != nil {
		s.lock.Close()
	}
	return err
}

// openGen opens generation g's embedder, chunker, ledger and index. peer,
// when set, is the serving generation: an equal embedder is shared with
// it (one rate limiter and breaker for the provider).
func (s *shared) openGen(ctx context.Context, file config.Config, filter *config.Filter, g Generation, peer *App, o Options, log *slog.Logger) (_ *App, err error) {
	cfg := configFor(file, g)
	a := &App{Config: cfg, Filter: filter, Source: s.source, Log: log, Gen: g}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data-dir: %w", err)
	}
	switch {
	case peer != nil && sameEmbedder(cfg.Embedder, peer.Config.Embedder):
		a.Embedder, a.sharedEmbedder = peer.Embedder, true
	case o.Embedder != nil && sameEmbedder(cfg.Embedder, file.Embedder):
		a.Embedder = o.Embedder
	default:
		if a.Embedder, err = embedders[cfg.Embedder.Type](ctx, cfg); err != nil {
			return nil, err
		}
	}
	a.Extractor = extract.New(extract.Config{MaxBytes: int64(cfg.Limits.MaxObjectBytes)})
	if a.Chunker, err = chunk.New(cfg.Chunk); err != nil {
		return nil, err
	}
	if g.ID == 1 {
		a.Ledger = s.root
		s.rootOwned = true
	} else {
		led, err := ledgers[cfg.Ledger.Type](ctx, cfg)
		if err != nil {
			return nil, err
		}
		a.Ledger = led
		if r, ok := led.(interface{ ReleaseAll(context.Context) error }); ok && s.lock != nil && cfg.Ledger.Type == "sqlite" {
			if err := r.ReleaseAll(ctx); err != nil {
				return nil, err
			}
		}
	}
	idx, err := indexes[cfg.Index.Type](ctx, cfg, a.Embedder.Model().Dim)
	if err != nil {
		return nil, err
	}
	a.Index = idx
	return a, nil
}

// sameEmbedder reports whether two embedder sections make the same
// vectors (tuning aside).
func sameEmbedder(a, b config.EmbedderConfig) bool {
	return sameVectors(Spec{Embedder: a}, Spec{Embedder: b})
}

// reuseFrom finds vectors in a's embedding cache for chunks made by
// another chunker: a chunk's hash covers its chunker's version, so the
// same text is looked up under a's. Only vectors of the same model are
// reused.
func reuseFrom(a *App) func(ctx context.Context, model string, chunks []freshen.Chunk) (map[freshen.ChunkHash][]float32, error) {
	return func(ctx context.Context, model string, chunks []freshen.Chunk) (map[freshen.ChunkHash][]float32, error) {
		if model != a.Embedder.Model().Name {
			return nil, nil
		}
		version := a.Chunker.Version()
		theirs := make([]freshen.ChunkHash, len(chunks))
		for i, ch := range chunks {
			theirs[i] = freshen.HashChunk(version, ch.Text)
		}
		found, err := a.Ledger.CachedEmbeddings(ctx, model, theirs)
		if err != nil || len(found) == 0 {
			return nil, err
		}
		out := make(map[freshen.ChunkHash][]float32, len(found))
		for i, ch := range chunks {
			if v, ok := found[theirs[i]]; ok {
				out[ch.Hash] = v
			}
		}
		return out, nil
	}
}

// Close releases every component; it may be called on a partly opened
// App, and more than once (the service closes the Apps it replaced, and
// their opener closes its own).
func (a *App) Close() error {
	a.closeOnce.Do(func() { a.closeErr = a.close() })
	return a.closeErr
}

func (a *App) close() error {
	var errs []error
	if a.Other != nil {
		errs = append(errs, a.Other.Close())
	}
	if c, ok := a.Embedder.(io.Closer); ok && !a.sharedEmbedder {
		errs = append(errs, c.Close())
	}
	if a.Index != nil {
		errs = append(errs, a.Index.Close())
	}
	if a.Ledger != nil {
		errs = append(errs, a.Ledger.Close())
	}
	if a.shared != nil {
		errs = append(errs, a.shared.close())
	}
	return errors.Join(errs...)
}

// Sink builds the intake every feed and the reconciler hand changes to.
// Changes go to every live generation: the one being built (or kept for
// a rollback) stays as fresh as the serving one.
func (a *App) Sink(obs intake.Observer, wake func()) *intake.Sink {
	var q intake.Queue = a.Ledger
	if a.Other != nil {
		q = fanout{a.Ledger, a.Other.Ledger}
	}
	return intake.New(intake.Config{Bucket: a.Config.Source.Bucket, Match: a.Filter.Match}, q, obs, wake)
}

// fanout queues each change in every generation's ledger; it reports the
// first one's count of new keys.
type fanout []freshen.Ledger

func (f fanout) Enqueue(ctx context.Context, changes []freshen.Change) (int, error) {
	var added int
	for i, l := range f {
		n, err := l.Enqueue(ctx, changes)
		if err != nil {
			return added, err
		}
		if i == 0 {
			added = n
		}
	}
	return added, nil
}

// Feeds builds the configured feeds.
func (a *App) Feeds(ctx context.Context) ([]freshen.Feed, error) {
	var out []freshen.Feed
	for _, name := range a.Config.Feeds.Names {
		f, err := feeds[name](ctx, a.Config, a.Log)
		if err != nil {
			return nil, fmt.Errorf("feeds.%s: %w", name, err)
		}
		out = append(out, f)
	}
	return out, nil
}

// Pipeline builds the worker pool; onDone observes each processed key.
func (a *App) Pipeline(onDone func(pipeline.Result)) *pipeline.Pipeline {
	cfg := a.Config.Pipeline()
	cfg.Match = a.Filter.Match
	cfg.Owner = a.Owner
	cfg.Reuse, cfg.SpentToday = a.Reuse, a.spentToday
	if a.Gen.State != GenServing {
		// A generation being built (or kept for a rollback) is backlog:
		// half the workers, so the serving one keeps its pace.
		if cfg.Workers == 0 {
			cfg.Workers = pipeline.Defaults.Workers
		}
		cfg.Workers = max(1, cfg.Workers/2)
	}
	return pipeline.New(cfg, a.Source, a.Extractor, a.Chunker, a.Embedder, a.Index, a.Ledger, a.Log, onDone)
}

// Reconciler builds the reconciler of the whole bucket, queueing through in.
func (a *App) Reconciler(in reconcile.Intake) *reconcile.Reconciler {
	return a.ReconcilerRange(in, "", "")
}

// ReconcilerRange builds the reconciler of the bucket's keys k with
// after < k <= through ("" is unbounded).
func (a *App) ReconcilerRange(in reconcile.Intake, after, through string) *reconcile.Reconciler {
	return reconcile.New(reconcile.Config{
		Bucket:            a.Config.Source.Bucket,
		Prefixes:          a.Filter.Prefixes(),
		Match:             a.Filter.Match,
		Chunker:           a.Chunker.Version(),
		Model:             a.Embedder.Model().Name,
		MaxDeleteFraction: a.Config.MassDelete.MaxFraction,
		MinDeleteObjects:  a.Config.MassDelete.MinObjects,
		TempDir:           a.Config.DataDir,
		After:             after,
		Through:           through,
	}, a.Source, a.Ledger, in, a.Log)
}
