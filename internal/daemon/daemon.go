// Package daemon is `freshen run`: it wires the feeds, the reconcile
// loop, the worker pool, the metrics and the HTTP API together as
// services, and shuts them down in order (stop accepting, finish
// in-flight keys), so that no goroutine outlives Run.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/net/netutil"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/internal/app"
	"github.com/freshen-io/freshen/internal/httpapi"
	"github.com/freshen-io/freshen/internal/intake"
	"github.com/freshen-io/freshen/internal/metrics"
	"github.com/freshen-io/freshen/internal/pipeline"
	"github.com/freshen-io/freshen/internal/reconcile"
	"github.com/freshen-io/freshen/internal/service"
)

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

// Run is `freshen run`: the feeds, the periodic reconciler, the workers
// and the HTTP API, each a service with Start and Stop, until ctx is
// done. Then it stops them in reverse order: the API and feeds first (no
// new work), the workers last (in-flight keys finish, or are cancelled
// after shutdown-timeout and redone later); every goroutine has returned
// when Run does. a must have been opened with app.Options.Exclusive.
func Run(ctx context.Context, a *app.App, o Options) error {
	log := o.Log
	if log == nil {
		log = a.Log
	}
	cfg := a.Config
	if o.Listen != "" {
		cfg.Listen = o.Listen
	}
	if err := cfg.Exposure(); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg)
	host, _ := os.Hostname()
	self := freshen.Process{Owner: fmt.Sprintf("%s-%d", host, os.Getpid()), Host: host, PID: os.Getpid(), Started: time.Now()}

	// The feeds and the API live as long as Run; the generations' work
	// (workers, reconcilers) lives in an epoch, which is replaced when the
	// registry of generations changes shape (a migration starts, switches,
	// ends): cur forwards the feeds' changes and the API's calls to the
	// epoch of the moment.
	cur := &current{}
	var stopping atomic.Bool
	ready := func() error {
		if stopping.Load() {
			return errors.New("shutting down")
		}
		return cur.ready()
	}
	var webhookHandler http.Handler
	feeds, err := a.Feeds(ctx)
	if err != nil {
		return err
	}
	fronts := service.Group{}
	for _, f := range feeds {
		if h, ok := f.(http.Handler); ok && f.Name() == "webhook" {
			webhookHandler = h
		}
		fronts = append(fronts, &feedService{feed: f, sink: cur, log: log})
	}
	api := httpapi.New(httpapi.Config{Backend: cur, Gather: reg, Webhook: webhookHandler, Token: string(cfg.APIToken),
		MetricsPublic: cfg.MetricsPublic, MaxQueryBytes: int(cfg.Search.MaxQueryBytes), MaxConcurrent: cfg.Search.MaxConcurrent, Ready: ready})
	srv := &httpService{addr: cfg.Listen, handler: api.Handler(), timeout: time.Duration(cfg.ShutdownTimeout), limits: defaultHTTPLimits}

	act := app.NewActivityLog()
	ep := &epoch{a: a, self: self, m: m, log: log, onResult: o.OnResult, act: act}
	if err := ep.start(ctx); err != nil {
		ep.stop()
		return err
	}
	cur.set(ep)
	// Workers first, so that nothing accepted waits; then what feeds
	// them. Stop runs the other way round.
	fronts = append(service.Group{srv}, fronts...)
	if err := fronts.Start(ctx); err != nil {
		ep.stop()
		return err
	}
	base := "http://" + srv.Addr()
	if o.OnListen != nil {
		o.OnListen(base)
	}
	var names []string
	for _, f := range feeds {
		names = append(names, f.Name())
	}
	log.Info("freshen is running", "bucket", cfg.Source.Bucket, "prefixes", a.Filter.Prefixes(), "api", base, "feeds", names,
		"webhook", base+"/v1/events/s3", "metrics", base+"/metrics", "reconcile_interval", cfg.ReconcileInterval.String(),
		"generation", a.Gen.ID)

	var runErr error
	var opened []*app.App
	var closing sync.WaitGroup // old epochs' Apps, closed once drained
loop:
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down: finishing in-flight objects")
			break loop
		case err := <-srv.Failed():
			runErr = fmt.Errorf("http server stopped: %w", err)
			log.Error("http server stopped", "err", err)
			break loop
		case <-ep.reload:
		}
		// The generations changed: finish in-flight work, open the new
		// set, and move the feeds and the API over to it.
		log.Info("the index generations changed; reopening them", "from", ep.a.Registry.Shape())
		if ep.stop() {
			log.Warn("in-flight objects did not finish before the generations changed; they are redone")
		}
		next, err := ep.a.Reopen(ctx)
		for err != nil {
			log.Error("could not open the new generations; retrying", "err", err)
			if !service.Sleep(ctx, 5*time.Second) {
				break loop
			}
			next, err = ep.a.Reopen(ctx)
		}
		opened = append(opened, next)
		old := ep
		ep = &epoch{a: next, self: self, m: m, log: log, onResult: o.OnResult, act: act}
		if err := ep.start(ctx); err != nil {
			runErr = err
			break loop
		}
		cur.set(ep)
		closing.Add(1)
		go func() {
			defer closing.Done()
			// Calls still running on the old generations finish first;
			// their read-your-writes waiters look again every second,
			// since the new epoch's commits do not wake them.
			drained := make(chan struct{})
			go func() { old.calls.Wait(); close(drained) }()
			for {
				old.a.WakeWaiters()
				select {
				case <-drained:
					old.a.Close()
					return
				case <-time.After(time.Second):
				}
			}
		}()
		log.Info("serving", "generation", next.Gen.ID, "generations", next.Registry.Shape())
	}
	stopping.Store(true)
	fronts.Stop()
	if ep.stop() {
		runErr = errors.Join(runErr, fmt.Errorf("in-flight objects did not finish within %s; they will be redone at the next start", cfg.ShutdownTimeout))
	}
	closing.Wait()
	for _, o := range opened {
		o.Close()
	}
	if runErr == nil {
		log.Info("stopped cleanly")
	}
	return runErr
}

// epoch is the work on one set of generations: the serving generation's
// workers, reconcilers, verifier and cluster membership, and the same
// for the generation beside it (fewer workers: it is backlog).
type epoch struct {
	a        *app.App
	self     freshen.Process
	m        *metrics.Metrics
	log      *slog.Logger
	onResult func(pipeline.Result)
	act      *app.ActivityLog

	sink   watchedSink
	recs   reconcilers
	others reconcilers
	svcs   service.Group
	p, po  *pipeline.Pipeline
	// reload is closed when the registry of generations changes shape.
	reload chan struct{}
	// calls counts API calls and feed puts in flight on this epoch.
	calls sync.WaitGroup
}

func (e *epoch) start(ctx context.Context) error {
	a, log, m := e.a, e.log, e.m
	cfg := a.Config
	a.Owner = e.self.Owner
	a.ActivityLog = e.act
	e.reload = make(chan struct{})
	// Every commit wakes the read-your-writes waiters: this process's
	// own, and on a shared ledger the others' if it announces them.
	_, shared := a.Ledger.(freshen.Coordinator)
	_, announces := a.Ledger.(freshen.CommitNotifier)
	a.Notified = !shared || announces
	e.p = a.Pipeline(func(r pipeline.Result) {
		m.ObserveResult(r)
		e.act.Result(r)
		a.Committed(r.Key)
		if e.onResult != nil {
			e.onResult(r)
		}
		// Failures are logged by the pipeline itself.
		if r.Err == nil {
			log.Debug("object processed", "key", freshen.KeyForLog(r.Key), "outcome", r.Outcome, "chunks", r.Chunks,
				"embedded", r.Work.ChunksEmbedded, "reused", r.Work.ChunksReused, "lag", time.Since(r.FirstSeen).Round(time.Millisecond),
				"trace_id", r.TraceID)
		}
	})
	wake := e.p.Wake
	if o := a.Other; o != nil {
		o.Owner = e.self.Owner + fmt.Sprintf("-g%d", o.Gen.ID)
		e.po = o.Pipeline(func(r pipeline.Result) {
			if r.Err == nil {
				log.Debug("object processed", "generation", o.Gen.ID, "key", freshen.KeyForLog(r.Key), "outcome", r.Outcome,
					"embedded", r.Work.ChunksEmbedded, "reused", r.Work.ChunksReused)
			}
		})
		wake = func() { e.p.Wake(); e.po.Wake() }
	}
	e.sink = watchedSink{a.Sink(m.Intake(), wake), e.p}
	if err := a.Publish(ctx, false); err != nil {
		log.Warn("could not publish the serving generation's index under its stable name", "err", err)
	}
	for _, g := range e.gens() {
		if rep, err := g.a.CheckState(ctx); err != nil {
			return fmt.Errorf("generation %d: checking the ledger against the index: %w", g.a.Gen.ID, err)
		} else if rep.Problem != "" {
			log.Warn("the ledger and the index disagree; repairing", "generation", g.a.Gen.ID, "problem", rep.Problem)
		}
		if n, err := g.p.Recover(ctx); err != nil {
			return fmt.Errorf("generation %d: recover: %w", g.a.Gen.ID, err)
		} else if n > 0 {
			log.Warn("recovering keys whose index writes were interrupted", "generation", g.a.Gen.ID, "keys", n)
		}
	}

	// One reconciler per range of the bucket (one range unless
	// reconcile-split says otherwise); on a shared ledger each range is
	// led by one process, so several processes list a large bucket in
	// parallel. The generation beside the serving one has its own, which
	// queue only in its own ledger: its first pass is the backfill.
	e.recs = e.reconcilers(a, e.sink, e.p.Wake, "")
	if o := a.Other; o != nil {
		e.others = e.reconcilers(o, o.Sink(nil, e.po.Wake), e.po.Wake, fmt.Sprintf(" g%d", o.Gen.ID))
	}
	a.Health, a.BudgetSpent = func() error { return errors.Join(e.p.Health(), providerHealth(a.Embedder)) }, e.p.BudgetSpent
	svcs := service.Group{pipelineService{e.p}}
	if e.po != nil {
		svcs = append(svcs, pipelineService{e.po})
	}
	for _, rec := range append(slices.Clone(e.recs), e.others...) {
		svcs = append(svcs, rec)
	}
	all := append(slices.Clone(e.recs), e.others...)
	svcs = append(svcs, &backlogService{q: a.Ledger, m: m, health: a.Health, status: a.Status},
		&clusterService{ledger: a.Ledger, self: e.self, wake: wake, leads: all.leads, balance: all.balance, log: log, committed: a.Committed},
		&registryWatch{a: a, reload: e.reload, log: log})
	if cfg.VerifyInterval > 0 {
		svcs = append(svcs, &verifier{a: a, interval: time.Duration(cfg.VerifyInterval), m: m, log: log, wake: e.p.Wake})
	}
	e.svcs = svcs
	return svcs.Start(ctx)
}

// gen is a live generation and its workers.
type gen struct {
	a *app.App
	p *pipeline.Pipeline
}

// gens lists the live generations, the serving one first.
func (e *epoch) gens() []gen {
	out := []gen{{e.a, e.p}}
	if e.po != nil {
		out = append(out, gen{e.a.Other, e.po})
	}
	return out
}

func (e *epoch) reconcilers(a *app.App, in reconcile.Intake, wake func(), suffix string) reconcilers {
	cfg := a.Config
	co, _ := a.Ledger.(freshen.Coordinator)
	act := e.act
	if suffix != "" {
		act = nil // the dashboard shows the serving generation's passes
	}
	var recs reconcilers
	for _, rg := range cfg.ReconcileRanges() {
		recs = append(recs, &reconciler{r: a.ReconcilerRange(in, rg.After, rg.Through), interval: time.Duration(cfg.ReconcileInterval),
			allow: cfg.MassDelete.Allow, m: e.m, act: act, log: e.log.With("range", rg.String()+suffix), wake: wake, job: rg.Job(cfg.Source.Bucket) + suffix,
			retryLead: time.Duration(cfg.Retry.LeaseTTL), co: co})
	}
	for _, rec := range recs {
		rec.siblings = func() int { return len(recs.leads()) - len(rec.leads()) }
	}
	return recs
}

// stop stops the epoch's services, the workers last; it reports whether
// in-flight keys had to be cancelled.
func (e *epoch) stop() (cancelled bool) {
	if len(e.svcs) == 0 {
		return false
	}
	e.svcs[1:].Stop()
	for _, g := range e.gens() {
		cancelled = g.p.Stop() || cancelled
	}
	e.svcs = nil
	return cancelled
}

// ready is nil once the serving generation's first reconcile pass ran
// and nothing stops its work.
func (e *epoch) ready() error {
	if err := e.a.Health(); err != nil {
		return err
	}
	return e.recs.Ready()
}

// current forwards the feeds' changes and the API's calls to the epoch
// of the moment; an old epoch is closed once its calls have returned.
type current struct {
	mu sync.Mutex
	ep *epoch
}

func (c *current) set(e *epoch) {
	c.mu.Lock()
	c.ep = e
	c.mu.Unlock()
}

// enter returns the current epoch; the caller calls done when finished.
func (c *current) enter() (*epoch, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ep.calls.Add(1)
	return c.ep, c.ep.calls.Done
}

func (c *current) ready() error {
	e, done := c.enter()
	defer done()
	return e.ready()
}

func (c *current) Put(ctx context.Context, origin string, changes []freshen.Change) error {
	e, done := c.enter()
	defer done()
	return e.sink.Put(ctx, origin, changes)
}

func (c *current) Received(origin string, n int) {
	e, done := c.enter()
	defer done()
	e.sink.Received(origin, n)
}

func (c *current) Drop(origin, reason string, n int) {
	e, done := c.enter()
	defer done()
	e.sink.Drop(origin, reason, n)
}

func (c *current) Search(ctx context.Context, query string, k int, prefix string, filters ...freshen.Filter) ([]app.SearchHit, error) {
	e, done := c.enter()
	defer done()
	return e.a.Search(ctx, query, k, prefix, filters...)
}

func (c *current) Status(ctx context.Context) (app.Status, error) {
	e, done := c.enter()
	defer done()
	return e.a.Status(ctx)
}

func (c *current) State(ctx context.Context, key string) (freshen.KeyState, bool, error) {
	e, done := c.enter()
	defer done()
	return e.a.State(ctx, key)
}

func (c *current) Wait(ctx context.Context, key, etag, versionID string) (app.WaitResult, error) {
	e, done := c.enter()
	defer done()
	return e.a.Wait(ctx, key, etag, versionID)
}

func (c *current) OldestPending(ctx context.Context) (time.Time, error) {
	e, done := c.enter()
	defer done()
	return e.a.OldestPending(ctx)
}

func (c *current) DeadLetters(ctx context.Context, skipped bool, reason string, limit int) ([]app.DeadLetter, error) {
	e, done := c.enter()
	defer done()
	return e.a.DeadLetters(ctx, skipped, reason, limit)
}

func (c *current) Activity(ctx context.Context) (app.Activity, error) {
	e, done := c.enter()
	defer done()
	return e.a.Activity(ctx)
}

func (c *current) Redrive(ctx context.Context, keys []string) (int, error) {
	e, done := c.enter()
	defer done()
	return e.a.RedriveThrough(ctx, e.sink, keys)
}

// registryWatch reads the registry of generations every few seconds:
// when its shape changes (a migration started, switched, ended) it
// closes reload; it also retires and drops generations whose time came.
type registryWatch struct {
	service.Base
	a      *app.App
	reload chan struct{}
	log    *slog.Logger
}

// registryEvery is how often a process reads the registry: the most a
// switch takes to reach every process.
const registryEvery = 2 * time.Second

func (s *registryWatch) Start(ctx context.Context) error {
	ctx, ok := s.StartInit(ctx)
	if !ok {
		return nil
	}
	s.Go(func() {
		for service.Sleep(ctx, registryEvery) {
			if err := s.a.Collect(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("could not drop an old index generation; retrying", "err", err)
			}
			r, err := s.a.ReadRegistry(ctx)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("could not read the registry of index generations", "err", err)
				}
				continue
			}
			if r.Shape() != s.a.Registry.Shape() {
				close(s.reload)
				return
			}
		}
	})
	return nil
}

// providerHealth asks an embedder that can tell (a provider behind a
// circuit breaker) whether it is being called.
func providerHealth(e freshen.Embedder) error {
	if h, ok := e.(interface{ ProviderHealth() error }); ok {
		return h.ProviderHealth()
	}
	return nil
}

// watchedSink tells the pipeline how the intake's writes go, so that a
// full disk shows in readiness, status and metrics even when the workers
// have nothing to do, and clears when writes succeed again.
type watchedSink struct {
	*intake.Sink
	p *pipeline.Pipeline
}

func (s watchedSink) Put(ctx context.Context, origin string, changes []freshen.Change) error {
	err := s.Sink.Put(ctx, origin, changes)
	if err != nil || len(changes) > 0 {
		s.p.NoteWrite(err)
	}
	return err
}

func (s watchedSink) Add(ctx context.Context, origin string, changes []freshen.Change) (int, error) {
	n, err := s.Sink.Add(ctx, origin, changes)
	if len(changes) > 0 {
		s.p.NoteWrite(err)
	}
	return n, err
}

// pipelineService adapts the pipeline's Stop to service.Service.
type pipelineService struct{ p *pipeline.Pipeline }

func (s pipelineService) Start(ctx context.Context) error { return s.p.Start(ctx) }
func (s pipelineService) Stop()                           { s.p.Stop() }

// feedService runs one feed into the sink.
type feedService struct {
	service.Base
	feed freshen.Feed
	sink freshen.Sink
	log  *slog.Logger
}

func (s *feedService) Start(ctx context.Context) error {
	ctx, ok := s.StartInit(ctx)
	if !ok {
		return nil
	}
	s.Go(func() {
		if err := s.feed.Run(ctx, s.sink); err != nil && ctx.Err() == nil {
			s.log.Error("feed stopped", "feed", s.feed.Name(), "err", err)
		}
	})
	return nil
}

// httpLimits bound what clients can hold: a slow sender cannot keep a
// connection (or a file descriptor) forever, and many cannot exhaust them.
type httpLimits struct {
	// ReadHeader and Read bound reading a request (webhook bodies are at
	// most 256 KiB); Write bounds a response (search queues behind
	// search.max-concurrent); Idle bounds a kept-alive connection.
	ReadHeader, Read, Write, Idle time.Duration
	// MaxConns caps open connections; more wait in the kernel's backlog.
	MaxConns int
}

var defaultHTTPLimits = httpLimits{ReadHeader: 5 * time.Second, Read: 30 * time.Second, Write: 2 * time.Minute,
	Idle: 2 * time.Minute, MaxConns: 512}

// httpService serves the API.
type httpService struct {
	service.Base
	addr    string
	handler http.Handler
	timeout time.Duration
	limits  httpLimits
	srv     *http.Server
	ln      net.Listener
	failed  chan error
}

func (s *httpService) Start(ctx context.Context) error {
	if _, ok := s.StartInit(ctx); !ok {
		return nil
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.Base.Stop()
		return fmt.Errorf("listen: %w", err)
	}
	s.ln, s.failed = ln, make(chan error, 1)
	ln = netutil.LimitListener(ln, s.limits.MaxConns)
	s.srv = &http.Server{Handler: s.handler, ReadHeaderTimeout: s.limits.ReadHeader, ReadTimeout: s.limits.Read,
		WriteTimeout: s.limits.Write, IdleTimeout: s.limits.Idle}
	s.Go(func() {
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.failed <- err
		}
	})
	return nil
}

// Addr is the address the server listens on.
func (s *httpService) Addr() string { return s.ln.Addr().String() }

// Failed delivers the error that stopped the server on its own.
func (s *httpService) Failed() <-chan error { return s.failed }

// Stop lets in-flight requests (a webhook queueing its changes) finish.
func (s *httpService) Stop() {
	if s.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		if err := s.srv.Shutdown(ctx); err != nil {
			s.srv.Close()
		}
		cancel()
	}
	s.Base.Stop()
}

// reconciler runs a pass at start and then every interval; a failed pass
// is retried sooner, with backoff. It is what /readyz asks.
type reconciler struct {
	service.Base
	r        *reconcile.Reconciler
	interval time.Duration
	allow    bool
	m        *metrics.Metrics
	act      *app.ActivityLog
	log      *slog.Logger
	wake     func()
	ready    atomic.Pointer[error]
	// co, when the ledger is shared, elects the one process that runs
	// job; the others try again every retryLead/2, so a dead leader's
	// successor takes over within that.
	co        freshen.Coordinator
	job       string
	retryLead time.Duration
	leading   atomic.Bool
	// siblings counts the other ranges this process leads: a process
	// that leads some lets a free range go to the others for one try,
	// so the ranges spread over the processes.
	siblings func() int
	deferred bool
	// shed asks the loop to give its range up at its next turn (this
	// process leads more than its share).
	shed atomic.Bool
}

// reconcilers are the bucket's ranges' reconcilers.
type reconcilers []*reconciler

// Ready is nil once every range has had its first pass (or is led by
// another process).
func (rs reconcilers) Ready() error {
	for _, r := range rs {
		if err := r.Ready(); err != nil {
			return err
		}
	}
	return nil
}

// balance sheds one range when this process leads more than its share
// of them among the processes alive.
func (rs reconcilers) balance(processes int) {
	held := len(rs.leads())
	fair := (len(rs) + max(processes, 1) - 1) / max(processes, 1)
	if held <= fair {
		return
	}
	for _, r := range rs {
		if r.leading.Load() {
			r.shed.Store(true)
			return
		}
	}
}

func (rs reconcilers) leads() []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.leads()...)
	}
	return out
}

// leads lists the jobs this process leads (for the process registry).
func (s *reconciler) leads() []string {
	if s.leading.Load() {
		return []string{s.job}
	}
	return nil
}

// lead makes sure this process leads the reconcile, if the ledger is
// shared; it reports whether this process should run a pass now.
func (s *reconciler) lead(ctx context.Context, held *freshen.Lead) bool {
	if s.co == nil {
		return true
	}
	if *held != nil && s.shed.Swap(false) {
		s.log.Info("giving this reconcile range to a process that leads fewer", "job", s.job)
		(*held).Release()
		*held = nil
		s.leading.Store(false)
		s.deferred = true
		return false
	}
	if *held != nil {
		if err := (*held).Check(ctx); err == nil {
			return true
		} else if ctx.Err() == nil {
			s.log.Warn("lost the reconcile leadership; another process may take it", "err", err)
		}
		(*held).Release()
		*held = nil
		s.leading.Store(false)
	}
	if s.siblings != nil && s.siblings() > 0 && !s.deferred {
		s.deferred = true
		return false
	}
	s.deferred = false
	l, ok, err := s.co.TryLead(ctx, s.job)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			s.log.Warn("could not try for the reconcile leadership", "err", err)
		}
		return false
	case !ok:
		return false
	}
	*held = l
	s.leading.Store(true)
	s.log.Info("this process now runs the reconcile passes", "job", s.job)
	return true
}

var errStarting = errors.New("starting: the first reconcile pass has not finished")

// Ready reports nil once a pass has finished (or was stopped only by the
// mass-delete breaker, which needs an operator but does not stop search).
func (s *reconciler) Ready() error {
	if e := s.ready.Load(); e != nil {
		return *e
	}
	return errStarting
}

func (s *reconciler) Start(ctx context.Context) error {
	ctx, ok := s.StartInit(ctx)
	if !ok {
		return nil
	}
	s.Go(func() { s.loop(ctx) })
	return nil
}

func (s *reconciler) loop(ctx context.Context) {
	retry := time.Second
	var held freshen.Lead
	defer func() {
		if held != nil {
			held.Release()
		}
	}()
	for {
		if !s.lead(ctx, &held) {
			// Another process reconciles: this one is ready, and tries
			// again before long in case that one dies.
			var none error
			s.ready.Store(&none)
			if !service.Sleep(ctx, min(s.interval, s.retryLead/2)) {
				return
			}
			continue
		}
		rep, err := s.r.Pass(ctx, s.allow)
		if ctx.Err() != nil {
			return
		}
		s.m.ObserveReconcile(rep, err)
		if s.act != nil {
			s.act.Reconciled(rep, err)
		}
		next := s.interval
		var none error
		switch {
		case errors.Is(err, reconcile.ErrMassDelete):
			s.log.Error("mass delete blocked", "reason", rep.Message)
			s.ready.Store(&none)
		case err != nil:
			s.log.Error("reconcile failed", "err", err, "retry_in", retry)
			next, retry = min(retry, s.interval), min(retry*2, s.interval)
		default:
			retry = time.Second
			s.ready.Store(&none)
			if rep.Found > 0 || rep.Listed > 0 {
				s.log.Info("reconciled", "listed", rep.Listed, "new", rep.New, "changed", rep.Changed, "gone", rep.Vanished,
					"not_announced", rep.Found, "took", rep.Duration.Round(time.Millisecond))
			}
			if rep.Found > 0 {
				s.wake()
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

// verifier verifies the index against the ledger every interval (the
// first pass one interval after the start) and repairs what drifted: the
// repair queues rewrites, which the workers make from the embedding cache.
type verifier struct {
	service.Base
	a        *app.App
	interval time.Duration
	m        *metrics.Metrics
	log      *slog.Logger
	wake     func()
}

func (s *verifier) Start(ctx context.Context) error {
	ctx, ok := s.StartInit(ctx)
	if !ok {
		return nil
	}
	s.Go(func() {
		t := time.NewTicker(s.interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			rep, err := s.a.Verify(ctx, true, false)
			if ctx.Err() != nil {
				return
			}
			s.m.ObserveVerify(rep, err)
			switch {
			case err != nil:
				s.log.Error("verify failed", "err", err)
			case rep.Drifts() > 0:
				s.log.Warn("the index had drifted from the ledger; repairing", "missing", rep.Missing, "orphans", rep.Orphans,
					"mismatched", rep.Mismatched, "repaired", rep.Repaired, "examples", rep.Examples)
				s.wake()
			default:
				s.log.Info("verified the index", "rows", rep.RowsChecked, "took", time.Duration(rep.Seconds*float64(time.Second)).Round(time.Millisecond))
			}
		}
	})
	return nil
}

// clusterService connects this process to the others sharing its ledger:
// their enqueues wake its workers at once (freshen.Notifier), and it
// records itself in the process registry every few seconds
// (freshen.Coordinator). With a ledger of one process it does nothing.
type clusterService struct {
	service.Base
	ledger freshen.Ledger
	self   freshen.Process
	wake   func()
	leads  func() []string
	// balance is told how many processes are alive after each heartbeat.
	balance func(processes int)
	// committed is told of every key any process commits (when the
	// ledger announces commits).
	committed func(key string)
	log       *slog.Logger
}

// heartbeatEvery is how often a process records itself as alive.
const heartbeatEvery = 5 * time.Second

func (s *clusterService) Start(ctx context.Context) error {
	ctx, ok := s.StartInit(ctx)
	if !ok {
		return nil
	}
	if n, ok := s.ledger.(freshen.Notifier); ok {
		ch, err := n.Changes(ctx)
		if err != nil {
			return fmt.Errorf("listening for the ledger's changes: %w", err)
		}
		s.Go(func() {
			for range ch {
				s.wake()
			}
		})
	}
	if cn, ok := s.ledger.(freshen.CommitNotifier); ok && s.committed != nil {
		ch, err := cn.Commits(ctx)
		if err != nil {
			return fmt.Errorf("listening for the ledger's commits: %w", err)
		}
		s.Go(func() {
			for k := range ch {
				s.committed(k)
			}
		})
	}
	if co, ok := s.ledger.(freshen.Coordinator); ok {
		s.Go(func() {
			for {
				p := s.self
				p.Leads = s.leads()
				if err := co.Heartbeat(ctx, p); err != nil && ctx.Err() == nil {
					s.log.Warn("could not record this process in the ledger", "err", err)
				} else if ps, err := co.Processes(ctx, time.Now().Add(-3*heartbeatEvery)); err == nil && s.balance != nil {
					s.balance(len(ps))
				}
				if !service.Sleep(ctx, heartbeatEvery) {
					return
				}
			}
		})
	}
	return nil
}

// backlogService samples the queue and the workers' health for the
// metrics every second.
type backlogService struct {
	service.Base
	q interface {
		Backlog(ctx context.Context) (int, time.Time, error)
	}
	m      *metrics.Metrics
	health func() error
	status func(context.Context) (app.Status, error)
}

func (s *backlogService) Start(ctx context.Context) error {
	ctx, ok := s.StartInit(ctx)
	if !ok {
		return nil
	}
	s.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			if n, oldest, err := s.q.Backlog(ctx); err == nil {
				s.m.SetBacklog(n, oldest)
			}
			if s.health() != nil {
				s.m.Stalled.Set(1)
			} else {
				s.m.Stalled.Set(0)
			}
			if st, err := s.status(ctx); err == nil {
				remaining := int64(-1)
				if st.Budget != nil {
					remaining = st.Budget.TokensRemaining
				}
				s.m.SetCost(st.TokensToday, st.USDSpent, st.USDToday, remaining)
				if g := st.Migration; g != nil {
					s.m.SetGeneration(st.Generation, g.Objects, g.Of, g.Backlog, g.Tokens)
				} else {
					s.m.SetGeneration(st.Generation, 0, 0, 0, 0)
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	return nil
}
