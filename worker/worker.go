// Package worker is one drum worker process: it serves DRUM's HTTP API on a listener it
// is handed, runs predictions on the predictor it owns (one at a time), replaces that
// predictor when it dies, and reports to the master over the ipc control channel.
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

// Defaults for zero Options fields.
const (
	DefaultHeartbeatInterval = 5 * time.Second
	DefaultGracefulTimeout   = 30 * time.Second
	DefaultMaxBodyBytes      = 1 << 30
)

// Options configure Run.
type Options struct {
	Config   config.Config
	Listener net.Listener // served until Run returns; Run closes it
	// Control is the channel to the master; nil runs without one (tests, single-process
	// mode). Run reads it from a goroutine that ends when the channel fails or is
	// closed: close it after Run returns.
	Control  *ipc.Conn
	WorkerID int
	Logger   hclog.Logger
	// NewPredictor starts a predictor with the model loaded; it is called again to
	// replace one that died.
	NewPredictor func(ctx context.Context) (predictor.Predictor, error)

	HeartbeatInterval time.Duration // default Config.HeartbeatInterval, else DefaultHeartbeatInterval
	GracefulTimeout   time.Duration // default Config.GracefulTimeout, else DefaultGracefulTimeout
	MaxBodyBytes      int64         // default DefaultMaxBodyBytes
	// RequestTimeout bounds a prediction (waiting for the predictor included); 0 means
	// no limit. A predictor that overruns it is replaced.
	RequestTimeout time.Duration
	// URLPrefix is DRUM's URL_PREFIX: every route lives under it ("" for none).
	URLPrefix string
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = o.Config.HeartbeatInterval
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if o.GracefulTimeout <= 0 {
		o.GracefulTimeout = o.Config.GracefulTimeout
	}
	if o.GracefulTimeout <= 0 {
		o.GracefulTimeout = DefaultGracefulTimeout
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
}

// stopRequest is why Run stops.
type stopRequest struct {
	graceful bool
	timeout  time.Duration
	why      string
}

// Run starts the predictor, reports ready, serves HTTP on opts.Listener and returns
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

	first, err := opts.NewPredictor(ctx)
	if err == nil && first == nil {
		err = errors.New("NewPredictor returned no predictor")
	}
	if err != nil {
		err = fmt.Errorf("worker %d: start predictor: %w", opts.WorkerID, err)
		if opts.Control != nil {
			if serr := opts.Control.Send(ipc.KindFailed, ipc.Failed{Error: err.Error()}); serr != nil {
				log.Error("cannot report the failure to the master", "error", serr)
			}
		}
		opts.Listener.Close()
		return err
	}

	stats := &counters{}
	k := newKeeper(log.Named("predictor"), opts.NewPredictor, stats)
	keeperCtx, stopKeeper := context.WithCancel(context.Background())
	defer stopKeeper()
	go k.run(keeperCtx, first)

	h := &handler{
		cfg:     opts.Config,
		log:     log.Named("http"),
		router:  newRouter(opts.URLPrefix),
		keeper:  k,
		maxBody: opts.MaxBodyBytes,
		timeout: opts.RequestTimeout,
	}
	// Handlers see baseCtx cancelled only on a hard stop, so a graceful drain lets them
	// finish.
	baseCtx, hardStop := context.WithCancel(context.Background())
	defer hardStop()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          log.Named("http").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
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
			heartbeat(opts.Control, opts.HeartbeatInterval, stats, hbDone, log)
		}()
		go readControl(opts.Control, stopCh, log)
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(opts.Listener) }()
	log.Info("serving", "address", opts.Listener.Addr().String(), "predictor_pid", first.Pid())

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
		k.stop()
		stopKeeper()
		<-k.done
		close(hbDone)
		bg.Wait()
		return fmt.Errorf("worker %d: serve: %w", opts.WorkerID, err)
	}

	log.Info("stopping", "why", stop.why, "graceful", stop.graceful)
	if stop.graceful {
		sctx, cancel := context.WithTimeout(context.Background(), stop.timeout)
		if err := srv.Shutdown(sctx); err != nil {
			log.Warn("graceful stop timed out; closing open connections", "timeout", stop.timeout)
		}
		cancel()
	}
	hardStop()
	srv.Close()
	<-serveErr
	k.stop()
	stopKeeper()
	<-k.done // closes the predictor
	close(hbDone)
	bg.Wait()
	log.Info("stopped")
	return nil
}

// heartbeat sends the counters every interval until done. It touches only atomics and
// the control channel, so a busy predictor cannot hold it up.
func heartbeat(c *ipc.Conn, every time.Duration, stats *counters, done <-chan struct{}, log hclog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			if err := c.Send(ipc.KindHeartbeat, ipc.Heartbeat{Counters: stats.snapshot()}); err != nil {
				log.Warn("heartbeat not sent", "error", err)
			}
		}
	}
}

// readControl turns master frames into stop requests. It returns when the channel
// fails, which is also a stop: a worker without a master must not linger.
func readControl(c *ipc.Conn, stopCh chan<- stopRequest, log hclog.Logger) {
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
		default:
			log.Debug("ignoring control frame", "kind", f.Kind)
		}
	}
}
