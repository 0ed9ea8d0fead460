// Package app builds freshen's components from a configuration. It is the
// one place that lists the built-in implementations (restic's
// backend/all): the embedded defaults are chosen here, and nothing
// registers itself.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/chunk"
	"github.com/freshen-io/freshen/embed/batch"
	"github.com/freshen-io/freshen/embed/builtin"
	"github.com/freshen-io/freshen/extract"
	"github.com/freshen-io/freshen/index/embedded"
	"github.com/freshen-io/freshen/internal/config"
	"github.com/freshen-io/freshen/internal/pipeline"
	"github.com/freshen-io/freshen/internal/reconcile"
	"github.com/freshen-io/freshen/ledger/sqlite"
	s3source "github.com/freshen-io/freshen/source/s3"
)

// App holds the components of one freshen process.
type App struct {
	Config    config.Config
	Filter    *config.Filter
	Source    freshen.Source
	Ledger    *sqlite.Ledger
	Index     *embedded.Index
	Embedder  freshen.Embedder
	Extractor freshen.Extractor
	Chunker   freshen.Chunker
	Log       *slog.Logger
	lock      *os.File
}

// Options adjust Open.
type Options struct {
	Log *slog.Logger
	// Embedder replaces the built-in model (benchmarks count tokens with a
	// fake one; tests use a fast one).
	Embedder freshen.Embedder
	// NoSource skips building the S3 client (search and status do not
	// need one).
	NoSource bool
	// Exclusive locks the data directory for this process (sync and run
	// write; search and status only read) and frees leases that a crashed
	// predecessor left.
	Exclusive bool
}

// Open builds every component. Close releases them.
func Open(ctx context.Context, cfg config.Config, o Options) (*App, error) {
	a := &App{Config: cfg, Log: o.Log}
	if a.Log == nil {
		a.Log = slog.New(slog.DiscardHandler)
	}
	var err error
	if a.Filter, err = config.NewFilter(cfg.Source); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data-dir: %w", err)
	}
	if o.Exclusive {
		if a.lock, err = lockDataDir(cfg.DataDir); err != nil {
			return nil, err
		}
	}
	if !o.NoSource {
		src, err := s3source.New(ctx, s3source.Config{Bucket: cfg.Source.Bucket, Endpoint: cfg.Source.Endpoint, Region: cfg.Source.Region, PathStyle: cfg.Source.PathStyle})
		if err != nil {
			return nil, err
		}
		a.Source = src
	}
	a.Embedder = o.Embedder
	if a.Embedder == nil {
		m, err := builtin.Default()
		if err != nil {
			return nil, err
		}
		// Workers embed a few chunks each; merged into one forward pass
		// the model runs several times faster. One call per core at once.
		a.Embedder = batch.New(m, batch.Config{Parallel: runtime.GOMAXPROCS(0)})
	}
	a.Extractor = extract.New(extract.Config{MaxBytes: int64(cfg.Limits.MaxObjectBytes)})
	c := cfg.Chunk
	if a.Chunker, err = chunk.New(chunk.Config{MinTokens: c.MinTokens, TargetTokens: c.TargetTokens, MaxTokens: c.MaxTokens,
		HardHeadingLevel: c.HardHeadingLevel, OverlapBlocks: c.OverlapBlocks}); err != nil {
		return nil, err
	}
	if a.Ledger, err = sqlite.Open(ctx, filepath.Join(cfg.DataDir, "ledger.db")); err != nil {
		return nil, err
	}
	if a.Index, err = embedded.Open(ctx, filepath.Join(cfg.DataDir, "index.db")); err != nil {
		a.Ledger.Close()
		return nil, err
	}
	if o.Exclusive {
		if err := a.Ledger.ReleaseAll(ctx); err != nil {
			a.Close()
			return nil, err
		}
	}
	return a, nil
}

// Close releases the databases.
func (a *App) Close() error {
	err := errors.Join(a.Index.Close(), a.Ledger.Close())
	if a.lock != nil {
		a.lock.Close()
	}
	return err
}

// Pipeline builds the worker pool; onDone observes each processed key.
func (a *App) Pipeline(onDone func(pipeline.Result)) *pipeline.Pipeline {
	return pipeline.New(pipeline.Config{
		Bucket:         a.Config.Source.Bucket,
		Workers:        a.Config.Workers,
		Match:          a.Filter.Match,
		MaxObjectBytes: int64(a.Config.Limits.MaxObjectBytes),
		MaxAttempts:    a.Config.Limits.MaxAttempts,
		Backoff:        200 * time.Millisecond,
	}, a.Source, a.Extractor, a.Chunker, a.Embedder, a.Index, a.Ledger, a.Log, onDone)
}

// Reconciler builds the reconciler.
func (a *App) Reconciler() *reconcile.Reconciler {
	return reconcile.New(reconcile.Config{
		Bucket:            a.Config.Source.Bucket,
		Prefixes:          a.Filter.Prefixes(),
		Match:             a.Filter.Match,
		Chunker:           a.Chunker.Version(),
		Model:             a.Embedder.Model().Name,
		MaxDeleteFraction: a.Config.MassDelete.MaxFraction,
		MinDeleteObjects:  a.Config.MassDelete.MinObjects,
		TempDir:           a.Config.DataDir,
	}, a.Source, a.Ledger, a.Log)
}
