package freshen

import (
	"context"
	"sync/atomic"
)

// A Meter adds up the tokens a provider reported using (and bills) for
// the calls made under a context carrying it (WithMeter). The pipeline
// records those in its counters instead of its own count whenever a
// provider reported any, so freshen's tokens equal the provider's.
type Meter struct {
	tokens  atomic.Int64
	reports atomic.Int64
}

type meterKey struct{}

// WithMeter returns ctx carrying m; a meter already in ctx no longer
// sees the calls made under the new context (the micro-batcher meters a
// merged call on its own and hands each caller its share).
func WithMeter(ctx context.Context, m *Meter) context.Context {
	return context.WithValue(ctx, meterKey{}, m)
}

// ReportUsage is called by a provider client once for every answer that
// says how many tokens it used, answers then rejected as malformed
// included (they were billed); a client whose server reports no usage
// does not call it. Without a Meter in ctx it does nothing.
func ReportUsage(ctx context.Context, tokens int64) {
	if m, ok := ctx.Value(meterKey{}).(*Meter); ok && tokens >= 0 {
		m.Add(tokens)
	}
}

// Add records tokens as reported.
func (m *Meter) Add(tokens int64) {
	m.tokens.Add(tokens)
	m.reports.Add(1)
}

// Tokens is the sum reported so far, and whether anything was reported
// at all (a server that reports no usage leaves ok false).
func (m *Meter) Tokens() (tokens int64, ok bool) {
	return m.tokens.Load(), m.reports.Load() > 0
}

// Shares splits tokens among parts in proportion to weights (each part's
// own token count), exactly: the shares add up to tokens. Parts of zero
// total weight share equally.
func Shares(tokens int64, weights []int64) []int64 {
	out := make([]int64, len(weights))
	if len(weights) == 0 {
		return out
	}
	var sum int64
	for _, w := range weights {
		sum += w
	}
	var given int64
	for i, w := range weights {
		if i == len(weights)-1 {
			out[i] = tokens - given
			break
		}
		if sum > 0 {
			out[i] = tokens * w / sum
		} else {
			out[i] = tokens / int64(len(weights))
		}
		given += out[i]
	}
	return out
}
