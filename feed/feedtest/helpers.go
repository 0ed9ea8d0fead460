package feedtest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/freshen-io/freshen"
)

// Running is one Run of a feed, started by Start.
type Running struct {
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// Start runs f on s until Stop is called or the test ends; at the end of
// the test it reports an error Run returned.
func Start(t *testing.T, f freshen.Feed, s freshen.Sink) *Running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &Running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- f.Run(ctx, s) }()
	t.Cleanup(func() {
		if err := r.Stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return r
}

// Stop cancels Run and returns what it returned.
func (r *Running) Stop() error {
	r.cancel()
	return r.Wait()
}

// Wait waits for Run to return (at most 10s) and returns what it
// returned.
func (r *Running) Wait() error {
	r.once.Do(func() {
		select {
		case r.err = <-r.done:
		case <-time.After(10 * time.Second):
			r.err = errors.New("Run did not return within 10s")
		}
	})
	return r.err
}

// Eventually polls cond until it holds, failing the test after 15s with
// "timed out waiting: " and what.
func Eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Logger logs at level and above to the test's output until the test
// ends, and discards after that: a client's goroutines and callbacks may
// outlive Run by a moment, and writing to a finished test's output
// panics.
func Logger(t *testing.T, level slog.Level) *slog.Logger {
	w := &testWriter{w: t.Output()}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	mu   sync.Mutex
	w    io.Writer
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return len(p), nil
	}
	return w.w.Write([]byte(strings.TrimRight(string(p), "\n") + "\n"))
}

// CheckValidate checks a configuration type's Validate: each case edits
// a copy of ok, and Validate must then return nil (Want "") or an error
// whose message contains Want.
func CheckValidate[C interface{ Validate() error }](t *testing.T, ok C, cases []struct {
	Edit func(*C)
	Want string
}) {
	t.Helper()
	for _, tc := range cases {
		c := ok
		tc.Edit(&c)
		err := c.Validate()
		switch {
		case tc.Want == "" && err != nil:
			t.Errorf("%+v: %v", c, err)
		case tc.Want != "" && (err == nil || !strings.Contains(err.Error(), tc.Want)):
			t.Errorf("%+v: error %v, want one mentioning %q", c, err, tc.Want)
		}
	}
}
