package cli

import (
	"context"
	"log/slog"

	"github.com/freshen-io/freshen/internal/app"
	"github.com/freshen-io/freshen/internal/daemon"
)

func runRun(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "run", "run --config FILE [--listen ADDR]")
	cfgFile := configFlag(fs)
	listen := fs.String("listen", "", "HTTP address (default: the configuration's listen, 127.0.0.1:8080)")
	verbose := fs.Bool("v", false, "log every processed object")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	defer withTracing(ctx, e)()
	a, err := openApp(ctx, e, *cfgFile, app.Options{Exclusive: true, Log: log})
	if err != nil {
		return err
	}
	defer a.Close()
	return daemon.Run(ctx, a, daemon.Options{Listen: *listen, Log: log})
}
