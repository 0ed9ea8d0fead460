// Package cli implements the freshen command line. Each command parses its
// own flags, builds what it needs and reports errors as a non-zero exit
// code with a one-line message; it never calls os.Exit itself, so tests can
// run commands in-process.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// command is one subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, env *env, args []string) error
}

// env is what a command may touch: its streams.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// usageError marks an error caused by how the command was called; Main
// prints the command's usage after it.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func commands() map[string]command {
	return map[string]command{
		"embed":  {"embed texts with the built-in model and print the vectors", runEmbed},
		"run":    {"watch the bucket: S3 events, periodic reconciliation, workers and the HTTP API", runRun},
		"sync":   {"reconcile the bucket with the index once, embedding only what changed", runSync},
		"search": {"search the index", runSearch},
		"status": {"show what is indexed, skipped, failed and pending", runStatus},
		"config": {"config check: validate a configuration and explain mistakes", runConfig},
	}
}

// Main runs the command line args and returns the process exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "freshen: unknown command %q\n\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	err := c.run(ctx, e, args[1:])
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	default:
		fmt.Fprintf(stderr, "freshen %s: %v\n", args[0], err)
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
}

func usage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("freshen keeps a vector index in sync with documents in S3.\n\nUsage: freshen COMMAND [flags]\n\nCommands:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %-8s %s\n", n, cmds[n].summary)
	}
	b.WriteString("\nRun 'freshen COMMAND -h' for a command's flags.\n")
	io.WriteString(w, b.String())
}

// newFlags returns a flag set whose errors go to the command's stderr.
func newFlags(e *env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: freshen %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags that may appear before or after the positional
// arguments, as users of modern CLIs expect.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
