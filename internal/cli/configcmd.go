package cli

import (
	"context"
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/freshen-io/freshen/internal/app"
	"github.com/freshen-io/freshen/internal/config"
)

func runConfig(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] != "check" {
		return usageError{"usage: freshen config check --config FILE"}
	}
	fs := newFlags(e, "config check", "config check --config FILE")
	cfgFile := configFlag(fs)
	if _, err := parse(fs, args[1:]); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgFile)
	if err != nil {
		return err
	}
	// Exactly what a start checks, without opening anything.
	if err := app.Check(cfg); err != nil {
		return err
	}
	if err := cfg.Exposure(); err != nil {
		return fmt.Errorf("freshen run would refuse to start: %w", err)
	}
	f, _ := config.NewFilter(cfg.Source)
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "# effective configuration (file, then FRESHEN_* variables, then defaults)\n%s", out)
	fmt.Fprintf(e.stdout, "# watching s3://%s under %q\nconfiguration OK\n", cfg.Source.Bucket, f.Prefixes())
	return nil
}
