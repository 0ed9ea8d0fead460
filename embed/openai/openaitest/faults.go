package openaitest

import (
	"math"
	"net/http"
	"strconv"
	"time"
)

// Fault is what the server does to one request instead of (or on top of)
// answering it well. Fields combine: Delay then Status, say. A zero Fault
// does nothing.
type Fault struct {
	// Delay answers late (or gives up early, when the client does).
	Delay time.Duration
	// Hang never answers: the handler waits until the client goes away
	// or the server closes. The client's timeout is what ends it.
	Hang bool
	// Reset closes the connection with a TCP reset instead of answering.
	Reset bool
	// Status, if non-zero, answers with this status and an OpenAI error
	// body made of Code, Type, Param and Message.
	Status                     int
	Code, Type, Param, Message string
	// Header is added to the answer (Retry-After, x-ratelimit-*).
	Header http.Header
	// Malformed answers 200 with a body that is not JSON.
	Malformed bool
	// VectorDelta answers with that many vectors fewer (negative) or more
	// (positive, repeating the last) than inputs.
	VectorDelta int
	// Dim, if non-zero, cuts or zero-pads every vector to this length.
	Dim int
	// Reverse lists the vectors last first, each with its right index:
	// the API promises the index, not the order.
	Reverse bool
}

// RateLimit answers 429 as OpenAI does when a request limit is hit,
// asking the client to wait after: Retry-After (whole seconds, rounded
// up), retry-after-ms, x-ratelimit-remaining-requests 0 and
// x-ratelimit-reset-requests.
func RateLimit(after time.Duration) Fault {
	h := http.Header{}
	h.Set("Retry-After", strconv.Itoa(int(math.Ceil(after.Seconds()))))
	h.Set("Retry-After-Ms", strconv.FormatInt(after.Milliseconds(), 10))
	h.Set("X-Ratelimit-Remaining-Requests", "0")
	h.Set("X-Ratelimit-Reset-Requests", after.String())
	return Fault{
		Status:  http.StatusTooManyRequests,
		Code:    "rate_limit_exceeded",
		Type:    "requests",
		Message: "Rate limit reached for requests (openaitest)",
		Header:  h,
	}
}

// Error answers status with an OpenAI error body carrying code (may be
// empty).
func Error(status int, code string) Fault {
	return Fault{Status: status, Code: code, Type: errorType(status), Message: http.StatusText(status) + " (openaitest)"}
}

// Reset closes the connection without an answer.
func Reset() Fault { return Fault{Reset: true} }

// Hang never answers.
func Hang() Fault { return Fault{Hang: true} }

// Malformed answers 200 with a truncated JSON body.
func Malformed() Fault { return Fault{Malformed: true} }

// WrongCount answers with delta vectors too many (or too few, if
// negative).
func WrongCount(delta int) Fault { return Fault{VectorDelta: delta} }

// WrongDim answers with vectors of length dim.
func WrongDim(dim int) Fault { return Fault{Dim: dim} }

// DefaultFaults are the faults drawn at random when Options.FaultRate is
// set and Options.Faults is not: the transient failures of a busy
// provider.
func DefaultFaults() []Fault {
	return []Fault{RateLimit(time.Second), Error(http.StatusInternalServerError, ""), Error(http.StatusServiceUnavailable, ""), Reset()}
}

func errorType(status int) string {
	switch {
	case status == http.StatusTooManyRequests:
		return "requests"
	case status >= 500:
		return "server_error"
	default:
		return "invalid_request_error"
	}
}
