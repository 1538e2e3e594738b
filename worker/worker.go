// Package worker is one drum worker process: it serves DRUM's HTTP API on a listener it
// is handed, runs predictions on the predictors it owns (one per predictor at a time,
// behind a bounded FIFO queue: admission.go), replaces a predictor that dies or hangs,
// and reports to the master over the ipc control channel. In single-process mode it runs
// inside the master's process, without a control channel.
package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/drum-go/drum/config"
	"github.com/drum-go/drum/ipc"
	"github.com/drum-go/drum/worker/predictor"
	"github.com/hashicorp/go-hclog"
)

// Defaults for zero Options fields (when the Config does not set them either).
const (
	DefaultHeartbeatInterval = 5 * time.Second
	DefaultGracefulTimeout   = 30 * time.Second
	DefaultMaxBodyBytes      = config.DefaultMaxBodyBytes
)

// Options configure Run. Zero fields take their value from Config, then a default.
type Options struct {
	Config   config.Config
	Listener net.Listener // served until Run returns; Run closes it
	// Control is the channel to the master; nil runs without one (tests, single-process
	// mode). Run reads it from a goroutine that ends when the channel fails or is
	// closed: close it after Run returns.
	Control  *ipc.Conn
	WorkerID int
	Logger   hclog.Logger
	// NewPredictor starts a predictor with the model loaded; it is called once per
	// predictor of the pool at start, and again to replace one that died.
	NewPredictor func(ctx context.Context) (predictor.Predictor, error)
	// OnReady, if set, is called once every predictor has loaded and the worker serves,
	// with the predictors' pids.
	OnReady func(predictorPids []int)

	HeartbeatInterval time.Duration // default Config.HeartbeatInterval, else DefaultHeartbeatInterval
	GracefulTimeout   time.Duration // default Config.GracefulTimeout, else DefaultGracefulTimeout
	MaxBodyBytes      int64         // default Config.MaxBodyBytes, else DefaultMaxBodyBytes
	// RequestTimeout bounds a prediction (waiting for a predictor included); 0 means
	// no limit. A predictor that overruns it is replaced.
	RequestTimeout time.Duration
	// URLPrefix is DRUM's URL_PREFIX: every route lives under it ("" for none).
	URLPrefix string

	// Concurrency is the number of predictors, hence of predictions at once (default
	// Config.Concurrency()).
	Concurrency int
	// QueueSize is how many predictions may wait for a predictor (default
	// Config.QueueSize; negative for none).
	QueueSize int
	// OverloadStatus answers a prediction that finds the queue full: 503 or 429
	// (default Config.OverloadStatus, else 503).
	OverloadStatus int
	// SpoolThreshold: bodies above it are spooled to a temporary file in SpoolDir
	// ("" for os.TempDir()); default Config.SpoolThreshold, else
	// config.DefaultSpoolThreshold; negative spools every body.
	SpoolThreshold int64
	SpoolDir       string
	// Slow clients: time to read the headers, time to read the body, idle time between
	// requests on a keep-alive connection, and the header size limit.
	HeaderTimeout  time.Duration
	BodyTimeout    time.Duration
	KeepAlive      time.Duration
	MaxHeaderBytes int
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	s := &o.Config.Serving
	o.HeartbeatInterval = firstPositive(o.HeartbeatInterval, o.Config.HeartbeatInterval, DefaultHeartbeatInterval)
	o.GracefulTimeout = firstPositive(o.GracefulTimeout, o.Config.GracefulTimeout, DefaultGracefulTimeout)
	o.MaxBodyBytes = firstPositive(o.MaxBodyBytes, s.MaxBodyBytes, DefaultMaxBodyBytes)
	o.Concurrency = firstPositive(o.Concurrency, s.Concurrency(), 1)
	switch {
	case o.QueueSize < 0:
		o.QueueSize = 0
	case o.QueueSize == 0:
		o.QueueSize = s.QueueSize
	}
	o.OverloadStatus = firstPositive(o.OverloadStatus, s.OverloadStatus, config.DefaultOverloadStatus)
	switch {
	case o.SpoolThreshold < 0:
		o.SpoolThreshold = 0
	case o.SpoolThreshold == 0:
		o.SpoolThreshold = firstPositive(s.SpoolThreshold, config.DefaultSpoolThreshold)
	}
	o.HeaderTimeout = firstPositive(o.HeaderTimeout, s.HeaderTimeout, config.DefaultHeaderTimeout)
	o.BodyTimeout = firstPositive(o.BodyTimeout, s.BodyTimeout, config.DefaultBodyTimeout)
	o.KeepAlive = firstPositive(o.KeepAlive, s.KeepAlive, config.DefaultKeepAlive)
	o.MaxHeaderBytes = firstPositive(o.MaxHeaderBytes, s.MaxHeaderBytes, config.DefaultMaxHeaderBytes)
}

func firstPositive[T int | int64 | time.Duration](vs ...T) T {
	for _, v := range vs {
		if v > 0 {
			return v
		}
	}
	return 0
}

// stopRequest is why Run stops.
type stopRequest struct {
	graceful bool
	timeout  time.Duration
	why      string
}

// Run starts the predictors, reports ready, serves HTTP on opts.Listener and returns
// once asked to stop: when ctx is cancelled or the master sends KindStop (in-flight
// requests finish, bounded by the graceful timeout), or when the control channel closes
// (the master is gone: stop at once). It returns an error only when the worker could not
// start or the listener failed.
func Run(ctx context.Context, opts Options) error {
	opts.setDefaults()
	if opts.Listener == nil || opts.NewPredictor == nil {
		return errors.New("worker: Listener and NewPredictor are required")
	}
	log := opts.Logger.With("worker", opts.WorkerID)

	preds, err := startPredictors(ctx, opts.NewPredictor, opts.Concurrency)
	if err != nil && opts.Config.WithErrorServer && ctx.Err() == nil {
		return runErrorServer(ctx, opts, log, err) // errorserver.go
	}
	if err != nil {
		err = fmt.Errorf("worker %d: %w", opts.WorkerID, startError(err)) // keeper.go
		if opts.Control != nil {
			if serr := opts.Control.Send(ipc.KindFailed, ipc.Failed{Error: err.Error()}); serr != nil {
				log.Error("cannot report the failure to the master", "error", serr)
			}
		}
		opts.Listener.Close()
		return err
	}
	first := preds[0]
	tracer, err := startTracing(ctx, os.LookupEnv, opts.WorkerID, log) // tracing.go; nil when off
	if err != nil {
		for _, p := range preds {
			_ = p.Close()
		}
		opts.Listener.Close()
		return fmt.Errorf("worker %d: %w", opts.WorkerID, err)
	}

	stats := &counters{}
	keeperCtx, stopKeeper := context.WithCancel(context.Background())
	defer stopKeeper()
	keepers := make([]*keeper, len(preds))
	for i, p := range preds {
		klog := log.Named("predictor")
		if len(preds) > 1 {
			klog = klog.With("slot", i+1)
		}
		keepers[i] = newKeeper(klog, opts.NewPredictor, stats)
		go keepers[i].run(keeperCtx, p)
	}
	pool := newKeeperPool(keepers, opts.QueueSize, stats)
	if b := opts.Config.Batching; b.Batching && config.BatchesTarget(opts.Config.TargetType) {
		pool.enableBatching(firstPositive(b.BatchMaxRows, config.DefaultBatchMaxRows), b.BatchMaxWait)
	}
	status := newStatusSource(opts.Config, opts.WorkerID, opts.Control == nil, stats, opts.Concurrency, opts.QueueSize)

	h := &handler{
		cfg:            opts.Config,
		log:            log.Named("http"),
		router:         newRouter(opts.URLPrefix),
		keeper:         pool,
		maxBody:        opts.MaxBodyBytes,
		timeout:        opts.RequestTimeout,
		spoolThreshold: opts.SpoolThreshold,
		spoolDir:       opts.SpoolDir,
		bodyTimeout:    opts.BodyTimeout,
		overloadStatus: opts.OverloadStatus,
		status:         status,
		guard:          newGuard(opts.Config.Operability), // auth.go
		accessLogOn:    opts.Config.AccessLog,
	}
	// Handlers see baseCtx cancelled only on a hard stop, so a graceful drain lets them
	// finish.
	baseCtx, hardStop := context.WithCancel(context.Background())
	defer hardStop()
	srv := &http.Server{
		Handler:           tracer.wrap(h, h.router),
		ReadHeaderTimeout: opts.HeaderTimeout,
		IdleTimeout:       opts.KeepAlive,
		MaxHeaderBytes:    opts.MaxHeaderBytes,
		ErrorLog:          log.Named("http").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
	}
	fresh := &newConns{}
	srv.ConnState = fresh.track
	stopKeepers := func() {
		pool.stop()
		stopKeeper()
		for _, k := range keepers {
			<-k.done // closes the predictor
		}
	}

	stopCh := make(chan stopRequest, 1)
	var bg sync.WaitGroup
	hbDone := make(chan struct{})
	if opts.Control != nil {
		ready := ipc.Ready{Pid: os.Getpid(), PredictorPid: first.Pid(), Predictor: first.Info().Predictor}
		if err := opts.Control.Send(ipc.KindReady, ready); err != nil {
			log.Error("cannot report ready to the master", "error", err)
		}
		bg.Add(1)
		go func() {
			defer bg.Done()
			heartbeat(opts.Control, opts.HeartbeatInterval, stats, pool.report, hbDone, log)
		}()
		go readControl(opts.Control, stopCh, status, log)
	}

	ln := newDrainListener(opts.Listener)
	ln.queued, pool.gate.onQueue = pool.holdBack, ln.wake // pacing.go
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	pids := make([]int, len(preds))
	for i, p := range preds {
		pids[i] = p.Pid()
	}
	log.Info("serving", "address", opts.Listener.Addr().String(), "predictor_pids", pids,
		"queue", opts.QueueSize)
	if opts.OnReady != nil {
		opts.OnReady(pids)
	}

	var stop stopRequest
	select {
	case <-ctx.Done():
		stop = stopRequest{graceful: true, timeout: opts.GracefulTimeout, why: "context cancelled"}
	case stop = <-stopCh:
		if stop.timeout <= 0 {
			stop.timeout = opts.GracefulTimeout
		}
	case err := <-serveErr:
		log.Error("listener failed", "error", err)
		stopKeepers()
		tracer.shutdown(5*time.Second, log)
		close(hbDone)
		bg.Wait()
		return fmt.Errorf("worker %d: serve: %w", opts.WorkerID, err)
	}

	log.Info("stopping", "why", stop.why, "graceful", stop.graceful)
	h.draining.Store(true) // readiness fails at once: orchestrators stop sending
	if stop.graceful {
		// Answer the connections already waiting in the kernel's accept queue: closing
		// the socket under them would reset them.
		ln.Drain(50*time.Millisecond, time.Second)
		select {
		case err := <-serveErr:
			serveErr <- err
		case <-time.After(2 * time.Second):
		}
		fresh.wait(min(opts.HeaderTimeout, 5*time.Second))
		fresh.waitIdle(min(opts.KeepAlive, time.Second))
		sctx, cancel := context.WithTimeout(context.Background(), stop.timeout)
		if err := srv.Shutdown(sctx); err != nil {
			log.Warn("graceful stop timed out; closing open connections", "timeout", stop.timeout)
		}
		cancel()
	}
	hardStop()
	srv.Close()
	<-serveErr
	stopKeepers()
	tracer.shutdown(5*time.Second, log) // every span has ended: export what is buffered
	close(hbDone)
	bg.Wait()
	log.Info("stopped")
	return nil
}

// heartbeat sends the counters every interval until done, then once more: the master
// keeps a departed worker's last counters in the server's totals, so the requests of
// its last moments must reach it too. It touches only atomics and the control channel,
// so a busy predictor cannot hold it up.
func heartbeat(c *ipc.Conn, every time.Duration, stats *counters, report func(*ipc.Heartbeat),
	done <-chan struct{}, log hclog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	beat := func() ipc.Heartbeat {
		hb := ipc.Heartbeat{Counters: stats.snapshot()}
		report(&hb)
		return hb
	}
	for {
		select {
		case <-done:
			_ = c.Send(ipc.KindHeartbeat, beat()) // the master may be gone
			return
		case <-t.C:
			if err := c.Send(ipc.KindHeartbeat, beat()); err != nil {
				log.Warn("heartbeat not sent", "error", err)
			}
		}
	}
}

// readControl turns master frames into stop requests. It returns when the channel
// fails, which is also a stop: a worker without a master must not linger.
func readControl(c *ipc.Conn, stopCh chan<- stopRequest, status *statusSource, log hclog.Logger) {
	for {
		f, err := c.Read()
		if err != nil {
			why := "control channel closed (master gone)"
			if !errors.Is(err, io.EOF) {
				why = "control channel failed: " + err.Error()
			}
			select {
			case stopCh <- stopRequest{graceful: false, why: why}:
			default:
			}
			return
		}
		switch f.Kind {
		case ipc.KindStop:
			var s ipc.Stop
			if err := ipc.Decode(f, &s); err != nil {
				log.Warn("bad stop frame; stopping gracefully", "error", err)
				s.Graceful = true
			}
			select {
			case stopCh <- stopRequest{graceful: s.Graceful, timeout: time.Duration(s.TimeoutS) * time.Second,
				why: "stop requested by the master"}:
			default:
			}
		case ipc.KindStats:
			var st ipc.ServerStats
			if err := ipc.Decode(f, &st); err != nil {
				log.Warn("bad stats frame", "error", err)
				continue
			}
			status.setServerStats(st)
		default:
			log.Debug("ignoring control frame", "kind", f.Kind)
		}
	}
}

// startPredictors starts n predictors at once and returns them once all have loaded the
// model; if one fails, the others are closed.
func startPredictors(ctx context.Context, start func(context.Context) (predictor.Predictor, error), n int) ([]predictor.Predictor, error) {
	preds := make([]predictor.Predictor, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := start(ctx)
			if err == nil && p == nil {
				err = errors.New("NewPredictor returned no predictor")
			}
			if err != nil {
				errs[i] = err
				return
			}
			preds[i] = p
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, p := range preds {
			if p != nil {
				_ = p.Close()
			}
		}
		for _, e := range errs {
			if e != nil {
				return nil, e // the first: n copies of one model error say nothing more
			}
		}
	}
	return preds, nil
}
