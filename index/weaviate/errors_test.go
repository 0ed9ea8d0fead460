package weaviate

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/freshen-io/freshen"
	"github.com/weaviate/weaviate-go-client/v5/weaviate/fault"
)

// TestClassify: HTTP 4xx is permanent but 408 and 429; 5xx and transport
// errors are retryable; a server that cannot be reached (and HTTP 503) is
// ErrIndexUnavailable, but not a timeout or a canceled context; context
// errors and read-only shards stay visible.
func TestClassify(t *testing.T) {
	status := func(code int, body string) error { return &fault.WeaviateClientError{StatusCode: code, Msg: body} }
	// GraphQL queries nest the REST error in another one.
	nested := func(err error) error { return &fault.WeaviateClientError{StatusCode: -1, DerivedFromError: err} }
	// What net/http returns, wrapped as the client wraps it.
	transport := func(err error) error {
		return nested(&url.Error{Op: "Post", URL: "http://127.0.0.1:1/v1/batch/objects", Err: err})
	}
	dial := func(err error) error { return &net.OpError{Op: "dial", Net: "tcp", Err: err} }
	read := func(err error) error { return &net.OpError{Op: "read", Net: "tcp", Err: err} }
	unavailable := freshen.ErrIndexUnavailable
	for _, c := range []struct {
		name      string
		err       error
		permanent bool
		is        error
		msg       string
	}{
		{"422", status(422, `{"error":[{"message":"invalid object: no such prop"}]}`), true, nil, "HTTP 422: invalid object: no such prop"},
		{"404 nested", nested(status(404, "")), true, nil, "HTTP 404"},
		{"429", status(429, "slow down"), false, nil, "HTTP 429: slow down"},
		{"408", status(408, ""), false, nil, "HTTP 408"},
		{"500", nested(status(500, `{"error":[{"message":"boom"}]}`)), false, nil, "HTTP 500: boom"},
		{"transport", nested(errors.New("something odd")), false, nil, "something odd"},
		{"refused", transport(dial(os.NewSyscallError("connect", syscall.ECONNREFUSED))), false, unavailable, "connection refused"},
		{"reset", transport(read(os.NewSyscallError("read", syscall.ECONNRESET))), false, unavailable, "connection reset"},
		{"EOF", transport(io.EOF), false, unavailable, "EOF"},
		{"unexpected EOF", nested(transport(io.ErrUnexpectedEOF)), false, unavailable, "unexpected EOF"},
		{"DNS", transport(dial(&net.DNSError{Err: "no such host", Name: "weaviate.invalid", IsNotFound: true})), false, unavailable, "no such host"},
		{"503", nested(status(503, `{"error":[{"message":"shutting down"}]}`)), false, unavailable, "HTTP 503: shutting down"},
		{"canceled", nested(context.Canceled), false, context.Canceled, "context canceled"},
		{"deadline", transport(context.DeadlineExceeded), false, context.DeadlineExceeded, "deadline exceeded"},
		{"read-only", status(500, `{"error":[{"message":"store is read-only"}]}`), false, freshen.ErrNoSpace, "read-only"},
	} {
		err := classify("weaviate: op", c.err)
		if freshen.IsPermanent(err) != c.permanent {
			t.Errorf("%s: %v: permanent %v, want %v", c.name, err, freshen.IsPermanent(err), c.permanent)
		}
		if c.is != nil && !errors.Is(err, c.is) {
			t.Errorf("%s: %v does not wrap %v", c.name, err, c.is)
		}
		if want := c.is == unavailable; errors.Is(err, unavailable) != want || freshen.IsNotAttempt(err) != want {
			t.Errorf("%s: %v: ErrIndexUnavailable %v, not an attempt %v; want %v", c.name, err,
				errors.Is(err, unavailable), freshen.IsNotAttempt(err), want)
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "weaviate: op") || !strings.Contains(msg, c.msg) {
			t.Errorf("%s: message %q, want it to hold %q", c.name, msg, c.msg)
		}
	}
}
