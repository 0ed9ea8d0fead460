package openaitest

import (
	"math"
	"net/http"
	"strconv"
	"time"
)

// limiter enforces requests and tokens per minute over a sliding window,
// as OpenAI's per-model limits do.
type limiter struct {
	rpm, tpm int
	events   []event // admitted requests, oldest first
}

type event struct {
	at     time.Time
	tokens int
}

// admit admits a request of tokens at now, or says how long to wait.
// The headers describe the limits either way (x-ratelimit-*), plus
// Retry-After and retry-after-ms when it refuses.
func (l *limiter) admit(now time.Time, tokens int) (wait time.Duration, h http.Header) {
	cut := 0
	for cut < len(l.events) && !l.events[cut].at.Add(time.Minute).After(now) {
		cut++
	}
	l.events = l.events[cut:]
	used := 0
	for _, e := range l.events {
		used += e.tokens
	}
	expiry := func(i int) time.Duration { return l.events[i].at.Add(time.Minute).Sub(now) }
	var waitReqs, waitToks time.Duration
	if l.rpm > 0 && len(l.events)+1 > l.rpm {
		waitReqs = expiry(len(l.events) - l.rpm)
	}
	if l.tpm > 0 && used+tokens > l.tpm {
		freed, i := 0, 0
		for ; i < len(l.events) && used-freed+tokens > l.tpm; i++ {
			freed += l.events[i].tokens
		}
		waitToks = expiry(i - 1)
	}
	wait = max(waitReqs, waitToks)
	if wait == 0 {
		l.events = append(l.events, event{now, tokens})
		used += tokens
	}
	h = http.Header{}
	reset := func() string {
		if len(l.events) == 0 {
			return "0s"
		}
		return expiry(0).Round(time.Millisecond).String()
	}
	if l.rpm > 0 {
		h.Set("X-Ratelimit-Limit-Requests", strconv.Itoa(l.rpm))
		h.Set("X-Ratelimit-Remaining-Requests", strconv.Itoa(max(l.rpm-len(l.events), 0)))
		h.Set("X-Ratelimit-Reset-Requests", reset())
		if waitReqs > 0 {
			h.Set("X-Ratelimit-Remaining-Requests", "0")
			h.Set("X-Ratelimit-Reset-Requests", waitReqs.Round(time.Millisecond).String())
		}
	}
	if l.tpm > 0 {
		h.Set("X-Ratelimit-Limit-Tokens", strconv.Itoa(l.tpm))
		h.Set("X-Ratelimit-Remaining-Tokens", strconv.Itoa(max(l.tpm-used, 0)))
		h.Set("X-Ratelimit-Reset-Tokens", reset())
		if waitToks > 0 {
			h.Set("X-Ratelimit-Remaining-Tokens", "0")
			h.Set("X-Ratelimit-Reset-Tokens", waitToks.Round(time.Millisecond).String())
		}
	}
	if wait > 0 {
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		h.Set("Retry-After-Ms", strconv.FormatInt(int64(math.Ceil(float64(wait)/float64(time.Millisecond))), 10))
	}
	return wait, h
}
