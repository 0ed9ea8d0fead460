package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/internal/app"
	"github.com/freshen-io/freshen/internal/config"
)

// configFlag adds --config, which defaults to $FRESHEN_CONFIG.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", os.Getenv("FRESHEN_CONFIG"), "configuration file (YAML); every key can also be set with FRESHEN_* variables")
}

func loadConfig(file string) (config.Config, error) {
	return config.Load(file, os.Environ())
}

// openApp loads the configuration and opens the components.
func openApp(ctx context.Context, e *env, file string, o app.Options) (*app.App, error) {
	cfg, err := loadConfig(file)
	if err != nil {
		return nil, err
	}
	if e.open.Source != nil {
		o.Source = e.open.Source
	}
	if e.open.Embedder != nil {
		o.Embedder = e.open.Embedder
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	a, err := app.Open(ctx, cfg, o)
	if err != nil {
		return nil, noSpace(fmt.Errorf("open: %w", err), cfg.DataDir)
	}
	return a, nil
}

// isTerminal reports whether w is a terminal (for progress bars).
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// noSpace turns a full disk into one clear message naming the directory.
func noSpace(err error, dataDir string) error {
	if !errors.Is(err, freshen.ErrNoSpace) {
		return err
	}
	abs, _ := filepath.Abs(dataDir)
	return fmt.Errorf("the disk holding data-dir %s is full: free some space and run sync again; nothing was lost (unfinished keys stay queued) (%v)", abs, err)
}
