package metrics

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/freshen-io/freshen/internal/pipeline"
	"github.com/freshen-io/freshen/internal/reconcile"
	"github.com/freshen-io/freshen/internal/verify"
)

// TestAbsentKeysAreNotFreshness: checking a key that does not exist made
// nothing fresher; a flood of junk events must not flood the lag.
func TestAbsentKeysAreNotFreshness(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	old := time.Now().Add(-2 * 365 * 24 * time.Hour)
	m.ObserveResult(pipeline.Result{Outcome: pipeline.OutcomeAbsent, FirstSeen: old})
	m.ObserveResult(pipeline.Result{Outcome: pipeline.OutcomeIndexed, FirstSeen: time.Now().Add(-time.Second)})
	if n := testutil.CollectAndCount(m.FreshnessLag); n != 1 {
		t.Fatalf("%d histogram series", n)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "freshen_freshness_lag_seconds" {
			h := mf.GetMetric()[0].GetHistogram()
			if h.GetSampleCount() != 1 || h.GetSampleSum() > 60 {
				t.Fatalf("lag observations %d, sum %.0fs: the absent key was counted", h.GetSampleCount(), h.GetSampleSum())
			}
			return
		}
	}
	t.Fatal("no freshness histogram")
}

// TestVerifyPasses: the drift gauges are the last pass's, the repairs add
// up, and passes are counted by result.
func TestVerifyPasses(t *testing.T) {
	m := New(prometheus.NewRegistry())
	m.ObserveVerify(verify.Report{Missing: 2, Orphans: 1, Mismatched: 3, Repaired: 6}, nil)
	if v := testutil.ToFloat64(m.VerifyDrift.WithLabelValues("mismatched")); v != 3 {
		t.Fatalf("mismatched gauge %v after the first pass", v)
	}
	m.ObserveVerify(verify.Report{}, nil)
	m.ObserveVerify(verify.Report{Orphans: 9}, fmt.Errorf("wrapped: %w", reconcile.ErrMassDelete))
	for kind, want := range map[string]float64{"missing": 0, "orphan": 9, "mismatched": 0} {
		if v := testutil.ToFloat64(m.VerifyDrift.WithLabelValues(kind)); v != want {
			t.Errorf("%s gauge %v, want %v (the last pass's)", kind, v, want)
		}
	}
	if v := testutil.ToFloat64(m.VerifyRepaired); v != 6 {
		t.Errorf("repaired %v, want 6", v)
	}
	if ok, blocked := testutil.ToFloat64(m.VerifyPasses.WithLabelValues("ok")), testutil.ToFloat64(m.VerifyPasses.WithLabelValues("mass_delete_blocked")); ok != 2 || blocked != 1 {
		t.Errorf("passes ok %v, blocked %v", ok, blocked)
	}
}
