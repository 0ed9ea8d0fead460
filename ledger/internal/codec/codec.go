// Package codec holds what the SQL ledgers (SQLite, PostgreSQL) encode the
// same way: times as Unix nanoseconds, queue lanes, key ranges under a
// prefix, the counters' names and the summary's states.
package codec

import (
	"sort"
	"time"

	"github.com/freshen-io/freshen"
)

// Nanos stores t as Unix nanoseconds; the zero time is 0.
func Nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// FromNanos reads Nanos back (in UTC).
func FromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// Lane is a change's priority: what an event announced (a fresh edit,
// lane 0) goes before what the reconciler found or a backfill queued
// (lane 1), so a large backfill never delays a fresh edit.
func Lane(c freshen.Change) int {
	switch c.Origin {
	case "reconcile", "recovery":
		return 1
	}
	return 0
}

// PrefixEnd returns the smallest string greater than every string with
// the given prefix, in byte order; ok is false if there is none.
func PrefixEnd(prefix string) (string, bool) {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

// DayCounter names the counter of tokens embedded on now's UTC day.
func DayCounter(now time.Time) string { return "tokens_embedded@" + now.UTC().Format("2006-01-02") }

// CounterDeltas lists the counters c adds to, by name (in name order, so
// that concurrent transactions lock counter rows in one order), with
// their increments; zero increments are left out.
func CounterDeltas(c freshen.Counters, now time.Time) (names []string, values []int64) {
	for _, d := range []struct {
		name string
		v    int64
	}{{"chunks_embedded", c.ChunksEmbedded}, {"chunks_reused", c.ChunksReused}, {"tokens_embedded", c.TokensEmbedded},
		{"chars_embedded", c.CharsEmbedded}, {DayCounter(now), c.TokensEmbedded}} {
		if d.v != 0 {
			names, values = append(names, d.name), append(values, d.v)
		}
	}
	sort.Sort(byName{names, values})
	return names, values
}

type byName struct {
	n []string
	v []int64
}

func (b byName) Len() int           { return len(b.n) }
func (b byName) Less(i, j int) bool { return b.n[i] < b.n[j] }
func (b byName) Swap(i, j int) {
	b.n[i], b.n[j] = b.n[j], b.n[i]
	b.v[i], b.v[j] = b.v[j], b.v[i]
}

// SetCounter records a stored counter's value in c (today's day counter
// as TokensToday; other days' are ignored).
func SetCounter(c *freshen.Counters, name string, v int64, now time.Time) {
	switch name {
	case "chunks_embedded":
		c.ChunksEmbedded = v
	case "chunks_reused":
		c.ChunksReused = v
	case "tokens_embedded":
		c.TokensEmbedded = v
	case "chars_embedded":
		c.CharsEmbedded = v
	case DayCounter(now):
		c.TokensToday = v
	}
}

// AddSummary adds n objects in state, holding chunks chunks, to s.
func AddSummary(s *freshen.Summary, state string, n, chunks int) {
	switch freshen.ObjectState(state) {
	case freshen.StateIndexed:
		s.Indexed = n
	case freshen.StateSkipped:
		s.Skipped = n
	case freshen.StateFailed:
		s.Failed = n
	}
	s.Chunks += chunks
}
