package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/internal/app"
	"github.com/freshen-io/freshen/internal/config"
	"github.com/freshen-io/freshen/internal/tracing"
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

// withTracing turns on OpenTelemetry tracing when OTEL_EXPORTER_OTLP_*
// asks for it, for the commands that process objects; the returned
// function flushes the spans.
func withTracing(ctx context.Context, e *env) func() {
	shutdown, err := tracing.Setup(ctx, buildVersion())
	if err != nil {
		fmt.Fprintf(e.stderr, "freshen: tracing is off: %v\n", err)
		return func() {}
	}
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := shutdown(sctx); err != nil {
			fmt.Fprintf(e.stderr, "freshen: flushing traces: %v\n", err)
		}
	}
}

// buildVersion is the module version this binary was built from.
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
