package worker

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/drum-go/drum/ipc"
	"github.com/drum-go/drum/worker/predictor"
)

// Admission control (DESIGN.md §5): a worker runs at most `concurrency` predictions at
// once (one per predictor) and lets at most `queue` more wait, first come first served.
// A request beyond that is answered at once with 503 (or 429) and Retry-After, without
// touching a predictor.

// overloadError is a request turned away because the worker's queue was full.
type overloadError struct {
	running, queued int
}

func (e *overloadError) Error() string {
	predictions := "predictions"
	if e.running == 1 {
		predictions = "prediction"
	}
	return fmt.Sprintf("the server is overloaded: %d %s running and %d waiting in this worker; retry later",
		e.running, predictions, e.queued)
}

// isRejection reports whether err turned the request away before any predictor saw it.
func isRejection(err error) bool {
	var (
		oe *overloadError
		te *timeoutError
		ge *goneWhileQueued
		ne *noPredictorError
	)
	return errors.As(err, &oe) || errors.As(err, &te) && !te.inCall || errors.As(err, &ge) || errors.As(err, &ne)
}

// goneWhileQueued is a request whose context ended while it waited in the queue; it
// unwraps to the context's error.
type goneWhileQueued struct{ err error }

func (e *goneWhileQueued) Error() string { return "gave up while queued: " + e.err.Error() }
func (e *goneWhileQueued) Unwrap() error { return e.err }

// admissionGate is a FIFO counting semaphore with a bounded wait queue. A released slot goes
// straight to the longest waiter, so no request can overtake another.
type admissionGate struct {
	mu       sync.Mutex
	size     int
	free     int
	maxQueue int
	waiters  list.List // of *waiter, oldest first
	// Batching (0 rows: off): the batchable waiters and their rows, for waitingCalls.
	batchMaxRows, batchWaiters, batchRows int
	// shorter, made when the listener asks (queuedNow), is closed when the line next
	// shortens: the listener paces accepts on it (pacing.go).
	shorter chan struct{}
	// onQueue, when set, is called (under mu) when a line forms: the listener stops
	// waiting in accept(2) so that it paces (pacing.go).
	onQueue func()
}

type waiter struct {
	ready   chan struct{}
	granted bool       // set under gate.mu when a slot was handed over, or the item joined a batch
	item    *batchItem // a batchable prediction (batcher.go), or nil
	joined  bool       // set under gate.mu when a batch took item: no slot was handed over
}

func newAdmissionGate(size, maxQueue int) *admissionGate {
	return &admissionGate{size: size, free: size, maxQueue: maxQueue}
}

// full reports whether a request arriving now would be turned away.
func (g *admissionGate) full() *overloadError {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.fullLocked()
}

func (g *admissionGate) fullLocked() *overloadError {
	if g.free > 0 && g.waiters.Len() == 0 || g.waitingCalls() < g.maxQueue {
		return nil
	}
	return &overloadError{running: g.size - g.free, queued: g.waiters.Len()}
}

// waitingCalls is the queue's length in predictor calls: with batching, waiting batchable
// requests count as the batches their rows fill (they ride one call together), so the
// bound keeps the wait it stands for (queue × one call) rather than a request count.
func (g *admissionGate) waitingCalls() int {
	n := g.waiters.Len()
	if g.batchMaxRows > 0 && g.batchWaiters > 0 {
		n += (g.batchRows+g.batchMaxRows-1)/g.batchMaxRows - g.batchWaiters
	}
	return n
}

// leaveLocked takes el out of the line.
func (g *admissionGate) leaveLocked(el *list.Element) *waiter {
	w := g.waiters.Remove(el).(*waiter)
	if g.shorter != nil {
		close(g.shorter)
		g.shorter = nil
	}
	if w.item != nil {
		g.batchWaiters--
		g.batchRows -= w.item.rows
	}
	return w
}

// queuedNow reports whether predictions are waiting in line and, when they are, a
// channel closed as soon as the line shortens.
func (g *admissionGate) queuedNow() (bool, <-chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.waiters.Len() == 0 {
		return false, nil
	}
	if g.shorter == nil {
		g.shorter = make(chan struct{})
	}
	return true, g.shorter
}

// ticket is a place in the gate's line.
type ticket struct {
	w  *waiter
	el *list.Element
}

// enter takes a free slot (a nil ticket) or joins the line (the ticket to wait with); it
// fails with *overloadError when the queue is full. item, when set, lets a batch take
// the request out of the line (takeWaiting).
func (g *admissionGate) enter(item *batchItem) (*ticket, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.free > 0 && g.waiters.Len() == 0 {
		g.free--
		return nil, nil
	}
	if e := g.fullLocked(); e != nil {
		return nil, e
	}
	w := &waiter{ready: make(chan struct{}), item: item}
	if item != nil {
		g.batchWaiters++
		g.batchRows += item.rows
	}
	if g.waiters.Len() == 0 && g.onQueue != nil {
		g.onQueue()
	}
	return &ticket{w: w, el: g.waiters.PushBack(w)}, nil
}

// wait waits in line for a slot; joined reports that a batch took the request instead
// (it holds no slot). It fails with ctx's error.
func (g *admissionGate) wait(ctx context.Context, t *ticket) (joined bool, err error) {
	select {
	case <-t.w.ready:
		return t.w.joined, nil
	case <-ctx.Done():
		g.mu.Lock()
		granted, joined := t.w.granted, t.w.joined
		if !granted {
			g.leaveLocked(t.el)
		}
		g.mu.Unlock()
		switch {
		case joined:
			return true, nil // the batch answers it, whatever ctx says now
		case granted:
			g.release() // handed over just now: pass it on
		}
		return false, ctx.Err()
	}
}

// acquire takes a slot, waiting in line while none is free. waiting is called (before
// acquire blocks) when the request has to queue. It fails with *overloadError when the
// queue is full, or with ctx's error.
func (g *admissionGate) acquire(ctx context.Context, waiting func()) error {
	t, err := g.enter(nil)
	if err != nil || t == nil {
		return err
	}
	if waiting != nil {
		waiting()
	}
	_, err = g.wait(ctx, t)
	return err
}

// takeWaiting takes the queued batch items take accepts (oldest first) out of the line:
// they ride a batch that already holds a slot instead of waiting for one of their own.
func (g *admissionGate) takeWaiting(take func(*batchItem) bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for el := g.waiters.Front(); el != nil; {
		next := el.Next()
		w := el.Value.(*waiter)
		if w.item != nil && take(w.item) {
			g.leaveLocked(el)
			w.granted, w.joined = true, true
			close(w.ready)
		}
		el = next
	}
}

// release gives a slot back: to the oldest waiter, else to the pool.
func (g *admissionGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if front := g.waiters.Front(); front != nil {
		w := g.leaveLocked(front)
		w.granted = true
		close(w.ready)
		return
	}
	g.free++
}

// keeperPool is the worker's predictors: one keeper per predictor behind the admission
// gate. Its call is the only way requests reach a predictor.
type keeperPool struct {
	keepers  []*keeper
	gate     *admissionGate
	counters *counters
	batch    *batcher // nil unless DRUM_BATCHING is on

	mu   sync.Mutex
	idle []*keeper
}

func newKeeperPool(keepers []*keeper, queue int, c *counters) *keeperPool {
	return &keeperPool{
		keepers:  keepers,
		gate:     newAdmissionGate(len(keepers), queue),
		counters: c,
		idle:     append([]*keeper(nil), keepers...),
	}
}

// take returns an idle keeper: one with a live predictor if there is one, else one
// starting a predictor, else one whose restart failed. The gate guarantees there is an
// idle keeper for every admitted call.
func (p *keeperPool) take() *keeper {
	p.mu.Lock()
	defer p.mu.Unlock()
	pick, rank := len(p.idle)-1, 3
	for i, k := range p.idle {
		r := 2
		switch {
		case k.live():
			r = 0
		case k.unavailable() == nil:
			r = 1
		}
		if r < rank {
			pick, rank = i, r
		}
		if r == 0 {
			break
		}
	}
	k := p.idle[pick]
	p.idle = append(p.idle[:pick], p.idle[pick+1:]...)
	return k
}

func (p *keeperPool) put(k *keeper) {
	p.mu.Lock()
	p.idle = append(p.idle, k)
	p.mu.Unlock()
}

// live reports whether any predictor is installed and running.
func (p *keeperPool) live() bool {
	for _, k := range p.keepers {
		if k.live() {
			return true
		}
	}
	return false
}

// unavailable is why no predictor can take a call (*noPredictorError): none is live and
// starting one failed. Nil while one is live or being started.
func (p *keeperPool) unavailable() error {
	var err error
	for _, k := range p.keepers {
		if k.live() {
			return nil
		}
		e := k.unavailable()
		if e == nil {
			return nil
		}
		err = e
	}
	return err
}

// report fills in what the worker's heartbeat tells the master about its predictors:
// their pids, and why none can take a call and how many restarts failed in a row (the
// fewest over the predictors), if so.
func (p *keeperPool) report(hb *ipc.Heartbeat) {
	for _, k := range p.keepers {
		if pid := k.livePid(); pid != 0 {
			hb.PredictorPids = append(hb.PredictorPids, pid)
		}
	}
	err := p.unavailable()
	if err == nil {
		return
	}
	failures := -1
	for _, k := range p.keepers {
		if n := k.failedRestarts(); failures < 0 || n < failures {
			failures = n
		}
	}
	hb.NoPredictor, hb.FailedRestarts = err.Error(), failures
}

// modelInfo is what the predictors loaded (the same model in every one).
func (p *keeperPool) modelInfo() predictor.Info { return p.keepers[0].modelInfo() }

// overloaded reports whether a prediction arriving now would be turned away; the caller
// answers before reading the request body.
func (p *keeperPool) overloaded() error {
	if e := p.gate.full(); e != nil {
		p.counters.reject(ipc.RejectQueueFull)
		return e
	}
	return nil
}

// call admits req (waiting in line, or failing with *overloadError), runs it on a free
// predictor and counts it. timeout (0: none) is the request's deadline from the moment
// it starts waiting. With batching on, a batchable prediction may share a predictor call
// with others (batcher.go).
func (p *keeperPool) call(ctx context.Context, timeout time.Duration, req *predictor.Request) (*predictor.Result, error) {
	if p.batch != nil && p.batch.accepts(req, p.modelInfo()) {
		return p.callBatched(ctx, timeout, req)
	}
	c := p.counters
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	arrived := time.Now()
	queued := false
	_, waitSpan := startChildSpan(ctx, spanQueueWait) // tracing.go; nil when not traced
	err := p.gate.acquire(ctx, func() { queued = true; c.queued.Add(1) })
	if queued {
		c.queued.Add(-1)
	}
	endQueueSpan(waitSpan, queued, err)
	if err != nil {
		return nil, p.turnedAway(err, timeout)
	}
	defer p.gate.release()

	k := p.take()
	defer p.put(k)
	if err := k.unavailable(); err != nil {
		// No predictor, and starting one failed: answer now rather than wait for the
		// next attempt (keeper.go).
		c.reject(ipc.RejectNoPredictor)
		return nil, err
	}
	c.admitted.Add(1)
	c.queueTime.observe(time.Since(arrived))
	c.inFlight.Add(1)
	start := time.Now()
	res, err := k.call(ctx, timeout, req)
	p.finished(time.Since(start), err)
	if err != nil {
		return nil, err
	}
	return res, nil
}

// turnedAway counts a request the gate did not admit and says why.
func (p *keeperPool) turnedAway(err error, timeout time.Duration) error {
	c := p.counters
	var oe *overloadError
	switch {
	case errors.As(err, &oe):
		c.reject(ipc.RejectQueueFull)
	case errors.Is(err, context.DeadlineExceeded):
		c.reject(ipc.RejectQueueTimeout)
		c.timedOut.Add(1)
		err = &timeoutError{after: timeout}
	default:
		c.reject(ipc.RejectClientGone)
		err = &goneWhileQueued{err}
	}
	return err
}

// finished counts the end of an admitted request whose predictor call took took.
func (p *keeperPool) finished(took time.Duration, err error) {
	c := p.counters
	c.predictTime.observe(took)
	c.inFlight.Add(-1)
	if err == nil {
		c.completed.Add(1)
		return
	}
	c.failed.Add(1)
	var te *timeoutError
	if errors.As(err, &te) {
		c.timedOut.Add(1)
	}
}

// stop makes calls waiting for a predictor give up.
func (p *keeperPool) stop() {
	for _, k := range p.keepers {
		k.stop()
	}
}
