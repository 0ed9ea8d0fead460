// Package daemon is `freshen run`: it wires the webhook receiver, the
// reconcile loop, the worker pool, the metrics and the HTTP API together,
// and shuts them down in order (stop accepting, finish in-flight keys).
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/freshen-io/freshen/feed/webhook"
	"github.com/freshen-io/freshen/internal/app"
	"github.com/freshen-io/freshen/internal/httpapi"
	"github.com/freshen-io/freshen/internal/metrics"
	"github.com/freshen-io/freshen/internal/pipeline"
	"github.com/freshen-io/freshen/internal/reconcile"
)

// eventObserver feeds webhook counts into the metrics.
type eventObserver struct{ m *metrics.Metrics }

func (o eventObserver) EventReceived(origin string) { o.m.EventsReceived.WithLabelValues(origin).Inc() }
func (o eventObserver) EventMalformed(origin string) {
	o.m.EventsMalformed.WithLabelValues(origin).Inc()
}
func (o eventObserver) EventIgnored(origin, reason string, n int) {
	o.m.EventsIgnored.WithLabelValues(origin, reason).Add(float64(n))
}

// Options configure Run.
type Options struct {
	// Listen overrides the configuration's listen address.
	Listen string
	// Log receives the service's log.
	Log *slog.Logger
	// OnResult, if set, observes every processed key (after the metrics).
	OnResult func(pipeline.Result)
	// OnListen, if set, is called with the API's base URL once it listens.
	OnListen func(baseURL string)
}

// Run is `freshen run`: the webhook feed, the periodic reconciler, the
// workers and the HTTP API, until ctx is done; then it finishes in-flight
// keys and returns. a must have been opened with app.Options.Exclusive.
func Run(ctx context.Context, a *app.App, o Options) error {
	log := o.Log
	if log == nil {
		log = a.Log
	}
	cfg := a.Config
	if o.Listen != "" {
		cfg.Listen = o.Listen
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg)
	wake := make(chan struct{}, 1)
	wakeUp := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	wh := webhook.New(webhook.Config{Bucket: cfg.Source.Bucket, Match: a.Filter.Match, Token: string(cfg.WebhookToken)},
		a.Ledger, eventObserver{m}, log, wakeUp)
	api := httpapi.New(a, reg, wh, string(cfg.APIToken))
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 5 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	base := "http://" + ln.Addr().String()
	if o.OnListen != nil {
		o.OnListen(base)
	}
	log.Info("freshen is running", "bucket", cfg.Source.Bucket, "prefixes", a.Filter.Prefixes(), "api", base,
		"webhook", base+"/v1/events/s3", "metrics", base+"/metrics", "reconcile_interval", cfg.ReconcileInterval.String())

	p := a.Pipeline(func(r pipeline.Result) {
		m.ObserveResult(r)
		if o.OnResult != nil {
			o.OnResult(r)
		}
		// Failures are logged by the pipeline itself.
		if r.Err == nil {
			log.Debug("object processed", "key", r.Key, "outcome", r.Outcome, "chunks", r.Chunks,
				"embedded", r.Work.ChunksEmbedded, "reused", r.Work.ChunksReused, "lag", time.Since(r.FirstSeen).Round(time.Millisecond))
		}
	})
	if n, err := p.Recover(ctx); err != nil {
		srv.Close()
		return fmt.Errorf("recover: %w", err)
	} else if n > 0 {
		log.Warn("recovering keys whose index writes were interrupted", "keys", n)
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		reconcileLoop(runCtx, a, m, api, log, wakeUp)
	}()
	go backlogLoop(runCtx, a, m)

	pipeErr := make(chan error, 1)
	go func() { pipeErr <- p.Run(runCtx, wake) }()
	select {
	case <-ctx.Done():
		log.Info("shutting down: finishing in-flight objects")
	case err := <-serveErr:
		log.Error("http server stopped", "err", err)
	case err := <-pipeErr:
		if err != nil {
			log.Error("pipeline stopped", "err", err)
		}
	}
	api.SetReady("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(shutCtx)
	stop()
	<-done
	select {
	case err := <-pipeErr:
		if err != nil {
			return err
		}
	case <-shutCtx.Done():
		return errors.New("in-flight objects did not finish within 10s; they will be redone at the next start")
	}
	log.Info("stopped cleanly")
	return nil
}

// reconcileLoop runs a pass at start and then every interval; a failed
// pass is retried sooner, with backoff.
func reconcileLoop(ctx context.Context, a *app.App, m *metrics.Metrics, api *httpapi.Server, log *slog.Logger, wake func()) {
	r := a.Reconciler()
	interval := time.Duration(a.Config.ReconcileInterval)
	retry := time.Second
	for {
		rep, err := r.Pass(ctx, a.Config.MassDelete.Allow)
		if ctx.Err() != nil {
			return
		}
		m.ObserveReconcile(rep, err)
		next := interval
		switch {
		case errors.Is(err, reconcile.ErrMassDelete):
			log.Error("mass delete blocked", "reason", rep.Message)
			api.SetReady("")
		case err != nil:
			log.Error("reconcile failed", "err", err, "retry_in", retry)
			next, retry = min(retry, interval), min(retry*2, interval)
		default:
			retry = time.Second
			api.SetReady("")
			if rep.Found > 0 || rep.Listed > 0 {
				log.Info("reconciled", "listed", rep.Listed, "new", rep.New, "changed", rep.Changed, "gone", rep.Vanished,
					"not_announced", rep.Found, "took", rep.Duration.Round(time.Millisecond))
			}
			if rep.Found > 0 {
				wake()
			}
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func backlogLoop(ctx context.Context, a *app.App, m *metrics.Metrics) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if n, oldest, err := a.Ledger.Backlog(ctx); err == nil {
			m.SetBacklog(n, oldest)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
