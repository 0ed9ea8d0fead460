package weaviate

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/freshen-io/freshen"
	"github.com/weaviate/weaviate-go-client/v5/weaviate/fault"
)

// TestClassify: HTTP 4xx is permanent but 408 and 429; 5xx and transport
// errors are retryable; context errors and read-only shards stay visible.
func TestClassify(t *testing.T) {
	status := func(code int, body string) error { return &fault.WeaviateClientError{StatusCode: code, Msg: body} }
	// GraphQL queries nest the REST error in another one.
	nested := func(err error) error { return &fault.WeaviateClientError{StatusCode: -1, DerivedFromError: err} }
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
		{"transport", nested(errors.New("connection refused")), false, nil, "connection refused"},
		{"canceled", nested(context.Canceled), false, context.Canceled, "context canceled"},
		{"read-only", status(500, `{"error":[{"message":"store is read-only"}]}`), false, freshen.ErrNoSpace, "read-only"},
	} {
		err := classify("weaviate: op", c.err)
		if freshen.IsPermanent(err) != c.permanent {
			t.Errorf("%s: %v: permanent %v, want %v", c.name, err, freshen.IsPermanent(err), c.permanent)
		}
		if c.is != nil && !errors.Is(err, c.is) {
			t.Errorf("%s: %v does not wrap %v", c.name, err, c.is)
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "weaviate: op") || !strings.Contains(msg, c.msg) {
			t.Errorf("%s: message %q, want it to hold %q", c.name, msg, c.msg)
		}
	}
}
