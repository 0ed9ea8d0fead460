package fake

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Clock is a fake clock whose Sleep returns at once, having moved the
// time on by d; it records every wait.
type Clock struct {
	// OnSleep, when set, runs before each wait; its error is returned
	// instead of waiting. Set it while no call is sleeping.
	OnSleep func(ctx context.Context) error

	mu    sync.Mutex
	now   time.Time
	slept []time.Duration
}

// NewClock returns a clock set to the real time now.
func NewClock() *Clock { return &Clock{now: time.Now()} }

func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	if c.OnSleep != nil {
		if err := c.OnSleep(ctx); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.slept = append(c.slept, d)
	return nil
}

// Slept returns every wait so far, in order.
func (c *Clock) Slept() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.slept)
}

// Advance moves the time on by d without a wait.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
