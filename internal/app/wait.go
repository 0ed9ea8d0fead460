package app

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/freshen-io/freshen"
)

// ErrGone reports a wait for a version of a key that no longer exists
// (or never did): it will never be searchable.
var ErrGone = errors.New("the key is gone")

// WaitResult is where a key stands for a reader who wrote it.
type WaitResult struct {
	Key string `json:"key"`
	// State is the key's state in the ledger: indexed, skipped, failed,
	// deleted, or pending (a change is queued or being written).
	State     string `json:"state"`
	ETag      string `json:"etag,omitempty"`
	VersionID string `json:"version_id,omitempty"`
	// Searchable is true once search answers from the version waited
	// for (or a newer one; or, for a delete, once the key's chunks are
	// gone).
	Searchable bool `json:"searchable"`
	// Newer says a newer version than the one waited for is what search
	// answers from.
	Newer bool `json:"newer,omitempty"`
	// Reason is why a version that is done is not searchable (skipped or
	// failed).
	Reason string `json:"reason,omitempty"`
}

// waitPoll bounds how long a waiter goes without looking when commits
// may happen that do not wake it (another process's, on a ledger that
// does not announce them); waitPollNotified when every commit wakes it
// (App.Notified), as a safety net only: a thousand waiters then cost the
// ledger nothing while they wait.
const (
	waitPoll         = time.Second
	waitPollNotified = 30 * time.Second
)

// commits wakes the waiters of a key when this process commits it.
type commits struct {
	mu      sync.Mutex
	waiters map[string]map[chan struct{}]struct{}
}

func (c *commits) subscribe(key string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	c.mu.Lock()
	if c.waiters == nil {
		c.waiters = map[string]map[chan struct{}]struct{}{}
	}
	if c.waiters[key] == nil {
		c.waiters[key] = map[chan struct{}]struct{}{}
	}
	c.waiters[key][ch] = struct{}{}
	c.mu.Unlock()
	return ch, func() {
		c.mu.Lock()
		delete(c.waiters[key], ch)
		if len(c.waiters[key]) == 0 {
			delete(c.waiters, key)
		}
		c.mu.Unlock()
	}
}

// notifyAll wakes every waiter (they look again).
func (c *commits) notifyAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, chs := range c.waiters {
		for ch := range chs {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

func (c *commits) notify(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for ch := range c.waiters[key] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Committed tells waiters that key was just processed (the pipeline's
// onDone calls it).
func (a *App) Committed(key string) { a.waits.notify(key) }

// WakeWaiters makes every waiter look again.
func (a *App) WakeWaiters() { a.waits.notifyAll() }

// Wait returns once the version of key named by etag (or versionID) is
// searchable, or a newer one is, or, with neither given, once no change of
// key is pending (for a delete: once its chunks are gone). It returns
// ErrGone for a version of a key that is gone, and ctx's error, with the
// current state, when ctx ends first. Waiters cost nothing while they
// wait: this process's commits wake them, and they look again at least
// every second.
func (a *App) Wait(ctx context.Context, key, etag, versionID string) (WaitResult, error) {
	if err := freshen.ValidKey(key); err != nil {
		return WaitResult{Key: key}, freshen.Permanent(err)
	}
	woken, stop := a.waits.subscribe(key)
	defer stop()
	poll := waitPoll
	if a.Notified {
		poll = waitPollNotified
	}
	for {
		res, done, err := a.waitCheck(ctx, key, etag, versionID)
		if done || err != nil {
			return res, err
		}
		t := time.NewTimer(poll)
		select {
		case <-woken:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return res, ctx.Err()
		}
		t.Stop()
	}
}

// waitCheck reads where key stands and whether the wait is over.
func (a *App) waitCheck(ctx context.Context, key, etag, versionID string) (WaitResult, bool, error) {
	res := WaitResult{Key: key, State: "pending"}
	st, queued, err := a.State(ctx, key)
	if err != nil {
		return res, false, err
	}
	if st.Known {
		res.State, res.ETag, res.VersionID, res.Reason = string(st.Object.State), st.Object.ETag, st.Object.VersionID, st.Object.Reason
	} else if !queued && !st.Pending {
		res.State = "deleted"
	}
	if queued || st.Pending {
		res.State = "pending"
		return res, false, nil
	}
	asked := etag != "" || versionID != ""
	matches := st.Known && (etag != "" && sameETag(etag, st.Object.ETag) || versionID != "" && versionID == st.Object.VersionID)
	switch {
	case !asked && st.Known, matches:
		res.Searchable = st.Object.State == freshen.StateIndexed
		return res, true, nil
	case !asked:
		res.Searchable = true // deleted: its chunks are gone
		return res, true, nil
	}
	// A version other than the ledger's: is it newer (its change is on
	// its way) or older (superseded)? The bucket says which is current.
	if a.Source == nil {
		return res, false, nil
	}
	cur, err := a.Source.Stat(ctx, key)
	switch {
	case errors.Is(err, freshen.ErrNotFound):
		if !st.Known {
			return res, true, ErrGone
		}
		return res, false, nil // the delete is on its way
	case err != nil:
		return res, false, err
	case etag != "" && sameETag(etag, cur.ETag) || versionID != "" && versionID == cur.VersionID:
		return res, false, nil // the version waited for is current: its change is on its way
	case st.Known && sameETag(cur.ETag, st.Object.ETag):
		// The ledger has the current version, and the one waited for
		// is not it: superseded, so search answers from a newer one.
		res.Newer, res.Searchable = true, st.Object.State == freshen.StateIndexed
		return res, true, nil
	}
	return res, false, nil
}

// sameETag compares ETags with or without their quotes.
func sameETag(a, b string) bool { return unquote(a) == unquote(b) }

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

// OldestPending is when the oldest change not yet searchable happened
// (zero when none is pending): the freshness of search answers.
func (a *App) OldestPending(ctx context.Context) (time.Time, error) {
	if a.Ledger == nil {
		return time.Time{}, nil // a search-only App (tests)
	}
	_, oldest, err := a.Ledger.Backlog(ctx)
	return oldest, err
}
