package openai

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/freshen-io/freshen"
	oai "github.com/openai/openai-go/v3"
)

// sizeCodes are the structured error codes (never messages) with which
// OpenAI and compatible servers reject a request for its size: an input
// over the context, too many inputs, too many tokens in one request.
var sizeCodes = map[string]bool{
	"context_length_exceeded": true,
	"max_tokens_per_request":  true,
	"string_above_max_length": true,
	"array_above_max_length":  true,
	"request_too_large":       true,
	"tokens_exceeded":         true,
}

// classify turns the error of one request into freshen's classes. It is
// the only place that decides what is retryable. ctx is the caller's:
// when it is done, its error wins over whatever the request saw.
func (e *Embedder) classify(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("openai: %s: %w", op, ctxErr)
	}
	var apiErr *oai.Error
	if errors.As(err, &apiErr) {
		return e.classifyStatus(op, apiErr, time.Now())
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		// The caller's ctx is live, so this is our per-request timeout.
		// Not wrapped: callers must not mistake it for their own ctx.
		return freshen.Retryable(fmt.Errorf("openai: %s: no answer within %s", op, e.cfg.Timeout), 0)
	}
	// Refused or reset connections, a response cut short or not JSON: the
	// network or a proxy, not the input.
	return freshen.Retryable(fmt.Errorf("openai: %s: %w", op, err), 0)
}

// classifyStatus classifies an HTTP error answer by its status, its
// structured error code and its headers.
func (e *Embedder) classifyStatus(op string, apiErr *oai.Error, now time.Time) error {
	var h http.Header
	if apiErr.Response != nil {
		h = apiErr.Response.Header
	}
	detail := e.describe(apiErr)
	status := apiErr.StatusCode
	switch {
	case status == http.StatusTooManyRequests && apiErr.Code == "insufficient_quota":
		// Out of credit: nothing to do with the key being embedded, and
		// no use retrying soon. The work waits (not an attempt).
		return freshen.Retryable(fmt.Errorf("openai: %s: %w (%w): %s", op, freshen.ErrRateLimited, freshen.ErrUnavailable, detail), retryAfter(h, now))
	case status == http.StatusTooManyRequests:
		return freshen.Retryable(fmt.Errorf("openai: %s: %w: %s", op, freshen.ErrRateLimited, detail), retryAfter(h, now))
	case status == http.StatusServiceUnavailable:
		return freshen.Retryable(fmt.Errorf("openai: %s: %w: %s", op, freshen.ErrUnavailable, detail), retryAfter(h, now))
	case status >= 500, status == http.StatusRequestTimeout, status == http.StatusConflict:
		return freshen.Retryable(fmt.Errorf("openai: %s: %s", op, detail), retryAfter(h, now))
	case status == http.StatusRequestEntityTooLarge, status >= 400 && sizeCodes[apiErr.Code]:
		return freshen.Permanent(fmt.Errorf("openai: %s: %w: %s", op, freshen.ErrBatchTooLarge, detail))
	case status >= 400:
		// 400 (a rejected input or parameter), 401/403 (the key), 404
		// (the model or the URL), 422: the same request fails again.
		return freshen.Permanent(fmt.Errorf("openai: %s: %s", op, detail))
	default:
		return freshen.Retryable(fmt.Errorf("openai: %s: %s", op, detail), 0)
	}
}

// describe summarizes an error answer: its status, code, type, param
// and message. The SDK's own Error() hides the message because servers
// may echo credentials in it; here the key is cut out of it instead,
// and it is shortened.
func (e *Embedder) describe(apiErr *oai.Error) string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %d", apiErr.StatusCode)
	if t := http.StatusText(apiErr.StatusCode); t != "" {
		b.WriteString(" " + t)
	}
	var attrs []string
	for _, kv := range [][2]string{{"code", apiErr.Code}, {"type", apiErr.Type}, {"param", apiErr.Param}} {
		if kv[1] != "" {
			attrs = append(attrs, kv[0]+" "+strconv.Quote(e.redact(kv[1], 80)))
		}
	}
	if len(attrs) > 0 {
		b.WriteString(" (" + strings.Join(attrs, ", ") + ")")
	}
	if m := e.redact(apiErr.Message, 300); m != "" {
		b.WriteString(": " + m)
	}
	return b.String()
}

// redact removes the API key from s and cuts s to at most n bytes (at a
// character boundary).
func (e *Embedder) redact(s string, n int) string {
	if k := string(e.cfg.APIKey); k != "" {
		s = strings.ReplaceAll(s, k, "***")
	}
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		cut := n
		for cut > 0 && s[cut]&0xC0 == 0x80 {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// maxRetryAfter bounds the wait a header may ask for: a garbled value
// must not park work for years.
const maxRetryAfter = 24 * time.Hour

// retryAfter is the wait an error answer asks for, zero if none:
// retry-after-ms, else Retry-After (seconds or an HTTP date), else
// OpenAI's x-ratelimit-reset-requests/-tokens ("1s", "6m0s", "20ms") —
// of the limit that is exhausted when x-ratelimit-remaining-* says which,
// else the later of the two.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if h == nil {
		return 0
	}
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && ms > 0 {
			return waitOf(ms, time.Millisecond)
		}
	}
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if s, err := strconv.ParseFloat(v, 64); err == nil {
			if s > 0 {
				return waitOf(s, time.Second)
			}
		} else if t, err := http.ParseTime(v); err == nil {
			if d := t.Sub(now); d > 0 {
				return clampWait(d)
			}
		}
	}
	reset := func(kind string) time.Duration {
		d, err := time.ParseDuration(strings.TrimSpace(h.Get("X-Ratelimit-Reset-" + kind)))
		if err != nil || d <= 0 {
			return 0
		}
		return d
	}
	exhausted := func(kind string) bool { return strings.TrimSpace(h.Get("X-Ratelimit-Remaining-"+kind)) == "0" }
	reqs, toks := reset("Requests"), reset("Tokens")
	switch {
	case exhausted("Requests") && !exhausted("Tokens") && reqs > 0:
		return clampWait(reqs)
	case exhausted("Tokens") && !exhausted("Requests") && toks > 0:
		return clampWait(toks)
	}
	return clampWait(max(reqs, toks))
}

func clampWait(d time.Duration) time.Duration { return min(max(d, 0), maxRetryAfter) }

// waitOf is n units, clamped before the conversion can overflow.
func waitOf(n float64, unit time.Duration) time.Duration {
	if math.IsNaN(n) || n <= 0 {
		return 0
	}
	if n*float64(unit) >= float64(maxRetryAfter) {
		return maxRetryAfter
	}
	return time.Duration(n * float64(unit))
}
