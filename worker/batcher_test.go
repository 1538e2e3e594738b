package worker

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drum-go/drum/config"
	"github.com/drum-go/drum/ipc"
	"github.com/drum-go/drum/worker/predictor"
	"github.com/drum-go/drum/worker/table"
	"github.com/hashicorp/go-hclog"
)

// rowModel is a fake per-row model over tables with one int column: each row's
// prediction is its value times 10. A row holding 13 makes the call fail (a model
// error), 666 kills the predictor. Calls block while hold is set, until it is closed.
type rowModel struct {
	mu    sync.Mutex
	calls [][]int64     // each call's input rows (nil for a raw CSV call)
	hold  chan struct{} // the next call blocks until it is closed (one call only)
	ctxs  []context.Context
	// oneRow answers every call with a single row, whatever the input.
	oneRow bool
}

func (m *rowModel) fn(ctx context.Context, p *fakePredictor, req *predictor.Request) (*predictor.Result, error) {
	var xs []int64
	if req.Table != nil {
		xs = append([]int64{}, req.Table.Columns[0].Ints...)
	}
	m.mu.Lock()
	m.calls = append(m.calls, xs)
	m.ctxs = append(m.ctxs, ctx)
	hold := m.hold
	m.hold = nil
	m.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if req.Table == nil {
		return &predictor.Result{Columns: []string{"Predictions"}, Rows: 1, Values: []float64{-1}}, nil
	}
	for _, x := range xs {
		switch x {
		case 13:
			return nil, &predictor.ModelError{Status: 500, Message: "ERROR: unlucky row"}
		case 666:
			p.die()
			return nil, &predictor.DiedError{Pid: p.pid, Reason: "signal: killed"}
		}
	}
	if m.oneRow {
		return &predictor.Result{Columns: []string{"Predictions"}, Rows: 1, Values: []float64{0}}, nil
	}
	out := &predictor.Result{Columns: []string{"Predictions"}, Rows: len(xs)}
	for _, x := range xs {
		out.Values = append(out.Values, float64(x*10))
	}
	return out, nil
}

func (m *rowModel) callRows() [][]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([][]int64(nil), m.calls...)
}

func (m *rowModel) setHold(ch chan struct{}) {
	m.mu.Lock()
	m.hold = ch
	m.mu.Unlock()
}

// intTable is a table with one int64 column named col.
func intTable(col string, xs ...int64) *table.Table {
	return &table.Table{Rows: len(xs), Columns: []table.Column{{Name: col, Kind: table.Int64, Ints: xs}}}
}

func tableReq(col string, xs ...int64) *predictor.Request {
	return &predictor.Request{Op: "predict", Format: "csv", Payload: []byte("csv"), Table: intTable(col, xs...)}
}

// batchPool is a keeperPool of n fake predictors running m, with batching on.
func batchPool(t *testing.T, m *rowModel, n, queue, maxRows int, maxWait time.Duration) *keeperPool {
	t.Helper()
	f := &fakeFactory{fn: m.fn}
	c := &counters{}
	ctx, cancel := context.WithCancel(context.Background())
	keepers := make([]*keeper, n)
	for i := range keepers {
		p, _ := f.start(ctx)
		keepers[i] = newKeeper(hclog.NewNullLogger(), f.start, c)
		go keepers[i].run(ctx, p)
	}
	pool := newKeeperPool(keepers, queue, c)
	pool.enableBatching(maxRows, maxWait)
	waitFor(t, "the predictors", func() bool {
		for _, k := range keepers {
			if !k.live() {
				return false
			}
		}
		return true
	})
	t.Cleanup(func() {
		pool.stop()
		cancel()
		for _, k := range keepers {
			<-k.done
		}
	})
	return pool
}

type callOutcome struct {
	res *predictor.Result
	err error
}

func callAsync(p *keeperPool, ctx context.Context, timeout time.Duration, req *predictor.Request) <-chan callOutcome {
	ch := make(chan callOutcome, 1)
	go func() {
		res, err := p.call(ctx, timeout, req)
		ch <- callOutcome{res, err}
	}()
	return ch
}

// busyPool starts a call that holds the pool's only predictor until release is called,
// so later requests queue; release makes the next call block on next (unless nil).
func busyPool(t *testing.T, p *keeperPool, m *rowModel) (release func(next chan struct{}), first <-chan callOutcome) {
	t.Helper()
	hold := make(chan struct{})
	m.setHold(hold)
	before := len(m.callRows())
	first = callAsync(p, context.Background(), 0, tableReq("x", 0))
	waitFor(t, "the first call", func() bool { return len(m.callRows()) == before+1 })
	return func(next chan struct{}) { m.setHold(next); close(hold) }, first
}

// queueUp starts each request in order, waiting until it queues.
func queueUp(t *testing.T, p *keeperPool, reqs ...*predictor.Request) []<-chan callOutcome {
	t.Helper()
	var out []<-chan callOutcome
	for i, r := range reqs {
		out = append(out, callAsync(p, context.Background(), 0, r))
		waitFor(t, "a queued request", func() bool { return p.counters.queued.Load() == int64(i+1) })
	}
	return out
}

func wantValues(t *testing.T, what string, o callOutcome, want ...float64) {
	t.Helper()
	if o.err != nil {
		t.Fatalf("%s: %v", what, o.err)
	}
	if o.res.Rows != len(want) || !reflect.DeepEqual(o.res.Values, want) {
		t.Fatalf("%s: %d rows %v, want %v", what, o.res.Rows, o.res.Values, want)
	}
}

func TestBatchGroupsBySchemaInOrder(t *testing.T) {
	m := &rowModel{}
	p := batchPool(t, m, 1, 16, 256, 0)
	release, first := busyPool(t, p, m)
	raw := &predictor.Request{Op: "predict", Format: "csv", Payload: []byte("x\n5\n")}
	outs := queueUp(t, p, tableReq("x", 1), tableReq("y", 7), tableReq("x", 2, 3), raw, tableReq("x", 4))
	release(nil)
	wantValues(t, "first", <-first, 0)
	wantValues(t, "x=1", <-outs[0], 10)
	wantValues(t, "y=7", <-outs[1], 70)
	wantValues(t, "x=2,3", <-outs[2], 20, 30)
	wantValues(t, "raw", <-outs[3], -1)
	wantValues(t, "x=4", <-outs[4], 40)

	// The oldest waiter leads and takes the later x requests; y and the raw CSV keep
	// their places in line.
	want := [][]int64{{0}, {1, 2, 3, 4}, {7}, nil}
	if got := m.callRows(); !reflect.DeepEqual(got, want) {
		t.Fatalf("calls %v, want %v", got, want)
	}
	s := p.counters.snapshot()
	if s.BatchRequests.Count != 3 || s.BatchRequests.Sum != 5 || s.BatchRows.Sum != 6 || s.BatchFallbacks != 0 {
		t.Fatalf("batch counters: requests %+v rows %+v fallbacks %d", s.BatchRequests, s.BatchRows, s.BatchFallbacks)
	}
	if s.Admitted != 6 || s.Completed != 6 || s.Failed != 0 || s.InFlight != 0 || s.Queued != 0 || s.PredictTime.Count != 6 {
		t.Fatalf("request counters: %+v", s)
	}
}

func TestBatchMaxRows(t *testing.T) {
	m := &rowModel{}
	p := batchPool(t, m, 1, 16, 4, 0)
	release, first := busyPool(t, p, m)
	outs := queueUp(t, p, tableReq("x", 1), tableReq("x", 2, 3), tableReq("x", 4, 5), tableReq("x", 6),
		tableReq("x", 7, 8, 9, 10)) // a whole batch on its own: not batched
	release(nil)
	<-first
	for i, want := range [][]float64{{10}, {20, 30}, {40, 50}, {60}, {70, 80, 90, 100}} {
		wantValues(t, fmt.Sprint("request ", i), <-outs[i], want...)
	}
	want := [][]int64{{0}, {1, 2, 3, 6}, {4, 5}, {7, 8, 9, 10}}
	if got := m.callRows(); !reflect.DeepEqual(got, want) {
		t.Fatalf("calls %v, want %v", got, want)
	}
}

func TestBatchWaitsForArrivingRequests(t *testing.T) {
	m := &rowModel{}
	p := batchPool(t, m, 1, 16, 256, time.Hour)
	b := p.batch

	// One at a time: nothing on its way, the call goes at once.
	wantValues(t, "alone", <-callAsync(p, context.Background(), 0, tableReq("x", 1)), 10)
	if s := p.counters.snapshot(); s.BatchWait.Count != 1 || s.BatchWait.Sum != 0 {
		t.Fatalf("a lone request waited: %+v", s.BatchWait)
	}

	// Another prediction is being read: the leader holds its predictor for it.
	parsed := p.arrive()
	lead := callAsync(p, context.Background(), 0, tableReq("x", 2))
	waitFor(t, "an open batch", func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.open) == 1 })
	parsed()
	wantValues(t, "follower", <-callAsync(p, context.Background(), 0, tableReq("x", 3)), 30)
	wantValues(t, "leader", <-lead, 20)
	if got, want := m.callRows(), [][]int64{{1}, {2, 3}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("calls %v, want %v", got, want)
	}
}

func TestBatchWaitsForAsManyAsLastTime(t *testing.T) {
	m := &rowModel{}
	p := batchPool(t, m, 1, 16, 256, time.Hour)
	b := p.batch
	release, first := busyPool(t, p, m)
	outs := queueUp(t, p, tableReq("x", 1), tableReq("x", 2), tableReq("x", 3))
	release(nil)
	<-first
	for _, o := range outs {
		<-o
	}
	// The last batch had 3 requests: a lone one keeps the predictor until 2 more joined.
	lead := callAsync(p, context.Background(), 0, tableReq("x", 4))
	for i, x := range []int64{5, 6} {
		waitFor(t, "the open batch", func() bool {
			b.mu.Lock()
			defer b.mu.Unlock()
			return len(b.open) == 1 && len(b.open[0].items) == i+1
		})
		outs[i] = callAsync(p, context.Background(), 0, tableReq("x", x))
	}
	wantValues(t, "leader", <-lead, 40)
	wantValues(t, "second", <-outs[0], 50)
	wantValues(t, "third", <-outs[1], 60)
	if got, want := m.callRows(), [][]int64{{0}, {1, 2, 3}, {4, 5, 6}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("calls %v, want %v", got, want)
	}
	if s := p.counters.snapshot(); s.BatchWait.Count != 3 || s.BatchWait.Sum <= 0 {
		t.Fatalf("batch wait %+v", s.BatchWait)
	}
}

func TestBatchMaxWaitEnds(t *testing.T) {
	m := &rowModel{}
	p := batchPool(t, m, 1, 16, 256, 5*time.Millisecond)
	parsed := p.arrive() // announced, never arrives
	defer parsed()
	wantValues(t, "leader", <-callAsync(p, context.Background(), 0, tableReq("x", 2)), 20)
	if s := p.counters.snapshot(); s.BatchWait.Count != 1 || s.BatchWait.Sum <= 0 {
		t.Fatalf("batch wait %+v", s.BatchWait)
	}
}

func TestBatchFailureRetriesOneByOne(t *testing.T) {
	for _, tc := range []struct {
		name    string
		bad     int64
		oneRow  bool
		wantErr any
	}{
		{name: "model error", bad: 13, wantErr: new(*predictor.ModelError)},
		{name: "predictor died", bad: 666, wantErr: new(*predictor.DiedError)},
		{name: "answer cannot be split", oneRow: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &rowModel{}
			p := batchPool(t, m, 1, 16, 256, 0)
			release, first := busyPool(t, p, m)
			m.oneRow = tc.oneRow
			bad := tc.bad
			if bad == 0 {
				bad = 5
			}
			outs := queueUp(t, p, tableReq("x", 1), tableReq("x", bad), tableReq("x", 2))
			release(nil)
			<-first
			got := []callOutcome{<-outs[0], <-outs[1], <-outs[2]}
			if tc.oneRow {
				for i, o := range got {
					if o.err != nil || o.res.Rows != 1 {
						t.Fatalf("request %d: %+v", i, o)
					}
				}
			} else {
				wantValues(t, "x=1", got[0], 10)
				wantValues(t, "x=2", got[2], 20)
				if !errors.As(got[1].err, tc.wantErr) {
					t.Fatalf("bad request: %v", got[1].err)
				}
			}
			want := [][]int64{{0}, {1, bad, 2}, {1}, {bad}, {2}}
			if got := m.callRows(); !reflect.DeepEqual(got, want) {
				t.Fatalf("calls %v, want %v", got, want)
			}
			s := p.counters.snapshot()
			failed := int64(1)
			if tc.oneRow {
				failed = 0
			}
			if s.BatchFallbacks != 1 || s.Failed != failed || s.Completed != 4-failed || s.InFlight != 0 {
				t.Fatalf("counters: fallbacks %d failed %d completed %d in flight %d", s.BatchFallbacks, s.Failed, s.Completed, s.InFlight)
			}
		})
	}
}

func TestBatchTimeoutWhileQueued(t *testing.T) {
	m := &rowModel{}
	p := batchPool(t, m, 1, 16, 256, 0)
	release, first := busyPool(t, p, m)
	defer func() { release(nil); <-first }()
	o := <-callAsync(p, context.Background(), 20*time.Millisecond, tableReq("x", 1))
	var te *timeoutError
	if !errors.As(o.err, &te) || te.inCall {
		t.Fatalf("got %v, want a queue timeout", o.err)
	}
	s := p.counters.snapshot()
	if s.Rejected[ipc.RejectQueueTimeout] != 1 || s.TimedOut != 1 || s.Queued != 0 {
		t.Fatalf("counters %+v", s)
	}
}

func TestBatchTimeoutInCallRetriesTheOthers(t *testing.T) {
	m := &rowModel{}
	p := batchPool(t, m, 1, 16, 256, 0)
	release, first := busyPool(t, p, m)
	// The first queued request has a deadline; the batch carries it, overruns it and
	// the predictor is replaced; the other request is answered by a call of its own.
	early := callAsync(p, context.Background(), time.Second, tableReq("x", 1))
	waitFor(t, "queued", func() bool { return p.counters.queued.Load() == 1 })
	late := callAsync(p, context.Background(), 0, tableReq("x", 2))
	waitFor(t, "queued", func() bool { return p.counters.queued.Load() == 2 })
	hang := make(chan struct{})
	defer close(hang)
	release(hang)
	<-first
	o := <-early
	var te *timeoutError
	if !errors.As(o.err, &te) || !te.inCall {
		t.Fatalf("early: %v, want the in-call timeout", o.err)
	}
	wantValues(t, "late", <-late, 20)
	if got, want := m.callRows(), [][]int64{{0}, {1, 2}, {2}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("calls %v, want %v", got, want)
	}
	s := p.counters.snapshot()
	if s.TimedOut != 1 || s.Failed != 1 || s.Completed != 2 || s.BatchFallbacks != 1 || s.PredictorRestarts != 1 {
		t.Fatalf("counters %+v", s)
	}
}

func TestBatchCancelledRequests(t *testing.T) {
	m := &rowModel{}
	p := batchPool(t, m, 1, 16, 256, 0)
	release, first := busyPool(t, p, m)

	// Gone while queued: rejected as client_gone, never sent.
	ctx, cancel := context.WithCancel(context.Background())
	gone := callAsync(p, ctx, 0, tableReq("x", 9))
	waitFor(t, "queued", func() bool { return p.counters.queued.Load() == 1 })
	cancel()
	if o := <-gone; !errors.Is(o.err, context.Canceled) {
		t.Fatalf("cancelled while queued: %v", o.err)
	}

	// The leader's client goes while the batch runs: the call goes on for the others.
	hold := make(chan struct{})
	leadCtx, cancelLead := context.WithCancel(context.Background())
	lead := callAsync(p, leadCtx, 0, tableReq("x", 1))
	waitFor(t, "queued", func() bool { return p.counters.queued.Load() == 1 })
	other := callAsync(p, context.Background(), 0, tableReq("x", 2))
	waitFor(t, "queued", func() bool { return p.counters.queued.Load() == 2 })
	release(hold)
	<-first
	waitFor(t, "the batch call", func() bool { return len(m.callRows()) == 2 })
	cancelLead()
	m.mu.Lock()
	batchCtx := m.ctxs[1]
	m.mu.Unlock()
	if batchCtx.Err() != nil {
		t.Fatal("one request leaving cancelled the whole batch")
	}
	close(hold)
	wantValues(t, "other", <-other, 20)
	<-lead
	if got, want := m.callRows(), [][]int64{{0}, {1, 2}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("calls %v, want %v", got, want)
	}
	if s := p.counters.snapshot(); s.Rejected[ipc.RejectClientGone] != 1 {
		t.Fatalf("rejections %v", s.Rejected)
	}
}

func TestStatsShowBatching(t *testing.T) {
	for _, tc := range []struct {
		cfg  config.Config
		want string
	}{
		{regressionCfg, `"batching":false`},
		{config.Config{TargetType: config.TargetRegression, Serving: config.Serving{Batching: config.Batching{
			Batching: true, BatchMaxRows: 64, BatchMaxWait: 3 * time.Millisecond}}},
			`"batching":{"max_rows":64,"max_wait_ms":3.0}`},
		{config.Config{TargetType: config.TargetTextGeneration, Serving: config.Serving{Batching: config.Batching{Batching: true}}},
			`"batching":false`},
	} {
		s := newStatusSource(tc.cfg, 1, true, &counters{}, 1, 0)
		if got := string(s.statsJSON()); !strings.Contains(got, tc.want) {
			t.Errorf("/stats/ lacks %s:\n%s", tc.want, got)
		}
	}
}

func TestBatchQueueBoundCountsCalls(t *testing.T) {
	m := &rowModel{}
	p := batchPool(t, m, 1, 2, 4, 0)
	release, first := busyPool(t, p, m)
	// Five 1-row requests wait: two calls' worth with batches of 4 rows, the bound.
	outs := queueUp(t, p, tableReq("x", 1), tableReq("x", 2), tableReq("x", 3), tableReq("x", 4), tableReq("x", 5))
	var oe *overloadError
	if err := p.overloaded(); !errors.As(err, &oe) || oe.queued != 5 {
		t.Fatalf("overloaded with two calls waiting: %v", err)
	}
	if _, err := p.call(context.Background(), 0, tableReq("x", 6)); !errors.As(err, &oe) {
		t.Fatalf("a sixth request: %v, want an overload", err)
	}
	release(nil)
	<-first
	for i, o := range outs {
		wantValues(t, fmt.Sprint("request ", i), <-o, float64(10*(i+1)))
	}
	if got, want := m.callRows(), [][]int64{{0}, {1, 2, 3, 4}, {5}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("calls %v, want %v", got, want)
	}

	// Requests without a table still count one call each.
	release, first = busyPool(t, p, m)
	raw := &predictor.Request{Op: "predict", Format: "csv", Payload: []byte("x\n5\n")}
	outs = queueUp(t, p, raw, tableReq("x", 1))
	if err := p.overloaded(); !errors.As(err, &oe) {
		t.Fatalf("not overloaded with a raw request and a batch waiting: %v", err)
	}
	release(nil)
	<-first
	<-outs[0]
	<-outs[1]
	if s := p.counters.snapshot(); s.Rejected[ipc.RejectQueueFull] != 3 || s.Queued != 0 {
		t.Fatalf("rejections %v, queued %d", s.Rejected, s.Queued)
	}
}
