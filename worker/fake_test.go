package worker

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drum-go/drum/config"
	"github.com/drum-go/drum/ipc"
	"github.com/drum-go/drum/worker/predictor"
	"github.com/drum-go/drum/worker/table"
	"github.com/hashicorp/go-hclog"
)

// fakePredictor stands in for the Python predictor process.
type fakePredictor struct {
	pid  int
	info predictor.Info
	fn   func(ctx context.Context, p *fakePredictor, req *predictor.Request) (*predictor.Result, error)

	done     chan struct{}
	doneOnce sync.Once
	closed   atomic.Bool
	calls    atomic.Int64

	mu   sync.Mutex
	last *predictor.Request // a copy of the latest request
}

func (p *fakePredictor) Info() predictor.Info { return p.info }
func (p *fakePredictor) Pid() int             { return p.pid }
func (p *fakePredictor) Done() <-chan struct{} {
	return p.done
}

func (p *fakePredictor) Call(ctx context.Context, req *predictor.Request) (*predictor.Result, error) {
	p.calls.Add(1)
	cp := *req
	cp.Payload = append([]byte(nil), req.Payload...)
	p.mu.Lock()
	p.last = &cp
	p.mu.Unlock()
	select {
	case <-p.done:
		return nil, &predictor.DiedError{Pid: p.pid, Reason: "exit status 1"}
	default:
	}
	return p.fn(ctx, p, req)
}

// die makes the process "exit".
func (p *fakePredictor) die() { p.doneOnce.Do(func() { close(p.done) }) }

func (p *fakePredictor) Close() error {
	p.closed.Store(true)
	p.die()
	return nil
}

func (p *fakePredictor) lastRequest() *predictor.Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

// fakeFactory starts fakePredictors with increasing pids.
type fakeFactory struct {
	info predictor.Info
	fn   func(ctx context.Context, p *fakePredictor, req *predictor.Request) (*predictor.Result, error)
	fail atomic.Pointer[error] // when set, starting fails

	mu      sync.Mutex
	started []*fakePredictor
	onStart chan *fakePredictor // optional: receives every started predictor
}

func (f *fakeFactory) start(ctx context.Context) (predictor.Predictor, error) {
	if e := f.fail.Load(); e != nil {
		return nil, *e
	}
	f.mu.Lock()
	info := f.info
	if info.PandasVersion == "" {
		info.PandasVersion = table.PandasVersion // the CSV fast path applies
	}
	p := &fakePredictor{pid: 1000 + len(f.started), info: info, fn: f.fn, done: make(chan struct{})}
	f.started = append(f.started, p)
	ch := f.onStart
	f.mu.Unlock()
	if ch != nil {
		ch <- p
	}
	return p, nil
}

func (f *fakeFactory) predictors() []*fakePredictor {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*fakePredictor(nil), f.started...)
}

// constResult answers every call with one regression value per call.
func constResult(v float64) func(context.Context, *fakePredictor, *predictor.Request) (*predictor.Result, error) {
	return func(context.Context, *fakePredictor, *predictor.Request) (*predictor.Result, error) {
		return &predictor.Result{Columns: []string{"Predictions"}, Rows: 1, Values: []float64{v}}, nil
	}
}

// runningWorker is a Run in the background on a loopback listener.
type runningWorker struct {
	addr    string
	cancel  context.CancelFunc
	errc    chan error
	factory *fakeFactory
}

func startWorker(t *testing.T, cfg config.Config, f *fakeFactory, ctl *ipc.Conn, mod func(*Options)) *runningWorker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	opts := Options{
		Config:       cfg,
		Listener:     ln,
		Control:      ctl,
		WorkerID:     1,
		Logger:       hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: testWriter{t}}),
		NewPredictor: f.start,
		QueueSize:    16,
	}
	if mod != nil {
		mod(&opts)
	}
	w := &runningWorker{addr: ln.Addr().String(), cancel: cancel, errc: make(chan error, 1), factory: f}
	go func() { w.errc <- Run(ctx, opts) }()
	if f.fail.Load() == nil {
		waitFor(t, "the first predictor", func() bool { return len(f.predictors()) > 0 })
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-w.errc:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return w
}

// testWriter sends log output to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
