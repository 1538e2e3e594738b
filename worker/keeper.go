package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/drum-go/drum/worker/predictor"
	"github.com/hashicorp/go-hclog"
)

// keeper owns one predictor: it runs the calls the keeperPool hands it (one at a time),
// notices when the predictor dies or must be abandoned, and replaces it with a fresh one
// (with back-off) while requests wait for it.

const (
	restartBackoffMin = 100 * time.Millisecond
	restartBackoffMax = 10 * time.Second
	// A predictor that lived this long resets the back-off: it was not crash-looping.
	stableUptime = 30 * time.Second
)

var errStopping = errors.New("the worker is stopping")

// timeoutError is a prediction that hit the request deadline.
type timeoutError struct {
	after  time.Duration
	inCall bool // the predictor held the request (and is being replaced)
	pid    int
}

func (e *timeoutError) Error() string {
	if e.inCall {
		return fmt.Sprintf("predictor process %d did not answer within %s", e.pid, e.after)
	}
	return fmt.Sprintf("no predictor became free within %s", e.after)
}

// noPredictorError is a request turned away because the keeper has no predictor and
// its latest attempt to start one failed: waiting would not help (the next attempt is a
// back-off away and may fail the same way).
type noPredictorError struct{ err error }

func (e *noPredictorError) Error() string {
	return "no predictor is available in this worker: restarting the predictor failed: " +
		strings.TrimPrefix(e.err.Error(), startPrefix) + "; retry later"
}

func (e *noPredictorError) Unwrap() error { return e.err }

// startPrefix is how the predictor package's start errors begin (StartPython).
const startPrefix = "start predictor: "

// startError says that starting a predictor failed, once: the predictor package's
// errors already begin with startPrefix, other factories' may not.
func startError(err error) error {
	if strings.HasPrefix(err.Error(), startPrefix) {
		return err
	}
	return fmt.Errorf("%s%w", startPrefix, err)
}

type retirement struct {
	p      predictor.Predictor
	reason string
}

type keeper struct {
	log      hclog.Logger
	start    func(ctx context.Context) (predictor.Predictor, error)
	counters *counters

	retire chan retirement // calls report predictors that must be replaced
	done   chan struct{}   // closed when run has returned

	mu      sync.Mutex
	cur     predictor.Predictor // nil while none is installed
	info    predictor.Info      // of the latest predictor; the model does not change
	changed chan struct{}       // closed and replaced whenever cur changes
	stopped bool
	// While no predictor is installed: the latest failed attempt to start one, and how
	// many failed in a row (both reset when one starts).
	startErr error
	failures int
}

func newKeeper(log hclog.Logger, start func(context.Context) (predictor.Predictor, error), c *counters) *keeper {
	return &keeper{
		log:      log,
		start:    start,
		counters: c,
		retire:   make(chan retirement, 1),
		done:     make(chan struct{}),
		changed:  make(chan struct{}),
	}
}

// run supervises predictors, starting with first, until ctx is done; it closes the
// current predictor before returning.
func (k *keeper) run(ctx context.Context, first predictor.Predictor) {
	defer close(k.done)
	p := first
	backoff := restartBackoffMin
	for {
		k.install(p)
		born := time.Now()
		reason := k.watch(ctx, p)
		k.uninstall()
		if reason == "" { // stopping
			k.closePredictor(p)
			return
		}
		k.log.Error("predictor lost; starting a new one", "pid", p.Pid(), "reason", reason)
		k.closePredictor(p)
		if time.Since(born) >= stableUptime {
			backoff = restartBackoffMin
		}
		for {
			if !sleepCtx(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, restartBackoffMax)
			np, err := k.start(ctx)
			if err == nil {
				p = np
				k.counters.restarts.Add(1)
				k.log.Info("predictor restarted", "pid", p.Pid())
				break
			}
			if ctx.Err() != nil {
				return
			}
			n := k.startFailed(err)
			k.log.Error("predictor failed to start; requests get 503 until it does; retrying",
				"error", err, "failures_in_a_row", n, "retry_in", backoff)
		}
	}
}

// watch blocks until p must be replaced (returning why) or ctx is done ("").
func (k *keeper) watch(ctx context.Context, p predictor.Predictor) string {
	for {
		select {
		case <-ctx.Done():
			return ""
		case <-p.Done():
			return "process exited"
		case r := <-k.retire:
			if r.p == p {
				return r.reason
			}
			// A late report about an earlier predictor.
		}
	}
}

func (k *keeper) closePredictor(p predictor.Predictor) {
	if err := p.Close(); err != nil {
		k.log.Debug("closing predictor", "pid", p.Pid(), "error", err)
	}
}

func (k *keeper) install(p predictor.Predictor) {
	k.mu.Lock()
	k.cur, k.info = p, p.Info()
	k.startErr, k.failures = nil, 0
	close(k.changed)
	k.changed = make(chan struct{})
	k.mu.Unlock()
}

func (k *keeper) uninstall() {
	k.mu.Lock()
	k.cur = nil
	close(k.changed)
	k.changed = make(chan struct{})
	k.mu.Unlock()
}

// startFailed records a failed restart and wakes the calls waiting for it: they fail
// with *noPredictorError rather than wait for the next attempt. It returns how many
// restarts failed in a row.
func (k *keeper) startFailed(err error) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.startErr = err
	k.failures++
	close(k.changed)
	k.changed = make(chan struct{})
	return k.failures
}

// failedRestarts is how many restarts failed in a row since the last predictor started.
func (k *keeper) failedRestarts() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.failures
}

// unavailable is the *noPredictorError a call would fail with now (nil: a predictor is
// installed, or is being started and may still come).
func (k *keeper) unavailable() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cur == nil && k.startErr != nil && !k.stopped {
		return &noPredictorError{err: k.startErr}
	}
	return nil
}

// stop makes waiting calls give up; run stops with its context.
func (k *keeper) stop() {
	k.mu.Lock()
	if !k.stopped {
		k.stopped = true
		close(k.changed)
		k.changed = make(chan struct{})
	}
	k.mu.Unlock()
}

// live reports whether a predictor is installed and running.
func (k *keeper) live() bool { return k.livePid() != 0 }

// livePid is the running predictor's pid, or 0.
func (k *keeper) livePid() int {
	k.mu.Lock()
	p := k.cur
	k.mu.Unlock()
	if p == nil || isDone(p) {
		return 0
	}
	return p.Pid()
}

func (k *keeper) modelInfo() predictor.Info {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.info
}

// await returns a live predictor, waiting while one is being started. It fails with
// *noPredictorError once starting one has failed: the wait for a restart is bounded by
// one attempt (the model load timeout bounds it), never by the model being fixed.
func (k *keeper) await(ctx context.Context) (predictor.Predictor, error) {
	for {
		k.mu.Lock()
		p, changed, stopped, startErr := k.cur, k.changed, k.stopped, k.startErr
		k.mu.Unlock()
		if stopped {
			return nil, errStopping
		}
		if p != nil && !isDone(p) {
			return p, nil
		}
		if p == nil && startErr != nil {
			return nil, &noPredictorError{err: startErr}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// call runs one prediction on the predictor, waiting for one while it is being
// replaced; the keeperPool gives each keeper one call at a time. ctx carries the
// request's deadline, timeout says what it was (for messages). A predictor that dies or
// overruns the deadline during the call is replaced.
func (k *keeper) call(ctx context.Context, timeout time.Duration, req *predictor.Request) (*predictor.Result, error) {
	p, err := k.await(ctx)
	if err != nil {
		// The request's own deadline, not a failed start's (a model load that timed out
		// wraps DeadlineExceeded too, and is a *noPredictorError).
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			return nil, &timeoutError{after: timeout}
		}
		return nil, err
	}
	callCtx, callSpan := startChildSpan(ctx, spanPredictorCall) // tracing.go; nil when not traced
	req.TraceParent, req.TraceState = traceContext(callCtx)
	res, err := p.Call(ctx, req)
	endPredictorSpan(callSpan, p.Pid(), err)
	if err == nil {
		return res, nil
	}
	var (
		died *predictor.DiedError
		te   *predictor.TimeoutError
	)
	switch {
	case errors.As(err, &died):
		k.report(p, died.Reason)
	case errors.As(err, &te) || (timeout > 0 && errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil):
		// The predictor overran the deadline: it is hung on this request (the Python
		// predictor has already killed itself). Replace it.
		k.report(p, fmt.Sprintf("did not answer within %s", timeout))
		err = &timeoutError{after: timeout, inCall: true, pid: p.Pid()}
	case isDone(p):
		// The process exited under the call; say so rather than whatever broke.
		died = &predictor.DiedError{Pid: p.Pid(), Reason: "process exited"}
		k.report(p, died.Reason)
		err = died
	}
	return nil, err
}

// report takes p out of service at once, so no other call is sent to it, and asks run
// to replace it.
func (k *keeper) report(p predictor.Predictor, reason string) {
	k.mu.Lock()
	if k.cur == p {
		k.cur = nil
		close(k.changed)
		k.changed = make(chan struct{})
	}
	k.mu.Unlock()
	select {
	case k.retire <- retirement{p: p, reason: reason}:
	case <-k.done:
	}
}

func isDone(p predictor.Predictor) bool {
	select {
	case <-p.Done():
		return true
	default:
		return false
	}
}

// sleepCtx waits d or until ctx is done; it reports whether the full time passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
