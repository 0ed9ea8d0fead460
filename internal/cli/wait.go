package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/freshen-io/freshen/internal/app"
)

func runWait(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "wait", "wait --config FILE [--etag E | --version-id V] [--timeout 30s] [--json] KEY")
	cfgFile := configFlag(fs)
	etag := fs.String("etag", "", "the version to wait for, by ETag (default: whatever change of KEY is pending)")
	versionID := fs.String("version-id", "", "the version to wait for, by VersionID (versioned buckets)")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	asJSON := fs.Bool("json", false, "print the key's state as JSON")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageError{"wait takes one KEY"}
	}
	a, err := openApp(ctx, e, *cfgFile, app.Options{})
	if err != nil {
		return err
	}
	defer a.Close()
	wctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	res, err := a.Wait(wctx, rest[0], *etag, *versionID)
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(res)
	} else {
		fmt.Fprintf(e.stdout, "%s: %s", res.Key, res.State)
		if res.ETag != "" {
			fmt.Fprintf(e.stdout, " (etag %s)", res.ETag)
		}
		if res.Searchable {
			fmt.Fprint(e.stdout, ", searchable")
		}
		if res.Newer {
			fmt.Fprint(e.stdout, ", a newer version than the one asked for")
		}
		if res.Reason != "" {
			fmt.Fprintf(e.stdout, ": %s", res.Reason)
		}
		fmt.Fprintln(e.stdout)
	}
	switch {
	case errors.Is(err, app.ErrGone):
		return fmt.Errorf("%s is gone: that version will never be searchable", rest[0])
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return fmt.Errorf("not searchable within %s (is `freshen run` running, and did its event arrive?)", *timeout)
	case err != nil:
		return err
	case !res.Searchable:
		return fmt.Errorf("%s is %s, not searchable", rest[0], res.State)
	}
	return nil
}
