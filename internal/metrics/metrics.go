// Package metrics holds freshen's Prometheus collectors. They are
// registered on an injected registry (never the global one), and their
// labels are bounded: origin, outcome, reason — never an object key.
package metrics

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/freshen-io/freshen/internal/pipeline"
	"github.com/freshen-io/freshen/internal/reconcile"
	"github.com/freshen-io/freshen/internal/verify"
)

// Metrics are the collectors of one freshen process.
type Metrics struct {
	FreshnessLag     prometheus.Histogram
	EmbedSeconds     prometheus.Histogram
	ProcessSeconds   prometheus.Histogram
	Backlog          prometheus.Gauge
	BacklogOldestAge prometheus.Gauge
	// Stalled is 1 while workers cannot make progress (the disk holding
	// the ledger or the index is full), 0 otherwise.
	Stalled prometheus.Gauge
	// TokensToday, USDSpent, USDToday and BudgetRemaining mirror the
	// ledger's cost counters (sampled), for dashboards and alerts.
	TokensToday, USDSpent, USDToday, BudgetRemaining prometheus.Gauge
	EventsReceived                                   *prometheus.CounterVec
	EventsMalformed                                  *prometheus.CounterVec
	EventsIgnored                                    *prometheus.CounterVec
	ChunksEmbedded                                   prometheus.Counter
	ChunksReused                                     prometheus.Counter
	TokensEmbedded                                   prometheus.Counter
	TokensReused                                     prometheus.Counter
	CharsEmbedded                                    prometheus.Counter
	ObjectsProcessed                                 *prometheus.CounterVec
	ReconcileDuration                                prometheus.Histogram
	ReconcilePasses                                  *prometheus.CounterVec
	KeysScanned                                      prometheus.Counter
	FoundByReconcile                                 prometheus.Counter
	// VerifyPasses, VerifyDrift and VerifyRepaired describe the periodic
	// verify passes (verify-interval).
	VerifyPasses   *prometheus.CounterVec
	VerifyDrift    *prometheus.GaugeVec
	VerifyRepaired prometheus.Counter
	// Generation is the index generation serving search; the Migration
	// gauges describe the one beside it (0 when there is none).
	Generation                                        prometheus.Gauge
	MigrationObjects, MigrationGoal, MigrationBacklog prometheus.Gauge
	MigrationTokens                                   prometheus.Gauge
}

// New creates the collectors and registers them on reg.
func New(reg prometheus.Registerer) *Metrics {
	lagBuckets := []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800}
	m := &Metrics{
		FreshnessLag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "freshen_freshness_lag_seconds",
			Help: "Time from a change (its event time, or when the reconciler found it) until it is searchable.", Buckets: lagBuckets}),
		EmbedSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "freshen_embed_seconds",
			Help: "Time one object's processing waited for the embedder.", Buckets: lagBuckets}),
		ProcessSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "freshen_object_process_seconds",
			Help: "Time to process one key, from lease to commit.", Buckets: lagBuckets}),
		Backlog: prometheus.NewGauge(prometheus.GaugeOpts{Name: "freshen_backlog_keys",
			Help: "Keys waiting to be processed."}),
		BacklogOldestAge: prometheus.NewGauge(prometheus.GaugeOpts{Name: "freshen_backlog_oldest_age_seconds",
			Help: "Age of the oldest unprocessed change (0 when the backlog is empty)."}),
		TokensToday: prometheus.NewGauge(prometheus.GaugeOpts{Name: "freshen_tokens_today",
			Help: "Tokens embedded since midnight UTC."}),
		USDSpent: prometheus.NewGauge(prometheus.GaugeOpts{Name: "freshen_usd_spent",
			Help: "Money spent on embedding, lifetime, at embedder.price-per-million-tokens."}),
		USDToday: prometheus.NewGauge(prometheus.GaugeOpts{Name: "freshen_usd_today",
			Help: "Money spent on embedding since midnight UTC."}),
		BudgetRemaining: prometheus.NewGauge(prometheus.GaugeOpts{Name: "freshen_budget_remaining_tokens",
			Help: "Tokens left in today's budget (-1 without a budget)."}),
		Generation: prometheus.NewGauge(prometheus.GaugeOpts{Name: "freshen_generation_serving",
			Help: "The index generation that serves search (it changes at a migrate switch or rollback)."}),
		MigrationObjects: prometheus.NewGauge(prometheus.GaugeOpts{Name: "freshen_migration_objects",
			Help: "Objects the generation beside the serving one holds (0 without a migration)."}),
		MigrationGoal: prometheus.NewGauge(prometheus.GaugeOpts{Name: "freshen_migration_objects_goal",
			Help: "Objects the serving generation holds: what a migration builds towards (0 without a migration)."}),
		MigrationBacklog: prometheus.NewGauge(prometheus.GaugeOpts{Name: "freshen_migration_backlog_keys",
			Help: "Keys queued for the generation beside the serving one."}),
		MigrationTokens: prometheus.NewGauge(prometheus.GaugeOpts{Name: "freshen_migration_tokens",
			Help: "Tokens embedded for the generation beside the serving one."}),
		Stalled: prometheus.NewGauge(prometheus.GaugeOpts{Name: "freshen_stalled",
			Help: "1 while the workers cannot make progress (no space left for the ledger or the index, or the embedding provider failing), else 0."}),
		EventsReceived: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "freshen_events_received_total",
			Help: "Event messages received, by transport."}, []string{"origin"}),
		EventsMalformed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "freshen_events_malformed_total",
			Help: "Event messages rejected as malformed (the reconciler still finds their changes)."}, []string{"origin"}),
		EventsIgnored: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "freshen_events_ignored_total",
			Help: "Event records ignored: test events, other buckets, keys outside the filters."}, []string{"origin", "reason"}),
		ChunksEmbedded: prometheus.NewCounter(prometheus.CounterOpts{Name: "freshen_chunks_embedded_total",
			Help: "Chunks sent to the embedder."}),
		ChunksReused: prometheus.NewCounter(prometheus.CounterOpts{Name: "freshen_chunks_reused_total",
			Help: "Chunks of processed objects that needed no embedding (unchanged or cached)."}),
		TokensEmbedded: prometheus.NewCounter(prometheus.CounterOpts{Name: "freshen_tokens_embedded_total",
			Help: "Tokens sent to the embedder."}),
		TokensReused: prometheus.NewCounter(prometheus.CounterOpts{Name: "freshen_tokens_reused_total",
			Help: "Estimated tokens (chunker's measure) of chunks of re-read objects that needed no embedding."}),
		CharsEmbedded: prometheus.NewCounter(prometheus.CounterOpts{Name: "freshen_chars_embedded_total",
			Help: "Characters sent to the embedder."}),
		ObjectsProcessed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "freshen_objects_processed_total",
			Help: "Keys processed, by outcome."}, []string{"outcome"}),
		ReconcileDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "freshen_reconcile_duration_seconds",
			Help: "Duration of reconcile passes.", Buckets: lagBuckets}),
		ReconcilePasses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "freshen_reconcile_passes_total",
			Help: "Reconcile passes, by result (ok, error, mass_delete_blocked)."}, []string{"result"}),
		KeysScanned: prometheus.NewCounter(prometheus.CounterOpts{Name: "freshen_reconcile_keys_scanned_total",
			Help: "Keys listed by reconcile passes."}),
		FoundByReconcile: prometheus.NewCounter(prometheus.CounterOpts{Name: "freshen_changes_found_by_reconcile_total",
			Help: "Changes that no event announced, found by the reconciler: the measure of lost events."}),
		VerifyPasses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "freshen_verify_passes_total",
			Help: "Verify passes (verify-interval), by result (ok, error, mass_delete_blocked)."}, []string{"result"}),
		VerifyDrift: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "freshen_verify_drift_rows",
			Help: "Rows the last verify pass found differing from the ledger, by kind (missing, orphan, mismatched)."}, []string{"kind"}),
		VerifyRepaired: prometheus.NewCounter(prometheus.CounterOpts{Name: "freshen_verify_repaired_rows_total",
			Help: "Rows verify passes repaired (rewritten from the embedding cache or deleted)."}),
	}
	reg.MustRegister(m.Generation, m.MigrationObjects, m.MigrationGoal, m.MigrationBacklog, m.MigrationTokens, m.Stalled, m.TokensToday, m.USDSpent, m.USDToday, m.BudgetRemaining, m.FreshnessLag, m.EmbedSeconds, m.ProcessSeconds, m.Backlog, m.BacklogOldestAge, m.EventsReceived,
		m.EventsMalformed, m.EventsIgnored, m.ChunksEmbedded, m.ChunksReused, m.TokensEmbedded, m.TokensReused, m.CharsEmbedded,
		m.ObjectsProcessed, m.ReconcileDuration, m.ReconcilePasses, m.KeysScanned, m.FoundByReconcile,
		m.VerifyPasses, m.VerifyDrift, m.VerifyRepaired)
	for _, o := range []pipeline.Outcome{pipeline.OutcomeIndexed, pipeline.OutcomeUnchanged, pipeline.OutcomeDeleted, pipeline.OutcomeAbsent,
		pipeline.OutcomeSkipped, pipeline.OutcomeRetry, pipeline.OutcomeFailed} {
		m.ObjectsProcessed.WithLabelValues(string(o))
	}
	return m
}

// ObserveResult records one processed key.
func (m *Metrics) ObserveResult(r pipeline.Result) {
	m.ObjectsProcessed.WithLabelValues(string(r.Outcome)).Inc()
	m.ChunksEmbedded.Add(float64(r.Work.ChunksEmbedded))
	m.ChunksReused.Add(float64(r.Work.ChunksReused))
	m.TokensEmbedded.Add(float64(r.Work.TokensEmbedded))
	m.TokensReused.Add(float64(r.TokensReused))
	m.CharsEmbedded.Add(float64(r.Work.CharsEmbedded))
	m.ProcessSeconds.Observe(r.Duration.Seconds())
	if r.EmbedTime > 0 {
		m.EmbedSeconds.Observe(r.EmbedTime.Seconds())
	}
	// A key that does not exist (a junk event, a create-then-delete)
	// made nothing fresher: it is not a freshness observation.
	if r.Err == nil && !r.FirstSeen.IsZero() && r.Outcome != pipeline.OutcomeAbsent {
		m.FreshnessLag.Observe(time.Since(r.FirstSeen).Seconds())
	}
}

// ObserveReconcile records one reconcile pass.
func (m *Metrics) ObserveReconcile(rep reconcile.Report, err error) {
	m.ReconcilePasses.WithLabelValues(passResult(err)).Inc()
	m.ReconcileDuration.Observe(rep.Duration.Seconds())
	m.KeysScanned.Add(float64(rep.Listed))
	m.FoundByReconcile.Add(float64(rep.Found))
}

// ObserveVerify records one verify pass.
func (m *Metrics) ObserveVerify(rep verify.Report, err error) {
	m.VerifyPasses.WithLabelValues(passResult(err)).Inc()
	m.VerifyDrift.WithLabelValues("missing").Set(float64(rep.Missing))
	m.VerifyDrift.WithLabelValues("orphan").Set(float64(rep.Orphans))
	m.VerifyDrift.WithLabelValues("mismatched").Set(float64(rep.Mismatched))
	m.VerifyRepaired.Add(float64(rep.Repaired))
}

// passResult labels a reconcile or verify pass by its outcome.
func passResult(err error) string {
	switch {
	case errors.Is(err, reconcile.ErrMassDelete):
		return "mass_delete_blocked"
	case err != nil:
		return "error"
	}
	return "ok"
}

// SetBacklog records the queue's size and its oldest change.
func (m *Metrics) SetBacklog(n int, oldest time.Time) {
	m.Backlog.Set(float64(n))
	if n == 0 || oldest.IsZero() {
		m.BacklogOldestAge.Set(0)
		return
	}
	m.BacklogOldestAge.Set(time.Since(oldest).Seconds())
}

// SetCost records the cost counters from a status.
func (m *Metrics) SetCost(tokensToday int64, usdSpent, usdToday float64, budgetRemaining int64) {
	m.TokensToday.Set(float64(tokensToday))
	m.USDSpent.Set(usdSpent)
	m.USDToday.Set(usdToday)
	m.BudgetRemaining.Set(float64(budgetRemaining))
}

// SetGeneration records the serving generation and the progress of the
// one beside it (zeros when there is none).
func (m *Metrics) SetGeneration(serving, objects, goal, backlog int, tokens int64) {
	m.Generation.Set(float64(serving))
	m.MigrationObjects.Set(float64(objects))
	m.MigrationGoal.Set(float64(goal))
	m.MigrationBacklog.Set(float64(backlog))
	m.MigrationTokens.Set(float64(tokens))
}

// Intake adapts the metrics to intake.Observer.
func (m *Metrics) Intake() IntakeObserver { return IntakeObserver{m} }

// IntakeObserver feeds the intake's counts into the metrics.
type IntakeObserver struct{ m *Metrics }

// Received counts event messages read from a transport.
func (o IntakeObserver) Received(origin string, n int) {
	o.m.EventsReceived.WithLabelValues(origin).Add(float64(n))
}

// Malformed counts messages that could not be parsed.
func (o IntakeObserver) Malformed(origin string, n int) {
	o.m.EventsMalformed.WithLabelValues(origin).Add(float64(n))
}

// Ignored counts messages and records dropped on purpose.
func (o IntakeObserver) Ignored(origin, reason string, n int) {
	o.m.EventsIgnored.WithLabelValues(origin, reason).Add(float64(n))
}
