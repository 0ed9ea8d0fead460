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
	lock        *os.File
	waits       commits
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

// Open builds every component. Close releases them.
func Open(ctx context.Context, cfg config.Config, o Options) (_ *App, err error) {
	if err := Check(cfg); err != nil {
		return nil, err
	}
	a := &App{Config: cfg, Log: o.Log}
	if a.Log == nil {
		a.Log = slog.New(slog.DiscardHandler)
	}
	defer func() {
		if err != nil {
			a.Close() // what was opened so far
		}
	}()
	if a.Filter, err = config.NewFilter(cfg.Source); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data-dir: %w", err)
	}
	// The data directory is locked when it holds a database only one
	// process may write: the SQLite ledger, the embedded index.
	if o.Exclusive && (cfg.Ledger.Type == "sqlite" || cfg.Index.Type == "embedded") {
		if a.lock, err = lockDataDir(cfg.DataDir); err != nil {
			return nil, err
		}
	}
	switch {
	case o.Source != nil:
		a.Source = o.Source
	case !o.NoSource:
		if a.Source, err = s3source.New(ctx, s3source.Config{Bucket: cfg.Source.Bucket, Endpoint: cfg.Source.Endpoint,
			Region: cfg.Source.Region, PathStyle: cfg.Source.PathStyle}); err != nil {
			return nil, err
		}
	}
	if a.Embedder = o.Embedder; a.Embedder == nil {
		if a.Embedder, err = embedders[cfg.Embedder.Type](ctx, cfg); err != nil {
			return nil, err
		}
	}
	a.Extractor = extract.New(extract.Config{MaxBytes: int64(cfg.Limits.MaxObjectBytes)})
	if a.Chunker, err = chunk.New(cfg.Chunk); err != nil {
		return nil, err
	}
	// Through locals: a constructor's typed nil must not become a
	// non-nil interface that Close would call.
	led, err := ledgers[cfg.Ledger.Type](ctx, cfg)
	if err != nil {
		return nil, err
	}
	a.Ledger = led
	idx, err := indexes[cfg.Index.Type](ctx, cfg, a.Embedder.Model().Dim)
	if err != nil {
		return nil, err
	}
	a.Index = idx
	if r, ok := a.Ledger.(interface{ ReleaseAll(context.Context) error }); ok && o.Exclusive && cfg.Ledger.Type == "sqlite" {
		// The data-dir lock proves no other process uses this ledger:
		// every lease in it is a crashed predecessor's. (A shared
		// ledger waits for leases to expire instead.)
		if err := r.ReleaseAll(ctx); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Close releases every component; it may be called on a partly opened
// App.
func (a *App) Close() error {
	var errs []error
	if c, ok := a.Embedder.(io.Closer); ok {
		errs = append(errs, c.Close())
	}
	if a.Index != nil {
		errs = append(errs, a.Index.Close())
	}
	if a.Ledger != nil {
		errs = append(errs, a.Ledger.Close())
	}
	if a.lock != nil {
		a.lock.Close()
	}
	return errors.Join(errs...)
}

// Sink builds the intake every feed and the reconciler hand changes to.
func (a *App) Sink(obs intake.Observer, wake func()) *intake.Sink {
	return intake.New(intake.Config{Bucket: a.Config.Source.Bucket, Match: a.Filter.Match}, a.Ledger, obs, wake)
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
