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
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/freshen-io/freshen/internal/app"
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
	// open, if set, replaces parts of what commands open (tests run
	// commands on an in-memory bucket); see openApp.
	open app.Options
}

// usageError marks an error caused by how the command was called; Main
// prints the command's usage after it.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func commands() map[string]command {
	return map[string]command{
		"embed":        {"embed texts with the built-in model and print the vectors", runEmbed},
		"run":          {"watch the bucket: S3 events, periodic reconciliation, workers and the HTTP API", runRun},
		"sync":         {"reconcile the bucket with the index once, embedding only what changed", runSync},
		"search":       {"search the index", runSearch},
		"status":       {"show what is indexed, skipped, failed and pending", runStatus},
		"estimate":     {"tokens, money and time a sync would spend, before spending anything", runEstimate},
		"wait":         {"wait until a version of a key is searchable (read-your-writes)", runWait},
		"verify":       {"prove the index holds exactly what the ledger says; --repair fixes drift without embedding", runVerify},
		"dead-letters": {"list the objects freshen gave up on (failed) or skipped, with their reasons", runDeadLetters},
		"redrive":      {"queue failed objects again once their cause is fixed: KEY... or --all [--reason SUBSTR]", runRedrive},
		"migrate":      {"change the model or the chunking without downtime: plan, start, status, switch, rollback, abort", runMigrate},
		"config":       {"config check: validate a configuration and explain mistakes", runConfig},
	}
}

// Main runs the command line args and returns the process exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return (&env{stdin: stdin, stdout: stdout, stderr: stderr}).main(ctx, args)
}

func (e *env) main(ctx context.Context, args []string) int {
	stderr := e.stderr
	// ctx ends at the first SIGINT or SIGTERM and the command winds down;
	// a second one ends the process at once, as users of a terminal expect.
	reset := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		signal.Reset(os.Interrupt, syscall.SIGTERM)
		close(reset)
	})
	defer func() {
		if !stop() {
			<-reset
		}
	}()
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
	case ctx.Err() != nil:
		// A signal stopped the command. Commands that leave work undone
		// say what; for the others "context canceled" would only puzzle.
		msg := err.Error()
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			msg = "interrupted"
		}
		fmt.Fprintf(stderr, "freshen %s: %s\n", args[0], msg)
		return interruptedCode(ctx)
	default:
		fmt.Fprintf(stderr, "freshen %s: %v\n", args[0], err)
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
}

// interruptedCode is the exit code of a command stopped because ctx was
// cancelled: 128 + the number of the signal that cancelled it, as shells
// report a process a signal ended (130 for SIGINT, 143 for SIGTERM), and
// 130 when the cause names no signal. cmd/freshen cancels ctx with
// signal.NotifyContext, whose cause reads "<signal> signal received".
func interruptedCode(ctx context.Context) int {
	if cause := context.Cause(ctx); cause != nil {
		for _, s := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
			if cause.Error() == s.String()+" signal received" {
				return 128 + int(s)
			}
		}
	}
	return 128 + int(syscall.SIGINT)
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
		fmt.Fprintf(&b, "  %-13s %s\n", n, cmds[n].summary)
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
