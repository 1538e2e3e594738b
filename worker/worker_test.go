package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drum-go/drum/config"
	"github.com/drum-go/drum/ipc"
	"github.com/drum-go/drum/worker/predictor"
)

var regressionCfg = config.Config{TargetType: config.TargetRegression}

// fakeMaster is the master's end of a control channel.
type fakeMaster struct {
	conn   *ipc.Conn
	frames chan ipc.Frame
}

func newFakeMaster(t *testing.T) (*fakeMaster, *ipc.Conn) {
	a, b := net.Pipe()
	m := &fakeMaster{conn: ipc.NewConn(a), frames: make(chan ipc.Frame, 1024)}
	go func() {
		defer close(m.frames)
		for {
			f, err := m.conn.Read()
			if err != nil {
				return
			}
			f.Meta = append([]byte(nil), f.Meta...)
			f.Data = nil
			m.frames <- f
		}
	}()
	w := ipc.NewConn(b)
	t.Cleanup(func() { m.conn.Close(); w.Close() })
	return m, w
}

// next returns the next frame of kind, skipping others.
func (m *fakeMaster) next(t *testing.T, kind ipc.Kind) ipc.Frame {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case f, ok := <-m.frames:
			if !ok {
				t.Fatalf("control channel closed while waiting for kind %d", kind)
			}
			if f.Kind == kind {
				return f
			}
		case <-timeout:
			t.Fatalf("no frame of kind %d", kind)
		}
	}
}

func post(t *testing.T, addr, path, body string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Post("http://"+addr+path, "text/csv", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func get(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// gate blocks predictor calls until released and reports each call's arrival.
type gate struct {
	arrived chan *fakePredictor
	release chan struct{}
}

func newGate() *gate {
	return &gate{arrived: make(chan *fakePredictor, 16), release: make(chan struct{})}
}

func (g *gate) fn(ctx context.Context, p *fakePredictor, req *predictor.Request) (*predictor.Result, error) {
	g.arrived <- p
	select {
	case <-g.release:
		return &predictor.Result{Columns: []string{"Predictions"}, Rows: 1, Values: []float64{float64(p.pid)}}, nil
	case <-p.done:
		return nil, &predictor.DiedError{Pid: p.pid, Reason: "signal: killed"}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (g *gate) waitArrival(t *testing.T) *fakePredictor {
	t.Helper()
	select {
	case p := <-g.arrived:
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("no call reached the predictor")
		return nil
	}
}

type answer struct {
	status int
	body   string
}

func postAsync(t *testing.T, addr, path, body string) <-chan answer {
	ch := make(chan answer, 1)
	go func() {
		resp, err := http.Post("http://"+addr+path, "text/csv", strings.NewReader(body))
		if err != nil {
			ch <- answer{status: -1, body: err.Error()}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		ch <- answer{resp.StatusCode, string(b)}
	}()
	return ch
}

func await(t *testing.T, ch <-chan answer) answer {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("no answer")
		return answer{}
	}
}

func TestPredictorDeathMidRequest(t *testing.T) {
	g := newGate()
	f := &fakeFactory{fn: g.fn}
	w := startWorker(t, regressionCfg, f, nil, nil)

	pending := postAsync(t, w.addr, "/predict/", "a\n1\n")
	first := g.waitArrival(t)
	first.die() // the process exits while it holds the request

	a := await(t, pending)
	want := `{"message":"ERROR: predictor process 1000 died (signal: killed) while handling this request; it is being restarted"}` + "\n"
	if a.status != 500 || a.body != want {
		t.Fatalf("got %d %q, want 500 %q", a.status, a.body, want)
	}

	// The next request waits for the replacement and succeeds on it.
	close(g.release)
	status, body, _ := post(t, w.addr, "/predict/", "a\n1\n")
	if status != 200 || body != `{"predictions":[1001.0]}` {
		t.Fatalf("after the restart: %d %s", status, body)
	}
	if n := len(f.predictors()); n != 2 {
		t.Errorf("%d predictors started, want 2", n)
	}
	if !first.closed.Load() {
		t.Error("the dead predictor was not closed")
	}
}

func TestPredictorDeathWhileIdle(t *testing.T) {
	f := &fakeFactory{fn: constResult(7)}
	w := startWorker(t, regressionCfg, f, nil, nil)
	f.predictors()[0].die()
	waitFor(t, "a replacement predictor", func() bool { return len(f.predictors()) == 2 })
	if status, body, _ := post(t, w.addr, "/predict/", "a\n1\n"); status != 200 || body != `{"predictions":[7.0]}` {
		t.Fatalf("%d %s", status, body)
	}
}

func TestHealthWhileNoPredictor(t *testing.T) {
	f := &fakeFactory{fn: constResult(1)}
	w := startWorker(t, regressionCfg, f, nil, nil)
	if status, body := get(t, w.addr, "/health/"); status != 200 || body != `{"message":"OK"}`+"\n" {
		t.Fatalf("health: %d %s", status, body)
	}
	boom := errors.New("model failed to load")
	f.fail.Store(&boom)
	f.predictors()[0].die()

	waitFor(t, "health to turn 503", func() bool { s, _ := get(t, w.addr, "/health/"); return s == 503 })
	_, body := get(t, w.addr, "/health/")
	if !strings.HasPrefix(body, `{"message":"ERROR: `) {
		t.Errorf("503 body %q", body)
	}
	// Liveness stays up: the worker itself is fine.
	if status, _ := get(t, w.addr, "/ping/"); status != 200 {
		t.Errorf("ping: %d", status)
	}
	// Once the restart has failed, health says why.
	waitFor(t, "health to name the failure", func() bool {
		_, body := get(t, w.addr, "/health/")
		return strings.Contains(body, "restarting the predictor failed: model failed to load")
	})
	f.fail.Store(nil)
	waitForLong(t, "a prediction after recovery", func() bool {
		status, _, _ := post(t, w.addr, "/predict/", "a\n1\n")
		return status == 200
	})
	if status, _ := get(t, w.addr, "/health/"); status != 200 {
		t.Errorf("health after recovery: %d", status)
	}
}

// waitForLong is waitFor with room for the keeper's restart back-off (up to 10s).
func waitForLong(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A predictor that dies while its restart fails: the request it held, the requests
// queued behind it and new ones all get a prompt 503 naming the failure, instead of
// waiting for a predictor that is not coming; once the model loads again, predictions
// succeed.
func TestRestartFailureAnswers503(t *testing.T) {
	g := newGate()
	f := &fakeFactory{fn: g.fn}
	w := startWorker(t, regressionCfg, f, nil, nil)

	held := postAsync(t, w.addr, "/predict/", "a\n1\n")
	first := g.waitArrival(t)
	var queued []<-chan answer
	for i := 1; i <= 3; i++ {
		queued = append(queued, postAsync(t, w.addr, "/predict/", "a\n1\n"))
		waitFor(t, "a queued request", func() bool { return counterOf(t, w.addr).Queued == int64(i) })
	}

	boom := errors.New("model failed to load: RuntimeError: broken")
	f.fail.Store(&boom)
	died := time.Now()
	first.die()

	if a := await(t, held); a.status != 500 || !strings.Contains(a.body, "predictor process 1000 died") {
		t.Fatalf("held request: %d %s", a.status, a.body)
	}
	want := `{"message":"ERROR: no predictor is available in this worker: restarting the predictor failed: ` +
		`model failed to load: RuntimeError: broken; retry later"}` + "\n"
	for i, ch := range queued {
		if a := await(t, ch); a.status != 503 || a.body != want {
			t.Fatalf("queued request %d: got %d %q, want 503 %q", i+1, a.status, a.body, want)
		}
	}
	if took := time.Since(died); took > 8*time.Second {
		t.Errorf("queued requests answered %s after the predictor died", took)
	}
	// New requests are answered at once, with Retry-After.
	for i := 0; i < 3; i++ {
		start := time.Now()
		status, body, hdr := post(t, w.addr, "/predict/", "a\n1\n")
		if status != 503 || body != want || hdr.Get("Retry-After") == "" {
			t.Fatalf("new request: %d %q %v", status, body, hdr)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("new request answered after %s", took)
		}
	}
	c := counterOf(t, w.addr)
	if c.Rejected[ipc.RejectNoPredictor] < 3 || c.Queued != 0 || c.InFlight != 0 {
		t.Errorf("counters: rejected %v, queued %d, in flight %d", c.Rejected, c.Queued, c.InFlight)
	}
	if n := c.Admitted + c.RejectedTotal(); n != 7 {
		t.Errorf("admitted %d + rejected %v = %d, want the 7 requests", c.Admitted, c.Rejected, n)
	}

	// The model loads again: predictions succeed.
	f.fail.Store(nil)
	close(g.release)
	waitForLong(t, "a prediction after recovery", func() bool {
		status, _, _ := post(t, w.addr, "/predict/", "a\n1\n")
		return status == 200
	})
}

// TestRestartLoadTimeoutIsNoPredictor: a restart that failed because the model load
// timed out (an error wrapping context.DeadlineExceeded) is still "no predictor" (503),
// not the request's own timeout (504 "after 0s").
func TestRestartLoadTimeoutIsNoPredictor(t *testing.T) {
	g := newGate()
	f := &fakeFactory{fn: g.fn}
	w := startWorker(t, regressionCfg, f, nil, nil)
	held := postAsync(t, w.addr, "/predict/", "a\n1\n")
	first := g.waitArrival(t)
	slow := fmt.Errorf("model did not load within 10s (DRUM_MODEL_LOAD_TIMEOUT): %w", context.DeadlineExceeded)
	f.fail.Store(&slow)
	first.die()
	await(t, held)
	waitForLong(t, "the failed restart to be answered", func() bool {
		status, body, _ := post(t, w.addr, "/predict/", "a\n1\n")
		if status == 504 {
			t.Fatalf("a failed load answered as the request's timeout: %s", body)
		}
		return status == 503 && strings.Contains(body, "no predictor is available in this worker") &&
			strings.Contains(body, "did not load within 10s")
	})
	f.fail.Store(nil)
	close(g.release)
}

func TestGracefulStopFinishesInFlight(t *testing.T) {
	g := newGate()
	f := &fakeFactory{fn: g.fn}
	w := startWorker(t, regressionCfg, f, nil, func(o *Options) { o.GracefulTimeout = 10 * time.Second })

	pending := postAsync(t, w.addr, "/predict/", "a\n1\n")
	g.waitArrival(t)
	w.cancel()

	select {
	case err := <-w.errc:
		t.Fatalf("Run returned (%v) with a request in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(g.release)
	if a := await(t, pending); a.status != 200 || a.body != `{"predictions":[1000.0]}` {
		t.Fatalf("in-flight request: %d %s", a.status, a.body)
	}
	select {
	case err := <-w.errc:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		w.errc <- nil // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	if !f.predictors()[0].closed.Load() {
		t.Error("the predictor was not closed")
	}
	if _, err := net.DialTimeout("tcp", w.addr, time.Second); err == nil {
		t.Error("the listener still accepts")
	}
}

func TestControlChannel(t *testing.T) {
	m, ctl := newFakeMaster(t)
	g := newGate()
	f := &fakeFactory{fn: g.fn, info: predictor.Info{Predictor: "scikit-learn"}}
	w := startWorker(t, regressionCfg, f, ctl, func(o *Options) { o.HeartbeatInterval = 10 * time.Millisecond })

	var ready ipc.Ready
	if err := ipc.Decode(m.next(t, ipc.KindReady), &ready); err != nil {
		t.Fatal(err)
	}
	if ready.PredictorPid != 1000 || ready.Predictor != "scikit-learn" || ready.Pid == 0 {
		t.Errorf("ready %+v", ready)
	}

	// Heartbeats keep coming while the predictor is stuck on a request.
	pending := postAsync(t, w.addr, "/predict/", "a\n1\n")
	g.waitArrival(t)
	inFlight := func() int64 {
		var hb ipc.Heartbeat
		if err := ipc.Decode(m.next(t, ipc.KindHeartbeat), &hb); err != nil {
			t.Fatal(err)
		}
		return hb.Counters.InFlight
	}
	waitFor(t, "a heartbeat with the call in flight", func() bool { return inFlight() == 1 })
	for i := 0; i < 3; i++ {
		if n := inFlight(); n != 1 {
			t.Fatalf("heartbeat during the call: in_flight=%d", n)
		}
	}
	close(g.release)
	await(t, pending)
	waitFor(t, "completed=1 in a heartbeat", func() bool {
		var hb ipc.Heartbeat
		_ = ipc.Decode(m.next(t, ipc.KindHeartbeat), &hb)
		return hb.Counters.Completed == 1 && hb.Counters.InFlight == 0
	})

	// KindStop stops the worker.
	if err := m.conn.Send(ipc.KindStop, ipc.Stop{Graceful: true, TimeoutS: 5}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-w.errc:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		w.errc <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop on KindStop")
	}
}

func TestControlEOFStops(t *testing.T) {
	m, ctl := newFakeMaster(t)
	f := &fakeFactory{fn: constResult(1)}
	w := startWorker(t, regressionCfg, f, ctl, nil)
	m.next(t, ipc.KindReady)
	m.conn.Close() // the master is gone
	select {
	case err := <-w.errc:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		w.errc <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop when the control channel closed")
	}
	if !f.predictors()[0].closed.Load() {
		t.Error("the predictor was not closed")
	}
}

func TestStartFailureReported(t *testing.T) {
	m, ctl := newFakeMaster(t)
	boom := errors.New("custom.py: SyntaxError")
	f := &fakeFactory{}
	f.fail.Store(&boom)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	err = Run(context.Background(), Options{Config: regressionCfg, Listener: ln, Control: ctl, NewPredictor: f.start})
	if err == nil || !errors.Is(err, boom) {
		t.Fatalf("Run: %v", err)
	}
	var failed ipc.Failed
	if err := ipc.Decode(m.next(t, ipc.KindFailed), &failed); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(failed.Error, "custom.py: SyntaxError") {
		t.Errorf("failed %+v", failed)
	}
}

func TestRequestTimeoutReplacesPredictor(t *testing.T) {
	g := newGate()
	f := &fakeFactory{fn: g.fn}
	w := startWorker(t, regressionCfg, f, nil, func(o *Options) { o.RequestTimeout = 100 * time.Millisecond })
	status, body, _ := post(t, w.addr, "/predict/", "a\n1\n")
	want := `{"message":"ERROR: the prediction did not finish within 100ms; predictor process 1000 is being restarted"}` + "\n"
	if status != 504 || body != want {
		t.Fatalf("got %d %q, want 504 %q", status, body, want)
	}
	waitFor(t, "a replacement predictor", func() bool { return len(f.predictors()) == 2 })
	if !f.predictors()[0].closed.Load() {
		t.Error("the hung predictor was not closed")
	}
}

func TestOnePredictionAtATime(t *testing.T) {
	var cur, peak atomic.Int64
	f := &fakeFactory{fn: func(ctx context.Context, p *fakePredictor, req *predictor.Request) (*predictor.Result, error) {
		n := cur.Add(1)
		for {
			old := peak.Load()
			if n <= old || peak.CompareAndSwap(old, n) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond)
		cur.Add(-1)
		return &predictor.Result{Columns: []string{"Predictions"}, Rows: 1, Values: []float64{1}}, nil
	}}
	w := startWorker(t, regressionCfg, f, nil, nil)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if status, body, _ := post(t, w.addr, "/predict/", "a\n1\n"); status != 200 {
				t.Errorf("%d %s", status, body)
			}
		}()
	}
	wg.Wait()
	if peak.Load() != 1 {
		t.Errorf("%d predictions ran at once", peak.Load())
	}
}

func TestModelErrors(t *testing.T) {
	for _, tc := range []struct {
		err        error
		status     int
		body       string
		userHeader bool
	}{
		{&predictor.ModelError{Status: 500, Message: "ERROR: Your prediction probabilities have negative values"},
			500, `{"message":"ERROR: Your prediction probabilities have negative values"}` + "\n", false},
		{&predictor.ModelError{Status: 418, Message: "teapot", UserError: true}, 418, `{"message":"teapot"}` + "\n", true},
		{errors.New("protocol: bad reply"), 500, `{"message":"ERROR: protocol: bad reply"}` + "\n", false},
	} {
		f := &fakeFactory{fn: func(context.Context, *fakePredictor, *predictor.Request) (*predictor.Result, error) {
			return nil, tc.err
		}}
		w := startWorker(t, regressionCfg, f, nil, nil)
		status, body, hdr := post(t, w.addr, "/predict/", "a\n1\n")
		if status != tc.status || body != tc.body {
			t.Errorf("%v: got %d %q", tc.err, status, body)
		}
		if got := hdr.Get("X-Drum-User-Http-Error") == "true"; got != tc.userHeader {
			t.Errorf("%v: X-Drum-User-Http-Error %q", tc.err, hdr.Get("X-Drum-User-Http-Error"))
		}
	}
}

func TestOtherRoutes(t *testing.T) {
	f := &fakeFactory{fn: constResult(1), info: predictor.Info{Hooks: []string{"chat"}}}
	for _, tc := range []struct {
		target     string
		method     string
		path, ct   string
		body       string
		status     int
		wantBody   string
		bodyPrefix bool
	}{
		{config.TargetTransform, "POST", "/predict/", "text/csv", "a\n1\n", 422,
			`{"message":"ERROR: This model has target type 'transform', use the /transform/ endpoint."}` + "\n", false},
		{config.TargetUnstructured, "POST", "/predict/", "text/csv", "a\n1\n", 422,
			`{"message":"ERROR: This model has target type 'unstructured', use the /predictUnstructured/ or /predictionsUnstructured/ endpoint."}` + "\n", false},
		{config.TargetUnstructured, "POST", "/transform/", "text/csv", "a\n1\n", 422,
			`{"message":"ERROR: This model has target type TargetType.UNSTRUCTURED, use the /predictUnstructured/ endpoint."}` + "\n", false},
		{config.TargetGeoPoint, "POST", "/predictUnstructured/", "text/csv", "a\n1\n", 422,
			`{"message":"ERROR: This model has target type TargetType.GEO_POINT, use either /predict/ or /predictions/ endpoint."}` + "\n", false},
		{config.TargetTextGeneration, "POST", "/predictUnstructured/", "text/plain", "hi", 500,
			`{"message":"ERROR: 'NoneType' object is not callable"}` + "\n", false},
		{config.TargetRegression, "POST", "/chat/completions", "application/json", `[1, 2]`, 500,
			`{"message":"ERROR: 'list' object has no attribute 'get'"}` + "\n", false},
		{config.TargetRegression, "POST", "/v1/chat/completions", "application/json", `{"model": "x", "messages": [`, 400,
			`{"error":"The browser (or proxy) sent a request that this server could not understand."}` + "\n", false},
		{config.TargetRegression, "POST", "/v1/chat/completions", "text/plain", `{}`, 400,
			`{"error":"The browser (or proxy) sent a request that this server could not understand."}` + "\n", false},
		{config.TargetUnstructured, "POST", "/chat/completions", "application/json", `{"messages":[]}`, 404,
			`{"message":"ERROR: This model's chat interface was called, but chat is not supported."}` + "\n", false},
		{config.TargetRegression, "GET", "/capabilities/", "", "", 200,
			`{"supported_methods":{"chat":true},"supported_payload_formats":{"csv":null,"mtx":null}}` + "\n", false},
		{config.TargetRegression, "GET", "/directAccess/v1/x", "", "", 400,
			`{"message":"This endpoint is only supported by OpenAI based predictors"}` + "\n", false},
		{config.TargetRegression, "GET", "/static/app.css", "", "", 404, page404, false},
		{config.TargetRegression, "GET", "/info/", "", "", 200, `{"codeDir":"","drumMode":{"mode":"prefork","predictorsPerWorker":1,"queueSize":16,"serverType":"default","workers":1},"drumServer":"flask","drumVersion":"1.17.20.post1","language":"python","modelMetadata":null,"predictor":null,"targetType":"regression"}` + "\n", false},
	} {
		h := newTestHandler(config.Config{TargetType: tc.target}, newFake(f.info))
		r, _ := http.NewRequest(tc.method, "http://127.0.0.1/"+strings.TrimPrefix(tc.path, "/"), strings.NewReader(tc.body))
		if tc.ct != "" {
			r.Header.Set("Content-Type", tc.ct)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		body := rec.Body.String()
		if rec.Code != tc.status || (tc.bodyPrefix && !strings.HasPrefix(body, tc.wantBody)) || (!tc.bodyPrefix && body != tc.wantBody) {
			t.Errorf("%s %s %s: got %d %q, want %d %q", tc.target, tc.method, tc.path, rec.Code, body, tc.status, tc.wantBody)
		}
	}
}

// The heartbeat tells the master when the worker has no predictor and cannot restart
// one (and how many restarts failed), and when it has one again.
func TestHeartbeatReportsNoPredictor(t *testing.T) {
	m, ctl := newFakeMaster(t)
	f := &fakeFactory{fn: constResult(1)}
	startWorker(t, regressionCfg, f, ctl, func(o *Options) { o.HeartbeatInterval = 10 * time.Millisecond })
	beat := func() ipc.Heartbeat {
		var hb ipc.Heartbeat
		if err := ipc.Decode(m.next(t, ipc.KindHeartbeat), &hb); err != nil {
			t.Fatal(err)
		}
		return hb
	}
	until := func(what string, cond func(ipc.Heartbeat) bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !cond(beat()) {
			if time.Now().After(deadline) {
				t.Fatalf("no heartbeat with %s", what)
			}
		}
	}
	if hb := beat(); hb.NoPredictor != "" || hb.FailedRestarts != 0 {
		t.Fatalf("healthy worker's heartbeat: %+v", hb)
	}
	boom := errors.New("model failed to load: RuntimeError: broken")
	f.fail.Store(&boom)
	f.predictors()[0].die()
	until("2 failed restarts", func(hb ipc.Heartbeat) bool {
		return hb.FailedRestarts >= 2 && strings.Contains(hb.NoPredictor, "restarting the predictor failed: model failed to load")
	})
	f.fail.Store(nil)
	until("the predictor back", func(hb ipc.Heartbeat) bool { return hb.NoPredictor == "" && hb.FailedRestarts == 0 })
}
