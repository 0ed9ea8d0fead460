package feedtest

import (
	"context"
	"fmt"
	"sync"

	"github.com/freshen-io/freshen"
)

// Sink is a freshen.Sink that records what a feed hands it, for the
// conformance suite and the feeds' own tests. A hook (SetHook, Hold)
// can make Put block or fail; a failed Put records nothing. It is safe
// for concurrent use.
type Sink struct {
	// Entered receives the changes of each Put as it starts, while it has
	// room (100): a test reads it to know that a Put is under way.
	Entered chan []freshen.Change

	origin   string
	mu       sync.Mutex
	puts     [][]freshen.Change
	attempts int
	received int
	drops    map[string]int
	hook     func(ctx context.Context, changes []freshen.Change) error
}

var _ freshen.Sink = (*Sink)(nil)

// NewSink returns an empty sink. Unless origin is "", Put fails for any
// other origin.
func NewSink(origin string) *Sink {
	return &Sink{origin: origin, drops: map[string]int{}, Entered: make(chan []freshen.Change, 100)}
}

// Put implements freshen.Sink: it counts the attempt, runs the hook (its
// error fails the Put) and records changes.
func (s *Sink) Put(ctx context.Context, origin string, changes []freshen.Change) error {
	if s.origin != "" && origin != s.origin {
		return fmt.Errorf("origin %q", origin)
	}
	s.mu.Lock()
	s.attempts++
	hook := s.hook
	s.mu.Unlock()
	select {
	case s.Entered <- changes:
	default:
	}
	if hook != nil {
		if err := hook(ctx, changes); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.puts = append(s.puts, append([]freshen.Change(nil), changes...))
	return nil
}

// Received implements freshen.Sink.
func (s *Sink) Received(_ string, n int) { s.mu.Lock(); s.received += n; s.mu.Unlock() }

// Drop implements freshen.Sink.
func (s *Sink) Drop(_, reason string, n int) { s.mu.Lock(); s.drops[reason] += n; s.mu.Unlock() }

// SetHook makes every Put from now on run h first; nil removes it.
func (s *Sink) SetHook(h func(ctx context.Context, changes []freshen.Change) error) {
	s.mu.Lock()
	s.hook = h
	s.mu.Unlock()
}

// Hold makes every Put from now on wait until release is called (or its
// context ends, which fails it); then Puts succeed again.
func (s *Sink) Hold() (release func()) {
	gate := make(chan struct{})
	s.SetHook(func(ctx context.Context, _ []freshen.Change) error {
		select {
		case <-gate:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	return sync.OnceFunc(func() { close(gate) })
}

// Puts returns the changes of each successful Put, in order.
func (s *Sink) Puts() [][]freshen.Change {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]freshen.Change(nil), s.puts...)
}

// Changes returns every change recorded, in order.
func (s *Sink) Changes() []freshen.Change {
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []freshen.Change
	for _, p := range s.puts {
		all = append(all, p...)
	}
	return all
}

// Count is how many recorded changes are of key and kind.
func (s *Sink) Count(key string, kind freshen.ChangeKind) int {
	n := 0
	for _, c := range s.Changes() {
		if c.Key == key && c.Kind == kind {
			n++
		}
	}
	return n
}

// PutsOf is how many recorded changes are of key, whatever their kind.
func (s *Sink) PutsOf(key string) int {
	n := 0
	for _, c := range s.Changes() {
		if c.Key == key {
			n++
		}
	}
	return n
}

// Sequencers returns the sequencers of the changes of key, in the order
// they were recorded.
func (s *Sink) Sequencers(key string) []string {
	var seqs []string
	for _, c := range s.Changes() {
		if c.Key == key {
			seqs = append(seqs, c.Sequencer)
		}
	}
	return seqs
}

// Stats returns the Put attempts (failed ones included), the messages
// counted as received and the drops by reason.
func (s *Sink) Stats() (attempts, received int, drops map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := map[string]int{}
	for k, v := range s.drops {
		d[k] = v
	}
	return s.attempts, s.received, d
}
