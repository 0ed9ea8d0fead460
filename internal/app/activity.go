package app

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/freshen-io/freshen/internal/pipeline"
	"github.com/freshen-io/freshen/internal/reconcile"
)

// Activity is what this process did lately, for the dashboard: per
// minute, how many objects it processed by origin and their freshness lag;
// the newest objects; the reconcile passes.
type Activity struct {
	Since     time.Time         `json:"since"`
	Minutes   []MinuteActivity  `json:"minutes"`
	Recent    []RecentObject    `json:"recent"`
	Reconcile ReconcileActivity `json:"reconcile"`
	Samples   int64             `json:"samples"`
}

// MinuteActivity is one minute's work.
type MinuteActivity struct {
	Start time.Time `json:"start"`
	// ByOrigin counts the objects processed, by where their change came
	// from: an event transport (webhook, sqs, nats, kafka), "reconcile"
	// (a change no event announced: the lost events), "redrive",
	// "recovery".
	ByOrigin map[string]int `json:"by_origin"`
	// Lag percentiles (change → searchable) of the objects indexed or
	// deleted in the minute, in milliseconds.
	LagP50 float64 `json:"lag_p50_ms"`
	LagP90 float64 `json:"lag_p90_ms"`
	LagP99 float64 `json:"lag_p99_ms"`
	lags   []float64
}

// RecentObject is one processed object.
type RecentObject struct {
	Key      string    `json:"key"`
	Outcome  string    `json:"outcome"`
	Reason   string    `json:"reason,omitempty"`
	Origin   string    `json:"origin"`
	At       time.Time `json:"at"`
	LagMS    int64     `json:"lag_ms"`
	Chunks   int       `json:"chunks"`
	Embedded int64     `json:"embedded"`
	TraceID  string    `json:"trace_id,omitempty"`
}

// ReconcileActivity sums the reconcile passes.
type ReconcileActivity struct {
	Passes    int       `json:"passes"`
	Failed    int       `json:"failed"`
	Last      time.Time `json:"last,omitzero"`
	LastFound int       `json:"last_found"`
	Found     int       `json:"found"`
	Listed    int       `json:"last_listed"`
}

// ActivityLog records a process's activity; it keeps an hour.
type ActivityLog struct {
	mu        sync.Mutex
	since     time.Time
	minutes   []*MinuteActivity
	recent    []RecentObject
	reconcile ReconcileActivity
	samples   int64
	now       func() time.Time
}

const (
	activityMinutes = 60
	activityRecent  = 20
	// lagsPerMinute bounds the lag samples kept per minute (the first
	// ones; percentiles of a busy minute are close enough).
	lagsPerMinute = 2000
)

// NewActivityLog starts an empty log.
func NewActivityLog() *ActivityLog {
	return &ActivityLog{since: time.Now().UTC(), now: time.Now}
}

func (l *ActivityLog) minute() *MinuteActivity {
	start := l.now().UTC().Truncate(time.Minute)
	if n := len(l.minutes); n > 0 && l.minutes[n-1].Start.Equal(start) {
		return l.minutes[n-1]
	}
	m := &MinuteActivity{Start: start, ByOrigin: map[string]int{}}
	l.minutes = append(l.minutes, m)
	if len(l.minutes) > activityMinutes {
		l.minutes = l.minutes[len(l.minutes)-activityMinutes:]
	}
	return m
}

// Result records one processed key.
func (l *ActivityLog) Result(r pipeline.Result) {
	switch r.Outcome {
	case pipeline.OutcomeRequeued, pipeline.OutcomeLeaseLost, pipeline.OutcomeAbsent:
		return // not an outcome a person follows
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	m := l.minute()
	m.ByOrigin[r.Origin]++
	lag := now.Sub(r.FirstSeen)
	if r.Err == nil && len(m.lags) < lagsPerMinute && !r.FirstSeen.IsZero() {
		m.lags = append(m.lags, float64(lag.Microseconds())/1000)
		l.samples++
	}
	reason := r.Reason
	if reason == "" && r.Err != nil {
		reason = r.Err.Error()
	}
	l.recent = append([]RecentObject{{Key: r.Key, Outcome: string(r.Outcome), Reason: reason, Origin: r.Origin, At: now.UTC(),
		LagMS: lag.Milliseconds(), Chunks: r.Chunks, Embedded: r.Work.ChunksEmbedded, TraceID: r.TraceID}}, l.recent...)
	if len(l.recent) > activityRecent {
		l.recent = l.recent[:activityRecent]
	}
}

// Reconciled records one reconcile pass.
func (l *ActivityLog) Reconciled(rep reconcile.Report, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reconcile.Passes++
	if err != nil {
		l.reconcile.Failed++
	}
	l.reconcile.Last, l.reconcile.LastFound, l.reconcile.Listed = l.now().UTC(), rep.Found, rep.Listed
	l.reconcile.Found += rep.Found
}

// Snapshot copies the log, with the percentiles computed.
func (l *ActivityLog) Snapshot() Activity {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := Activity{Since: l.since, Recent: slices.Clone(l.recent), Reconcile: l.reconcile, Samples: l.samples, Minutes: []MinuteActivity{}}
	if a.Recent == nil {
		a.Recent = []RecentObject{}
	}
	for _, m := range l.minutes {
		c := MinuteActivity{Start: m.Start, ByOrigin: map[string]int{}}
		for k, v := range m.ByOrigin {
			c.ByOrigin[k] = v
		}
		lags := slices.Clone(m.lags)
		slices.Sort(lags)
		c.LagP50, c.LagP90, c.LagP99 = percentile(lags, 0.50), percentile(lags, 0.90), percentile(lags, 0.99)
		a.Minutes = append(a.Minutes, c)
	}
	return a
}

// percentile of sorted values (nearest rank); 0 for none.
func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// Activity is this process's recent activity (empty unless the service
// records it: App.ActivityLog).
func (a *App) Activity(context.Context) (Activity, error) {
	if a.ActivityLog == nil {
		return NewActivityLog().Snapshot(), nil
	}
	return a.ActivityLog.Snapshot(), nil
}
