package weaviate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/freshen-io/freshen"
	"github.com/weaviate/weaviate-go-client/v5/weaviate/fault"
)

// Error classes, decided here only:
//
//   - HTTP 4xx (422 invalid input, 400, 404 no such class...) is
//     permanent, except 408 and 429, which are retryable;
//   - a server that cannot be reached wraps freshen.ErrIndexUnavailable
//     (retryable and not an attempt: the pipeline pauses its workers
//     until it answers): a refused, reset or broken connection, a reply
//     cut short (EOF), a failed name lookup or any other failed dial,
//     and HTTP 503 (a server starting or shutting down, or a proxy
//     whose backend is down);
//   - other 5xx and timeouts are retryable (left unclassified): a timeout
//     may be this request's own doing (a huge batch), so it counts as an
//     attempt; context errors stay visible to errors.Is;
//   - a shard that Weaviate made read-only (its disk passed
//     DISK_USE_READONLY_PERCENTAGE) wraps freshen.ErrNoSpace;
//   - per-object errors of a batch and GraphQL errors are retryable.
//
// Dimension mismatches never reach the server: they are refused before
// any request with freshen.ErrDimension (permanent).

// unpack finds the HTTP status and message in a client error, or the
// transport error it derives from (status -1). The client nests errors
// (GraphQL wraps the REST error) and does not implement Unwrap.
func unpack(err error) (status int, msg string, cause error) {
	for err != nil {
		var we *fault.WeaviateClientError
		if !errors.As(err, &we) {
			return -1, "", err
		}
		if we.DerivedFromError == nil {
			return we.StatusCode, serverMessage(we.Msg), nil
		}
		err = we.DerivedFromError
	}
	return 0, "", nil
}

// serverMessage extracts the messages of Weaviate's error body
// {"error":[{"message":...}]}.
func serverMessage(body string) string {
	var b struct {
		Error []struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal([]byte(body), &b) == nil && len(b.Error) > 0 {
		msgs := make([]string, len(b.Error))
		for i, e := range b.Error {
			msgs[i] = e.Message
		}
		return strings.Join(msgs, "; ")
	}
	return strings.TrimSpace(body)
}

// classify wraps a client error with prefix and its class.
func classify(prefix string, err error) error {
	status, msg, cause := unpack(err)
	if cause != nil {
		if unreachable(cause) {
			return fmt.Errorf("%s: %w: %w", prefix, freshen.ErrIndexUnavailable, cause)
		}
		return fmt.Errorf("%s: %w", prefix, cause)
	}
	e := fmt.Errorf("%s: HTTP %d: %s", prefix, status, msg)
	switch {
	case status == http.StatusServiceUnavailable:
		return fmt.Errorf("%s: %w: HTTP %d: %s", prefix, freshen.ErrIndexUnavailable, status, msg)
	case readOnly(msg):
		return fmt.Errorf("%s: %w: %s", prefix, freshen.ErrNoSpace, msg)
	case status == http.StatusRequestTimeout || status == http.StatusTooManyRequests:
		return freshen.Retryable(e, 0)
	case status >= 400 && status < 500:
		return freshen.Permanent(e)
	}
	return e
}

// unreachable reports whether a transport error says the server cannot
// be reached, rather than that this request took too long or was
// canceled.
func unreachable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var dns *net.DNSError
	var op *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.As(err, &dns) || errors.As(err, &op) && op.Op == "dial"
}

// objectErrors reports the errors of some objects of a batch (or of a
// GraphQL query): retryable, unless the shard is read-only.
func objectErrors(prefix string, msgs []string) error {
	all := strings.Join(msgs, "; ")
	if readOnly(all) {
		return fmt.Errorf("%s: %w: %s", prefix, freshen.ErrNoSpace, all)
	}
	return fmt.Errorf("%s: %s", prefix, all)
}

func readOnly(msg string) bool { return strings.Contains(msg, "read-only") }
