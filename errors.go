package freshen

import (
	"errors"
	"fmt"
	"time"
)

// Error classes. Every failure of processing one key falls in one of
// three classes, decided here and nowhere else (callers never match error
// strings):
//
//   - permanent: retrying the same input fails the same way (an input the
//     provider rejects, a vector of the wrong length, ErrEmptyInput). The
//     key is parked at once as a dead letter.
//   - retryable: anything else, including errors nobody classified (a
//     timeout, a reset connection, a 5xx). The key is retried with
//     backoff; a retry-after hint, when the error carries one, is honoured.
//   - not an attempt: the key could not be processed for a reason that
//     says nothing about the key (ErrPreconditionFailed: the object changed
//     while being read; ErrLeaseLost: another worker owns it now). It is
//     not counted against the retry budget.

// Permanent marks err as permanent: retrying the same input cannot help.
// It returns nil for a nil err.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &classified{err: err, permanent: true}
}

// Retryable marks err as worth retrying, no sooner than after (zero: the
// caller's own backoff decides). It returns nil for a nil err.
func Retryable(err error, after time.Duration) error {
	if err == nil {
		return nil
	}
	return &classified{err: err, after: after}
}

type classified struct {
	err       error
	permanent bool
	after     time.Duration
}

func (e *classified) Error() string { return e.err.Error() }
func (e *classified) Unwrap() error { return e.err }

// IsPermanent reports whether err, or an error it wraps, is permanent:
// marked with Permanent, or wrapping ErrEmptyInput or ErrDimension. An
// error marked Retryable further out wins over a permanent cause.
func IsPermanent(err error) bool {
	var c *classified
	if errors.As(err, &c) {
		return c.permanent
	}
	return errors.Is(err, ErrEmptyInput) || errors.Is(err, ErrDimension)
}

// RetryAfter returns the earliest time to retry that err asks for, if it
// carries one (a provider's Retry-After header, say).
func RetryAfter(err error) (time.Duration, bool) {
	var c *classified
	if errors.As(err, &c) && !c.permanent && c.after > 0 {
		return c.after, true
	}
	return 0, false
}

// IsNotAttempt reports whether err says nothing about the key itself, so
// the failure must not count against its retry budget.
func IsNotAttempt(err error) bool {
	return errors.Is(err, ErrPreconditionFailed) || errors.Is(err, ErrLeaseLost) || errors.Is(err, ErrUnavailable) ||
		errors.Is(err, ErrBudgetSpent) || errors.Is(err, ErrIndexUnavailable)
}

// ErrDimension reports a vector whose length is not the model's
// dimension. It is permanent.
var ErrDimension = errors.New("wrong vector dimension")

// CheckDim returns an error wrapping ErrDimension unless len(v) == dim.
func CheckDim(v []float32, dim int) error {
	if len(v) != dim {
		return fmt.Errorf("%w: %d values, want %d", ErrDimension, len(v), dim)
	}
	return nil
}

// ErrNoSpace reports that a write failed because the disk (or the
// database's quota) is full. It is retryable, but not by retrying at
// once: callers pause until space returns, and say so.
var ErrNoSpace = errors.New("no space left")

// Provider errors. Embedder clients wrap them (with Retryable or
// Permanent as fits) so that decorators and the pipeline act on the
// class, never on a provider's message.
var (
	// ErrRateLimited: the provider asked to slow down (HTTP 429, a
	// throttling exception). Retryable; RetryAfter says when, if known.
	ErrRateLimited = errors.New("rate limited")
	// ErrUnavailable: the provider is down, or a circuit breaker in front
	// of it is open. The work waits; it is not an attempt (IsNotAttempt),
	// so nothing is parked as failed because a provider is down.
	ErrUnavailable = errors.New("embedder unavailable")
	// ErrBatchTooLarge: a request exceeded a per-request cap (inputs,
	// tokens). Retrying it whole fails again; splitting it may not.
	ErrBatchTooLarge = errors.New("batch too large for one request")
	// ErrIndexUnavailable: the vector index's server cannot be reached
	// (refused, reset, shutting down). The work waits, and the workers
	// pause until it answers; it is not an attempt.
	ErrIndexUnavailable = errors.New("index unavailable")
	// ErrBudgetSpent: the daily embedding budget is spent. The work waits
	// for the next day (RetryAfter says how long); it is not an attempt.
	ErrBudgetSpent = errors.New("daily embedding budget spent")
)
