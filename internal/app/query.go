package app

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/freshen-io/freshen"
)

// ErrEmptyQuery is returned for a blank search query.
var ErrEmptyQuery = errors.New("empty query")

// KeyReason names an object and why it is skipped or failed.
type KeyReason struct {
	Key    string `json:"key"`
	Reason string `json:"reason"`
}

// SearchHit is one element of `freshen search --json` (and of the HTTP
// API's /v1/search).
type SearchHit struct {
	Key      string   `json:"key"`
	Score    float32  `json:"score"`
	Text     string   `json:"text"`
	Headings []string `json:"headings"`
	Chunk    int      `json:"chunk"`
	ID       string   `json:"id"`
	// Metadata is the chunk's attributes (see freshen.ObjectMetadata).
	Metadata map[string]any `json:"metadata,omitempty"`
}

// Search embeds query and returns the top k hits under prefix. A query
// longer than the model's window is cut to the window (see queryWindow).
func (a *App) Search(ctx context.Context, query string, k int, prefix string, filters ...freshen.Filter) ([]SearchHit, error) {
	if strings.TrimSpace(query) == "" {
		return nil, ErrEmptyQuery
	}
	vec, err := freshen.EmbedQuery(ctx, a.Embedder, queryWindow(a.Embedder, query))
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	hits, err := a.Index.Search(ctx, freshen.Query{Vector: vec, K: k, Prefix: prefix, Filters: filters})
	if err != nil {
		return nil, err
	}
	out := make([]SearchHit, 0, len(hits))
	for _, h := range hits {
		hd := h.Headings
		if hd == nil {
			hd = []string{}
		}
		out = append(out, SearchHit{Key: h.Key, Score: h.Score, Text: h.Text, Headings: hd, Chunk: h.Ordinal, ID: string(h.ID), Metadata: h.Metadata})
	}
	return out, nil
}

// queryWindow returns the longest prefix of query that fits e's window
// (ModelInfo.MaxTokens, counted by e's own measure), cut after a whole
// word unless that would waste half the window. Embedders treat a longer
// text as a document and embed every window of it, which for a query
// buys nothing a search can use: its cost grows with the text while its
// meaning blurs.
func queryWindow(e freshen.Embedder, query string) string {
	limit := e.Model().MaxTokens
	if limit <= 0 || freshen.CountTokens(e, query) <= limit {
		return query
	}
	fits := func(n int) bool { return freshen.CountTokens(e, query[:n]) <= limit }
	// Gallop to a prefix that does not fit, then bisect: the cost is a
	// few counts of about the window's length, however long the query.
	lo, hi := 0, runeEnd(query, min(len(query), 8*limit))
	for fits(hi) {
		lo, hi = hi, runeEnd(query, min(len(query), 2*hi))
	}
	for hi-lo > 1 {
		mid := runeStart(query, lo+(hi-lo)/2)
		if mid <= lo {
			mid = runeEnd(query, lo+(hi-lo)/2)
			if mid >= hi {
				break
			}
		}
		if fits(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	cut := query[:lo]
	if i := strings.LastIndexFunc(cut, unicode.IsSpace); i >= len(cut)/2 && strings.TrimSpace(cut[:i]) != "" {
		cut = cut[:i]
	}
	return cut
}

// runeStart moves i back to the first byte of the rune it is in.
func runeStart(s string, i int) int {
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return i
}

// runeEnd moves i forward to the first byte of the next rune.
func runeEnd(s string, i int) int {
	for i < len(s) && !utf8.RuneStart(s[i]) {
		i++
	}
	return i
}

// Status is `freshen status --json` (and the HTTP API's /v1/status).
type Status struct {
	// Generation is the index generation serving search; Migration the
	// progress of the one beside it (building, or kept for a rollback).
	Generation     int                 `json:"generation"`
	Migration      *GenerationProgress `json:"migration,omitempty"`
	Objects        int                 `json:"objects"`
	Chunks         int                 `json:"chunks"`
	ChunksEmbedded int64               `json:"chunks_embedded"`
	ChunksReused   int64               `json:"chunks_reused"`
	TokensEmbedded int64               `json:"tokens_embedded"`
	CharsEmbedded  int64               `json:"chars_embedded"`
	// TokensToday are the tokens embedded since midnight UTC; USDSpent and
	// USDToday price them with embedder.price-per-million-tokens.
	TokensToday   int64       `json:"tokens_today"`
	USDSpent      float64     `json:"usd_spent"`
	USDToday      float64     `json:"usd_today"`
	Backlog       int         `json:"backlog"`
	OldestPending *time.Time  `json:"oldest_pending,omitempty"`
	SkippedTotal  int         `json:"skipped_total"`
	FailedTotal   int         `json:"failed_total"`
	Skipped       []KeyReason `json:"skipped"`
	Failed        []KeyReason `json:"failed"`
	Model         string      `json:"model"`
	Chunker       string      `json:"chunker"`
	// Problem says why the service cannot make progress now (a full
	// disk), when it cannot.
	Problem string `json:"problem,omitempty"`
	// Budget is today's embedding budget, when one is configured.
	Budget *BudgetStatus `json:"budget,omitempty"`
	// Cluster describes the processes sharing the ledger, when it is
	// shared (ledger.type postgres).
	Cluster *ClusterStatus `json:"cluster,omitempty"`
}

// ClusterStatus is the processes that share a ledger.
type ClusterStatus struct {
	// Processes are those seen in the last 30 seconds (they record
	// themselves every 5).
	Processes []freshen.Process `json:"processes"`
	// ReconcileLeader is the process running the bucket's reconcile
	// passes ("" if none was seen); with reconcile-split, ReconcileLeaders
	// names the leader of each range's job.
	ReconcileLeader  string            `json:"reconcile_leader"`
	ReconcileLeaders map[string]string `json:"reconcile_leaders"`
}

// seenWithin is how recently a process must have recorded itself to be
// listed in the cluster's status.
const seenWithin = 30 * time.Second

// BudgetStatus is the state of today's embedding budget.
type BudgetStatus struct {
	TokensPerDay    int64     `json:"tokens_per_day"`
	TokensRemaining int64     `json:"tokens_remaining"`
	Spent           bool      `json:"spent"`
	RenewsAt        time.Time `json:"renews_at"`
}

const statusListLimit = 100

// GetStatus reads the ledger's totals.
func (a *App) Status(ctx context.Context) (Status, error) {
	var s Status
	sum, err := a.Ledger.Summary(ctx)
	if err != nil {
		return s, err
	}
	c, err := a.Ledger.Counters(ctx)
	if err != nil {
		return s, err
	}
	n, oldest, err := a.Ledger.Backlog(ctx)
	if err != nil {
		return s, err
	}
	price := a.Config.Embedder.PricePerMillionTokens / 1e6
	s = Status{Objects: sum.Indexed, Chunks: sum.Chunks, ChunksEmbedded: c.ChunksEmbedded, ChunksReused: c.ChunksReused,
		TokensEmbedded: c.TokensEmbedded, CharsEmbedded: c.CharsEmbedded, Backlog: n,
		TokensToday: c.TokensToday, USDSpent: float64(c.TokensEmbedded) * price, USDToday: float64(c.TokensToday) * price, SkippedTotal: sum.Skipped, FailedTotal: sum.Failed,
		Skipped: []KeyReason{}, Failed: []KeyReason{}, Model: a.Embedder.Model().Name, Chunker: a.Chunker.Version()}
	if !oldest.IsZero() {
		s.OldestPending = &oldest
	}
	if limit := a.Config.TokensPerDay(); limit > 0 {
		now := time.Now().UTC()
		s.Budget = &BudgetStatus{TokensPerDay: limit, TokensRemaining: max(limit-c.TokensToday, 0),
			RenewsAt: time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)}
		// Spent when a batch no longer fits (the pipeline says), or nothing is left.
		s.Budget.Spent = s.Budget.TokensRemaining == 0 || (a.BudgetSpent != nil && a.BudgetSpent() != nil)
	}
	s.Generation = a.Gen.ID
	if a.Other != nil {
		m, err := a.Migration(ctx)
		if err != nil {
			return s, err
		}
		s.Migration = m.Other
	}
	if a.Health != nil {
		if err := a.Health(); err != nil {
			s.Problem = err.Error()
		}
	}
	if co, ok := a.Ledger.(freshen.Coordinator); ok {
		ps, err := co.Processes(ctx, time.Now().Add(-seenWithin))
		if err != nil {
			return s, err
		}
		s.Cluster = &ClusterStatus{Processes: ps, ReconcileLeaders: map[string]string{}}
		// A process that died still claims its lead until it ages out:
		// a job's leader is the claimant seen last.
		seen := map[string]time.Time{}
		for _, rg := range a.Config.ReconcileRanges() {
			job := rg.Job(a.Config.Source.Bucket)
			for _, p := range ps {
				if slices.Contains(p.Leads, job) && p.LastSeen.After(seen[job]) {
					s.Cluster.ReconcileLeaders[job], seen[job] = p.Owner, p.LastSeen
				}
			}
		}
		s.Cluster.ReconcileLeader = s.Cluster.ReconcileLeaders["reconcile "+a.Config.Source.Bucket]
		if s.Cluster.Processes == nil {
			s.Cluster.Processes = []freshen.Process{}
		}
	}
	for state, dst := range map[freshen.ObjectState]*[]KeyReason{freshen.StateSkipped: &s.Skipped, freshen.StateFailed: &s.Failed} {
		objs, err := a.Ledger.ObjectsInState(ctx, state, statusListLimit)
		if err != nil {
			return s, err
		}
		for _, o := range objs {
			*dst = append(*dst, KeyReason{Key: o.Key, Reason: o.Reason})
		}
	}
	return s, nil
}

// State is the ledger's view of one key of the watched bucket, and
// whether a change to it is queued.
//
// The two are read one after the other, the queue first: a key committed
// in between then shows as still queued (look again), never as the old
// object with no change pending (a waiter would stop too early).
func (a *App) State(ctx context.Context, key string) (freshen.KeyState, bool, error) {
	q, err := a.Ledger.Queued(ctx, a.Config.Source.Bucket, key)
	if err != nil {
		return freshen.KeyState{}, false, err
	}
	st, err := a.Ledger.State(ctx, a.Config.Source.Bucket, key)
	return st, q, err
}
