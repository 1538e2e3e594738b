package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/drum-go/drum/config"
	"github.com/drum-go/drum/worker"
	"github.com/drum-go/drum/worker/predictor"
)

// The Go-side overhead per request (issue 5, item 4) is measured in-process, through the
// worker's public API only (worker.Run, predictor.StartPython), with two probes:
//
//   - server time: a net.Listener wrapper timestamps, on the server side of the
//     connection, the first byte of each request read (the moment it is handed to the
//     HTTP server) and the return of the last write of its response;
//   - predictor time: a predictor.Predictor wrapper times each Call (Go → pipe → Python
//     bridge → pipe → Go).
//
// Requests are sent one at a time on one keep-alive connection, so the i-th server time
// and the i-th call pair up; overhead = server − call, per request, then its quantiles.
// This is everything the Go worker adds around the predictor call (HTTP parsing, routing,
// admission, request encoding, result decoding, JSON). The pipe round trip itself (frame
// write and read on both sides, the bridge's dispatch) sits inside the call; it is
// bounded by timing the predictor's built-in "ping" operation, which does no pandas
// work. The bridge's own elapsed_ms (reply meta) is not exposed by predictor.Result, so
// "call − elapsed_ms" cannot be reported without a change there (see the report).

type overheadResult struct {
	N                        int
	Client, Server, Call     quantiles // /predict/ 1 row: client round trip, server time, predictor call
	Overhead                 quantiles // server − call, per request
	PingServer, PingClient   quantiles // GET /ping/: the HTTP floor (no predictor)
	ChannelPing              quantiles // predictor.Call(Op "ping"): the pipe round-trip floor
	PredictRows, PayloadSize int
}

type quantiles struct{ P50, P90, P99 time.Duration }

func quantilesOf(d []time.Duration) quantiles {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return quantiles{quantile(s, 0.5), quantile(s, 0.9), quantile(s, 0.99)}
}

// recorder collects server times from every connection of a timingListener.
type recorder struct {
	mu      sync.Mutex
	open    bool
	start   time.Time
	lastEnd time.Time
	times   []time.Duration
}

func (r *recorder) read(n int) {
	if n <= 0 {
		return
	}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.open && !r.lastEnd.IsZero() {
		r.times = append(r.times, r.lastEnd.Sub(r.start))
		r.open = false
	}
	if !r.open {
		r.open, r.start, r.lastEnd = true, now, time.Time{}
	}
}

func (r *recorder) wrote() {
	now := time.Now()
	r.mu.Lock()
	if r.open {
		r.lastEnd = now
	}
	r.mu.Unlock()
}

// take returns the server times recorded so far (closing the current request) and
// starts afresh.
func (r *recorder) take() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.open && !r.lastEnd.IsZero() {
		r.times = append(r.times, r.lastEnd.Sub(r.start))
	}
	out := r.times
	r.times, r.open = nil, false
	return out
}

type timingListener struct {
	net.Listener
	rec *recorder
}

func (l timingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &timingConn{Conn: c, rec: l.rec}, nil
}

type timingConn struct {
	net.Conn
	rec *recorder
}

func (c *timingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.rec.read(n)
	return n, err
}

func (c *timingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.rec.wrote()
	return n, err
}

// timedPredictor times every Call of the predictor it wraps.
type timedPredictor struct {
	predictor.Predictor
	mu    sync.Mutex
	calls []time.Duration
}

func (p *timedPredictor) Call(ctx context.Context, req *predictor.Request) (*predictor.Result, error) {
	t0 := time.Now()
	res, err := p.Predictor.Call(ctx, req)
	d := time.Since(t0)
	p.mu.Lock()
	p.calls = append(p.calls, d)
	p.mu.Unlock()
	return res, err
}

func (p *timedPredictor) take() []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.calls
	p.calls = nil
	return out
}

// measureOverhead runs one worker in this process on the regression model (one
// predictor, gunicorn-like) and sends n sequential 1-row predictions, n pings and n
// predictor pings.
func measureOverhead(o options, n int) (*overheadResult, error) {
	noEnv := func(string) (string, bool) { return "", false }
	cfg, err := config.Build(config.Flags{Command: config.CommandServer, CodeDir: o.model,
		TargetType: "regression", Address: "127.0.0.1:0", Python: o.python, ControlSocket: "none"}, noEnv)
	if err != nil {
		return nil, err
	}
	body, err := os.ReadFile(filepath.Join(o.model, "requests", "X_1.csv"))
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rec := &recorder{}
	var tp *timedPredictor
	ready := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() {
		runErr <- worker.Run(ctx, worker.Options{
			Config:      *cfg,
			Listener:    timingListener{Listener: ln, rec: rec},
			WorkerID:    1,
			Concurrency: 1,
			NewPredictor: func(ctx context.Context) (predictor.Predictor, error) {
				p, err := predictor.StartPython(ctx, predictor.Config{Python: cfg.Python, CodeDir: cfg.CodeDir,
					TargetType: cfg.TargetType, LoadTimeout: 2 * time.Minute})
				if err != nil {
					return nil, err
				}
				tp = &timedPredictor{Predictor: p}
				return tp, nil
			},
			OnReady: func([]int) { close(ready) },
		})
	}()
	defer func() {
		cancel()
		select {
		case <-runErr:
		case <-time.After(40 * time.Second):
		}
	}()
	select {
	case <-ready:
	case err := <-runErr:
		return nil, fmt.Errorf("worker: %v", err)
	case <-time.After(3 * time.Minute):
		return nil, fmt.Errorf("worker not ready after 3 minutes")
	}

	base := "http://" + ln.Addr().String()
	c := newClient(1)
	defer c.CloseIdleConnections()
	pred := payload{path: "/predict/", contentType: "text/csv", body: body}
	ping := payload{path: "/ping/", method: http.MethodGet}
	rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer rcancel()

	seq := func(p payload, count int) ([]time.Duration, error) {
		out := make([]time.Duration, 0, count)
		for i := 0; i < count; i++ {
			t0 := time.Now()
			if st := do(rctx, c, base, p); st != http.StatusOK {
				return nil, fmt.Errorf("%s answered %d", p.path, st)
			}
			out = append(out, time.Since(t0))
		}
		return out, nil
	}
	if _, err := seq(pred, 50); err != nil { // warm-up
		return nil, err
	}
	rec.take()
	tp.take()
	client, err := seq(pred, n)
	if err != nil {
		return nil, err
	}
	server, calls := rec.take(), tp.take()
	if len(server) != n || len(calls) != n {
		return nil, fmt.Errorf("pairing failed: %d requests, %d server times, %d calls", n, len(server), len(calls))
	}
	over := make([]time.Duration, n)
	for i := range over {
		over[i] = server[i] - calls[i]
	}
	pingClient, err := seq(ping, n)
	if err != nil {
		return nil, err
	}
	pingServer := rec.take()
	chPing := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if _, err := tp.Predictor.Call(rctx, &predictor.Request{Op: "ping", Payload: []byte("x")}); err != nil {
			return nil, fmt.Errorf("predictor ping: %w", err)
		}
		chPing = append(chPing, time.Since(t0))
	}
	return &overheadResult{N: n, Client: quantilesOf(client), Server: quantilesOf(server),
		Call: quantilesOf(calls), Overhead: quantilesOf(over), PingServer: quantilesOf(pingServer),
		PingClient: quantilesOf(pingClient), ChannelPing: quantilesOf(chPing),
		PredictRows: 1, PayloadSize: len(body)}, nil
}
