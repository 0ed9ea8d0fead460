package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/freshen-io/freshen/internal/pipeline"
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
