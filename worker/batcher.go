package worker

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/drum-go/drum/worker/predictor"
	"github.com/drum-go/drum/worker/table"
)

// Adaptive batching (DRUM_BATCHING): structured predictions the worker parsed into a
// table (the CSV fast path) and that share their columns ride one predictor call, whose
// prediction rows are split back per request, in order.
//
// Batches form where requests already wait: a request that gets a predictor slot (the
// leader) takes every compatible request waiting in the admission line with it, up to
// maxRows rows. If that is fewer requests than the previous batch had (under steady
// load its clients are about to send their next ones) or other predictions are still
// being read, it keeps the predictor up to maxWait for them; new arrivals join it
// directly. One client at a time never waits, so batching adds no latency there. A batch
// that fails, or whose answer is not one float row per input row, is retried request by
// request on the same predictor, so a bad request fails alone.

// batcher is the keeperPool's batching state.
type batcher struct {
	gate    *admissionGate
	maxRows int
	maxWait time.Duration
	// arriving counts predictions past admission whose body is still being read and
	// parsed: requests a holding batch may still get.
	arriving atomic.Int64

	mu   sync.Mutex
	open []*batch // batches holding a predictor slot while they wait for companions
	// lastSize is the number of requests of the latest batch: under steady load about
	// as many come back for the next one.
	lastSize int
}

// batchItem is one request in (or waiting for) a batch.
type batchItem struct {
	ctx     context.Context // the request's, with its deadline
	timeout time.Duration   // the request timeout that deadline came from (0: none)
	req     *predictor.Request
	rows    int
	arrived time.Time

	done chan struct{} // closed once res or err is set
	res  *predictor.Result
	err  error
	took time.Duration // predictor time of the call(s) that answered it
}

// batch is the requests one predictor call answers, the leader first.
type batch struct {
	items []*batchItem
	rows  int
	grew  chan struct{} // a request joined while the batch was open (capacity 1)
}

func newBatcher(gate *admissionGate, maxRows int, maxWait time.Duration) *batcher {
	return &batcher{gate: gate, maxRows: maxRows, maxWait: maxWait}
}

// enableBatching turns adaptive batching on for the pool's structured predictions.
func (p *keeperPool) enableBatching(maxRows int, maxWait time.Duration) {
	p.batch = newBatcher(p.gate, maxRows, maxWait)
	p.gate.mu.Lock()
	p.gate.batchMaxRows = maxRows
	p.gate.mu.Unlock()
}

// arrive counts a prediction whose body is being read; the returned func is called once
// it is parsed (or failed). Without batching both are no-ops.
func (p *keeperPool) arrive() (parsed func()) {
	b := p.batch
	if b == nil {
		return func() {}
	}
	b.arriving.Add(1)
	return func() { b.arriving.Add(-1) }
}

// accepts reports whether req may share a predictor call: a parsed, non-empty table
// smaller than a whole batch, read by drum rather than a read_input_data hook.
func (b *batcher) accepts(req *predictor.Request, info predictor.Info) bool {
	t := req.Table
	return req.Op == "predict" && t != nil && t.Rows > 0 && t.Rows < b.maxRows &&
		req.Y == nil && len(req.SparseColNames) == 0 && !info.HasHook("read_input_data")
}

// compatible reports whether two requests can be answered by one call: the same request
// options and the same columns.
func compatible(a, b *batchItem) bool {
	x, y := a.req, b.req
	return x.Op == y.Op && x.MimeType == y.MimeType && x.NoMimeType == y.NoMimeType &&
		x.Charset == y.Charset && x.Format == y.Format && x.Table.SameSchema(y.Table)
}

// fits adds it to bt when it is compatible and the rows allow; b.mu or the gate's lock
// is held.
func (b *batcher) fits(bt *batch, it *batchItem) bool {
	if bt.rows+it.rows > b.maxRows || !compatible(bt.items[0], it) {
		return false
	}
	bt.items = append(bt.items, it)
	bt.rows += it.rows
	return true
}

// callBatched is keeperPool.call for a batchable request: it joins an open batch, waits
// in line until a leader takes it into a batch, or becomes a leader itself.
func (p *keeperPool) callBatched(ctx context.Context, timeout time.Duration, req *predictor.Request) (*predictor.Result, error) {
	b, c := p.batch, p.counters
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	it := &batchItem{ctx: ctx, timeout: timeout, req: req, rows: req.Table.Rows, arrived: time.Now(), done: make(chan struct{})}

	b.mu.Lock()
	for _, bt := range b.open {
		if b.fits(bt, it) {
			b.mu.Unlock()
			select {
			case bt.grew <- struct{}{}:
			default:
			}
			return p.rideBatch(it)
		}
	}
	// Entering the line under b.mu: a leader that opens a batch after this looks at the
	// line (takeWaiting) and finds it there.
	t, err := p.gate.enter(it)
	b.mu.Unlock()
	if err != nil {
		return nil, p.turnedAway(err, timeout)
	}
	if t != nil {
		c.queued.Add(1)
		joined, err := p.gate.wait(ctx, t)
		c.queued.Add(-1)
		if err != nil {
			return nil, p.turnedAway(err, timeout)
		}
		if joined {
			return p.rideBatch(it)
		}
	}

	// The leader: it holds a predictor slot for the batch.
	p.admitted(it)
	bt := b.collect(it, c)
	k := p.take()
	p.runBatch(k, bt)
	p.put(k)
	p.gate.release()
	return p.answer(it)
}

// rideBatch is a request a batch took: counted as admitted, it waits for the answer
// (which the leader delivers within the batch's deadline, the earliest of its requests').
func (p *keeperPool) rideBatch(it *batchItem) (*predictor.Result, error) {
	p.admitted(it)
	return p.answer(it)
}

func (p *keeperPool) admitted(it *batchItem) {
	c := p.counters
	c.admitted.Add(1)
	c.queueTime.observe(time.Since(it.arrived))
	c.inFlight.Add(1)
}

// answer counts a finished item and returns its outcome.
func (p *keeperPool) answer(it *batchItem) (*predictor.Result, error) {
	<-it.done
	p.finished(it.took, it.err)
	return it.res, it.err
}

// collect forms the leader's batch: the compatible requests waiting in line and, while
// more are expected, those arriving within maxWait of the leader getting its predictor.
func (b *batcher) collect(lead *batchItem, c *counters) *batch {
	bt := &batch{items: []*batchItem{lead}, rows: lead.rows, grew: make(chan struct{}, 1)}
	take := func(it *batchItem) bool { return b.fits(bt, it) }
	start := time.Now()
	b.mu.Lock()
	b.gate.takeWaiting(take)
	// enough: nothing more to wait for — the batch is full, or no prediction is being
	// read and it is as large as the previous one (whose clients, on keep-alive
	// connections, are the ones likely to come back now).
	enough := func() bool {
		return bt.rows >= b.maxRows || b.arriving.Load() == 0 && len(bt.items) >= b.lastSize
	}
	if b.maxWait <= 0 || enough() {
		b.lastSize = len(bt.items)
		b.mu.Unlock()
		c.batchWait.observe(0)
		return bt
	}
	b.open = append(b.open, bt)
	b.mu.Unlock()

	timer := time.NewTimer(b.maxWait)
	defer timer.Stop()
wait:
	for {
		select {
		case <-timer.C:
			break wait
		case <-lead.ctx.Done():
			break wait
		case <-bt.grew:
			b.mu.Lock()
			done := enough()
			b.mu.Unlock()
			if done {
				break wait
			}
		}
	}
	b.mu.Lock()
	for i, o := range b.open {
		if o == bt {
			b.open = append(b.open[:i], b.open[i+1:]...)
			break
		}
	}
	b.gate.takeWaiting(take) // requests that queued while the batch was open
	b.lastSize = len(bt.items)
	b.mu.Unlock()
	c.batchWait.observe(time.Since(start))
	return bt
}

// runBatch answers every item of bt with predictor k: one call on the concatenated table,
// else (a failure, or an answer that cannot be split) one call per item.
func (p *keeperPool) runBatch(k *keeper, bt *batch) {
	c := p.counters
	items := make([]*batchItem, 0, len(bt.items))
	rows := 0
	for _, it := range bt.items {
		if err := ended(it.ctx); err != nil {
			p.settle(it, nil, gaveUp(err, nil, it.timeout), 0) // gave up before the call
			continue
		}
		items = append(items, it)
		rows += it.rows
	}
	if len(items) == 0 {
		return
	}
	c.batchRequests.observe(len(items))
	c.batchRows.observe(rows)
	if len(items) == 1 {
		p.callAlone(k, items[0], 0)
		return
	}

	tables := make([]*table.Table, len(items))
	for i, it := range items {
		tables[i] = it.req.Table
	}
	req := *items[0].req
	req.Table = table.Concat(tables)
	req.Payload = nil // binary_data of a batch: the rows came from several bodies
	ctx, timeout, stop := batchContext(items)
	start := time.Now()
	res, err := k.call(ctx, timeout, &req)
	took := time.Since(start)
	stop()
	if err == nil {
		if parts, ok := splitResult(res, items); ok {
			for i, it := range items {
				p.settle(it, parts[i], nil, took)
			}
			return
		}
	}
	c.batchFallbacks.Add(1)
	for _, it := range items {
		if cerr := ended(it.ctx); cerr != nil {
			p.settle(it, nil, gaveUp(cerr, err, it.timeout), took)
			continue
		}
		p.callAlone(k, it, took)
	}
}

// callAlone answers it with a call of its own; spent is predictor time already used.
func (p *keeperPool) callAlone(k *keeper, it *batchItem, spent time.Duration) {
	start := time.Now()
	res, err := k.call(it.ctx, it.timeout, it.req)
	p.settle(it, res, err, spent+time.Since(start))
}

func (p *keeperPool) settle(it *batchItem, res *predictor.Result, err error, took time.Duration) {
	it.res, it.err, it.took = res, err, took
	close(it.done)
}

// ended is ctx's error, or DeadlineExceeded once its deadline has passed even if its
// timer has not fired yet (the batch's, set to the same instant, may fire first).
func ended(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// gaveUp is the error of a request whose context ended before its own call: the batch's
// timeout when the batch overran its deadline, else its own.
func gaveUp(ctxErr, batchErr error, timeout time.Duration) error {
	var te *timeoutError
	if errors.As(batchErr, &te) {
		return te
	}
	if errors.Is(ctxErr, context.DeadlineExceeded) {
		return &timeoutError{after: timeout}
	}
	return ctxErr
}

// batchContext is the context of a batch's call: it ends at the earliest deadline of its
// requests (none may wait past its own; timeout is that request's) or once every request
// is gone.
func batchContext(items []*batchItem) (_ context.Context, timeout time.Duration, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var earliest time.Time
	for _, it := range items {
		if d, ok := it.ctx.Deadline(); ok && (earliest.IsZero() || d.Before(earliest)) {
			earliest, timeout = d, it.timeout
		}
	}
	cancelDeadline := func() {}
	if !earliest.IsZero() {
		ctx, cancelDeadline = context.WithDeadline(ctx, earliest)
	}
	var left atomic.Int64
	left.Store(int64(len(items)))
	stops := make([]func() bool, len(items))
	for i, it := range items {
		stops[i] = context.AfterFunc(it.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, timeout, func() {
		for _, s := range stops {
			s()
		}
		cancelDeadline()
		cancel()
	}
}

// splitResult cuts a batch's answer into each item's rows; ok is false unless the answer
// is a float table with exactly one row per input row and nothing else.
func splitResult(res *predictor.Result, items []*batchItem) ([]*predictor.Result, bool) {
	total := 0
	for _, it := range items {
		total += it.rows
	}
	cols := len(res.Columns)
	if res.JSON != nil || res.Body != nil || res.ExtraModelOutput != nil || res.Stream ||
		res.Rows != total || cols == 0 || len(res.Values) != total*cols {
		return nil, false
	}
	parts := make([]*predictor.Result, len(items))
	off := 0
	for i, it := range items {
		end := off + it.rows*cols
		parts[i] = &predictor.Result{Columns: res.Columns, Rows: it.rows, Values: res.Values[off:end:end]}
		off = end
	}
	return parts, true
}
