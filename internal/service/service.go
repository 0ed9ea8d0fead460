// Package service gives freshen's long-running parts (the worker pool,
// the reconcile loop, the backlog sampler, the HTTP server) one
// lifecycle, after river's startstop: Start launches the service's
// goroutines and returns; Stop cancels them and waits until every one has
// returned. A second Start while running, or a Stop before Start or after
// Stop, is harmless.
//
// It must never let a goroutine outlive Stop: the databases close right
// after.
package service

import (
	"context"
	"sync"
	"time"
)

// Service is a long-running component.
type Service interface {
	// Start launches the service. It returns an error only when the
	// service could not start; the goroutines it launched stop when ctx
	// is done or Stop is called.
	Start(ctx context.Context) error
	// Stop stops the service and waits for its goroutines.
	Stop()
}

// Base does the bookkeeping: embed it and call StartInit in Start and Go
// for every goroutine.
type Base struct {
	mu      sync.Mutex
	running bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// StartInit returns the context the service's goroutines run under, and
// false if the service is already running (Start should then return nil).
func (b *Base) StartInit(ctx context.Context) (context.Context, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.running {
		return nil, false
	}
	ctx, cancel := context.WithCancel(ctx)
	b.running, b.cancel = true, cancel
	return ctx, true
}

// Go runs fn in a goroutine that Stop waits for.
func (b *Base) Go(fn func()) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		fn()
	}()
}

// Stop cancels the context from StartInit and waits for every goroutine
// started with Go.
func (b *Base) Stop() {
	b.mu.Lock()
	cancel := b.cancel
	b.running, b.cancel = false, nil
	b.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	b.wg.Wait()
}

// Group starts services in order and stops them in reverse order.
type Group []Service

// Start starts every service; if one fails, those already started are
// stopped and the error is returned.
func (g Group) Start(ctx context.Context) error {
	for i, s := range g {
		if err := s.Start(ctx); err != nil {
			Group(g[:i]).Stop()
			return err
		}
	}
	return nil
}

// Stop stops every service, last started first.
func (g Group) Stop() {
	for i := len(g) - 1; i >= 0; i-- {
		g[i].Stop()
	}
}

// Sleep waits d, or until ctx is done; it reports whether the whole wait
// passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
