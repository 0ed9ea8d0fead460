package testenv

import (
	"bytes"
	"io"
	"net/url"
	"strings"
)

func bytesReader(b []byte) io.ReadSeeker { return bytes.NewReader(b) }

// escapePath URL-encodes each segment of a key for x-amz-copy-source.
func escapePath(key string) string {
	parts := strings.Split(key, "/")
	for i, p := range parts {
		// "+" too: some stores decode the header form-style.
		parts[i] = strings.ReplaceAll(url.PathEscape(p), "+", "%2B")
	}
	return strings.Join(parts, "/")
}
