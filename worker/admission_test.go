package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drum-go/drum/ipc"
	"github.com/drum-go/drum/worker/predictor"
)

// orderGate holds every call until released and records the payloads in arrival order.
type orderGate struct {
	release chan struct{}
	mu      sync.Mutex
	order   []string
}

func (g *orderGate) fn(ctx context.Context, p *fakePredictor, req *predictor.Request) (*predictor.Result, error) {
	g.mu.Lock()
	g.order = append(g.order, strings.TrimSpace(string(req.Payload)))
	g.mu.Unlock()
	select {
	case <-g.release:
		return &predictor.Result{Columns: []string{"Predictions"}, Rows: 1, Values: []float64{1}}, nil
	case <-p.done:
		return nil, &predictor.DiedError{Pid: p.pid, Reason: "signal: killed"}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (g *orderGate) arrived() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.order...)
}

// counterOf reads the worker's live counters through /stats/.
func counterOf(t *testing.T, addr string) ipc.Counters {
	t.Helper()
	_, body := get(t, addr, "/stats/")
	var doc struct {
		Drum struct {
			Total ipc.Counters `json:"total"`
		} `json:"drum"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("/stats/: %v: %s", err, body)
	}
	return doc.Drum.Total
}

func TestAdmissionQueueIsFIFOAndBounded(t *testing.T) {
	g := &orderGate{release: make(chan struct{})}
	f := &fakeFactory{fn: g.fn}
	w := startWorker(t, regressionCfg, f, nil, func(o *Options) { o.QueueSize = 3 })

	first := postAsync(t, w.addr, "/predict/", "a\n0\n")
	waitFor(t, "the first call", func() bool { return len(g.arrived()) == 1 })
	var queued []<-chan answer
	for i := 1; i <= 3; i++ {
		queued = append(queued, postAsync(t, w.addr, "/predict/", fmt.Sprintf("a\n%d\n", i)))
		waitFor(t, "a queued request", func() bool { return counterOf(t, w.addr).Queued == int64(i) })
	}

	// The queue is full: an immediate 503 with Retry-After, the predictor untouched.
	status, body, hdr := post(t, w.addr, "/predict/", "a\n9\n")
	want := `{"message":"ERROR: the server is overloaded: 1 prediction running and 3 waiting in this worker; retry later"}` + "\n"
	if status != 503 || body != want || hdr.Get("Retry-After") != "1" {
		t.Fatalf("overload answer: %d %q %v", status, body, hdr)
	}
	// Routes other than predictions never wait.
	for _, path := range []string{"/ping/", "/health/", "/info/", "/stats/"} {
		if s, _ := get(t, w.addr, path); s != 200 {
			t.Fatalf("%s while saturated: %d", path, s)
		}
	}

	close(g.release)
	for _, ch := range append([]<-chan answer{first}, queued...) {
		if a := await(t, ch); a.status != 200 {
			t.Fatalf("admitted request: %d %s", a.status, a.body)
		}
	}
	if got := strings.Join(g.arrived(), " "); got != "a\n0 a\n1 a\n2 a\n3" {
		t.Fatalf("predictor saw %q, want the arrival order", got)
	}
	c := counterOf(t, w.addr)
	if c.Admitted != 4 || c.Completed != 4 || c.Rejected[ipc.RejectQueueFull] != 1 || c.Queued != 0 || c.InFlight != 0 ||
		c.QueueTime.Count != 4 || c.PredictTime.Count != 4 {
		t.Fatalf("counters %+v", c)
	}
}

func TestOverloadStatus429WithoutQueue(t *testing.T) {
	g := newGate()
	f := &fakeFactory{fn: g.fn}
	w := startWorker(t, regressionCfg, f, nil, func(o *Options) { o.QueueSize = -1; o.OverloadStatus = 429 })
	pending := postAsync(t, w.addr, "/predict/", "a\n1\n")
	g.waitArrival(t)
	if status, body, hdr := post(t, w.addr, "/predict/", "a\n1\n"); status != 429 || hdr.Get("Retry-After") == "" ||
		!strings.Contains(body, "overloaded") {
		t.Fatalf("%d %s %v", status, body, hdr)
	}
	close(g.release)
	await(t, pending)
}

func TestQueueTimeout(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	f := &fakeFactory{fn: func(ctx context.Context, p *fakePredictor, req *predictor.Request) (*predictor.Result, error) {
		arrived <- struct{}{}
		<-release // a call that outlives its deadline (the predictor does not notice)
		return &predictor.Result{Columns: []string{"Predictions"}, Rows: 1, Values: []float64{1}}, nil
	}}
	w := startWorker(t, regressionCfg, f, nil, func(o *Options) { o.RequestTimeout = 200 * time.Millisecond })
	pending := postAsync(t, w.addr, "/predict/", "a\n1\n")
	<-arrived
	status, body, _ := post(t, w.addr, "/predict/", "a\n2\n")
	want := `{"message":"ERROR: the request timed out after 200ms waiting for a free predictor"}` + "\n"
	if status != 504 || body != want {
		t.Fatalf("queued past the deadline: %d %q", status, body)
	}
	close(release)
	if a := await(t, pending); a.status != 200 {
		t.Fatalf("held request: %d %s", a.status, a.body)
	}
	c := counterOf(t, w.addr)
	if c.Rejected[ipc.RejectQueueTimeout] != 1 || c.TimedOut != 1 || c.Admitted != 1 || c.Completed != 1 {
		t.Fatalf("counters %+v", c)
	}
}

func TestPoolRunsConcurrently(t *testing.T) {
	g := newGate()
	f := &fakeFactory{fn: g.fn}
	boom := fmt.Errorf("no more predictors")
	w := startWorker(t, regressionCfg, f, nil, func(o *Options) { o.Concurrency = 3 })
	waitFor(t, "3 predictors", func() bool { return len(f.predictors()) == 3 })
	var pending []<-chan answer
	seen := map[int]bool{}
	for i := 0; i < 3; i++ {
		pending = append(pending, postAsync(t, w.addr, "/predict/", "a\n1\n"))
		seen[g.waitArrival(t).pid] = true
	}
	if len(seen) != 3 {
		t.Fatalf("3 calls ran on predictors %v", seen)
	}
	close(g.release)
	for _, ch := range pending {
		if a := await(t, ch); a.status != 200 {
			t.Fatalf("%d %s", a.status, a.body)
		}
	}
	// One predictor dead and not coming back: still healthy, still serving.
	f.fail.Store(&boom)
	f.predictors()[0].die()
	for i := 0; i < 5; i++ {
		if s, _ := get(t, w.addr, "/health/"); s != 200 {
			t.Fatalf("health with 2 of 3 predictors: %d", s)
		}
		if s, body, _ := post(t, w.addr, "/predict/", "a\n1\n"); s != 200 {
			t.Fatalf("prediction with 2 of 3 predictors: %d %s", s, body)
		}
	}
}

func TestSpooledBodies(t *testing.T) {
	f := &fakeFactory{fn: constResult(1)}
	dir := t.TempDir()
	w := startWorker(t, regressionCfg, f, nil, func(o *Options) {
		o.SpoolThreshold = 1024
		o.SpoolDir = dir
		o.MaxBodyBytes = 1 << 20
	})
	big := "a\n" + strings.Repeat("12345\n", 20000) // 120 kB
	check := func(what string) {
		t.Helper()
		got := f.predictors()[0].lastRequest()
		if got == nil || string(got.Payload) != big {
			t.Fatalf("%s: the predictor did not get the whole body", what)
		}
	}
	if status, body, _ := post(t, w.addr, "/predict/", big); status != 200 {
		t.Fatalf("Content-Length: %d %s", status, body)
	}
	check("Content-Length")
	// Chunked (no length): starts in memory, moves to the file past the threshold.
	resp, err := http.Post("http://"+w.addr+"/predict/", "text/csv", io.MultiReader(strings.NewReader(big)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("chunked: %d", resp.StatusCode)
	}
	check("chunked")
	// Multipart: the X part is a slice of the mapped file.
	mp := mpBody(filePart("X", "x.csv", big))
	req, _ := http.NewRequest("POST", "http://"+w.addr+"/predict/", strings.NewReader(mp))
	req.Header.Set("Content-Type", "multipart/form-data; boundary=bnd")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("multipart: %d", resp.StatusCode)
	}
	check("multipart")
	if c := counterOf(t, w.addr); c.Spooled != 3 {
		t.Fatalf("spooled %d bodies, want 3", c.Spooled)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("files left in the spool dir: %v", left)
	}
	// Over the limit, chunked: 413 as soon as the limit is crossed, connection closed.
	resp, err = http.Post("http://"+w.addr+"/predict/", "text/csv", io.MultiReader(strings.NewReader(strings.Repeat(big, 10))))
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 413 || !strings.Contains(string(b), "limit of 1048576 bytes") {
			t.Fatalf("chunked over the limit: %d %s", resp.StatusCode, b)
		}
	}
	if c := counterOf(t, w.addr); c.Rejected[ipc.RejectBodyTooLarge] != 1 {
		t.Fatalf("counters %+v", c)
	}
}

func TestBodyDeadline(t *testing.T) {
	f := &fakeFactory{fn: func(ctx context.Context, p *fakePredictor, req *predictor.Request) (*predictor.Result, error) {
		select { // a prediction slower than the body deadline
		case <-time.After(400 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return &predictor.Result{Columns: []string{"Predictions"}, Rows: 1, Values: []float64{5}}, nil
	}}
	w := startWorker(t, regressionCfg, f, nil, func(o *Options) { o.BodyTimeout = 150 * time.Millisecond })

	// The deadline covers the upload only, not the prediction after it.
	if status, body, _ := post(t, w.addr, "/predict/", "a\n1\n"); status != 200 || body != `{"predictions":[5.0]}` {
		t.Fatalf("slow prediction after a quick upload: %d %s", status, body)
	}
	// A body that stops arriving: 408 and the connection is closed.
	conn, err := net.Dial("tcp", w.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "POST /predict/ HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: 100\r\n\r\na\n1\n")
	b, _ := io.ReadAll(conn)
	if !bytes.HasPrefix(b, []byte("HTTP/1.1 408 ")) || !bytes.Contains(b, []byte("did not arrive within 150ms")) {
		t.Fatalf("stalled body: %q", b)
	}
	if c := counterOf(t, w.addr); c.Rejected[ipc.RejectBodyTimeout] != 1 {
		t.Fatalf("counters %+v", c)
	}
}

func TestStatsServerWide(t *testing.T) {
	m, ctl := newFakeMaster(t)
	f := &fakeFactory{fn: constResult(1)}
	w := startWorker(t, regressionCfg, f, ctl, func(o *Options) { o.WorkerID = 2 })
	m.next(t, ipc.KindReady)
	if status, _, _ := post(t, w.addr, "/predict/", "a\n1\n"); status != 200 {
		t.Fatal(status)
	}
	other := ipc.Counters{Admitted: 5, Completed: 4, Failed: 1, Rejected: map[string]int64{ipc.RejectQueueFull: 7}}
	st := ipc.ServerStats{
		Workers: []ipc.WorkerStats{
			{ID: 1, Pid: 999999, State: "ready", Counters: other},
			{ID: 2, Pid: os.Getpid(), State: "ready"}, // stale: the worker uses its live figures
		},
		WorkerExits: map[string]int{"crash": 1},
	}
	if err := m.conn.Send(ipc.KindStats, st); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	waitFor(t, "the server-wide view", func() bool {
		_, body := get(t, w.addr, "/stats/")
		doc = nil
		_ = json.Unmarshal([]byte(body), &doc)
		drum, _ := doc["drum"].(map[string]any)
		// "scope" is "server" as soon as a master exists: wait for its frame (2 workers).
		return drum != nil && drum["scope"] == "server" && drum["workers"] == 2.0
	})
	drum := doc["drum"].(map[string]any)
	total := drum["total"].(map[string]any)
	if total["admitted"] != 6.0 || total["completed"] != 5.0 || total["rejected"].(map[string]any)["queue_full"] != 7.0 ||
		drum["workers"] != 2.0 || drum["worker_exits"].(map[string]any)["crash"] != 1.0 {
		t.Fatalf("drum section %v", drum)
	}
	for _, k := range []string{"drum_info", "mem_info", "time_info"} {
		if doc[k] == nil {
			t.Fatalf("no %s in %v", k, doc)
		}
	}
	mem := doc["mem_info"].(map[string]any)
	for _, k := range []string{"total", "avail", "free", "drum_rss", "container_limit", "container_used", "container_max_used"} {
		if _, ok := mem[k]; !ok {
			t.Fatalf("mem_info has no %s: %v", k, mem)
		}
	}
	found := false
	for _, e := range doc["drum_info"].([]any) {
		found = found || e.(map[string]any)["pid"] == float64(os.Getpid())
	}
	if !found {
		t.Fatalf("drum_info %v lacks this process", doc["drum_info"])
	}
}

func TestSlowClientLimits(t *testing.T) {
	f := &fakeFactory{fn: constResult(1)}
	w := startWorker(t, regressionCfg, f, nil, func(o *Options) {
		o.HeaderTimeout = 300 * time.Millisecond
		o.KeepAlive = 300 * time.Millisecond
		o.MaxHeaderBytes = 1024
	})
	dial := func() net.Conn {
		c, err := net.Dial("tcp", w.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		return c
	}
	// Headers too large: 431.
	c := dial()
	fmt.Fprintf(c, "GET /ping/ HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", strings.Repeat("b", 16<<10))
	if b, _ := io.ReadAll(c); !bytes.HasPrefix(b, []byte("HTTP/1.1 431 ")) {
		t.Fatalf("oversized headers: %q", b)
	}
	// Headers that never finish: the connection is closed.
	c = dial()
	fmt.Fprintf(c, "GET /ping/ HTTP/1.1\r\nHost: x\r\n")
	start := time.Now()
	if b, _ := io.ReadAll(c); len(b) != 0 || time.Since(start) > 5*time.Second {
		t.Fatalf("unfinished headers: %q after %s", b, time.Since(start))
	}
	// An idle keep-alive connection is closed after the keep-alive time.
	c = dial()
	fmt.Fprintf(c, "GET /ping/ HTTP/1.1\r\nHost: x\r\n\r\n")
	b, _ := io.ReadAll(c)
	if !bytes.HasPrefix(b, []byte("HTTP/1.1 200 ")) || time.Since(start) > 8*time.Second {
		t.Fatalf("keep-alive: %q", b)
	}
}

func TestPoolStartFailureClosesTheOthers(t *testing.T) {
	f := &fakeFactory{fn: constResult(1)}
	var mu sync.Mutex
	n := 0
	start := func(ctx context.Context) (predictor.Predictor, error) {
		mu.Lock()
		n++
		fail := n == 2
		mu.Unlock()
		if fail {
			var none *fakePredictor // a typed nil, as a careless factory returns it
			return none, fmt.Errorf("model failed to load")
		}
		return f.start(ctx)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	err = Run(context.Background(), Options{Config: regressionCfg, Listener: ln, NewPredictor: start, Concurrency: 3})
	if err == nil || !strings.Contains(err.Error(), "model failed to load") {
		t.Fatalf("Run: %v", err)
	}
	for _, p := range f.predictors() {
		if !p.closed.Load() {
			t.Errorf("predictor %d left running", p.pid)
		}
	}
}

// TestOverloadAnswerReachesUploadingClient: a client still uploading a large body when
// it is turned away must get the 503, not a connection reset that destroys it.
func TestOverloadAnswerReachesUploadingClient(t *testing.T) {
	g := newGate()
	f := &fakeFactory{fn: g.fn}
	w := startWorker(t, regressionCfg, f, nil, func(o *Options) { o.QueueSize = -1 })
	pending := postAsync(t, w.addr, "/predict/", "a\n1\n")
	g.waitArrival(t)

	body := "a\n" + strings.Repeat("123456.789\n", 60000) // 660 kB: more than socket buffers hold
	for i := 0; i < 20; i++ {
		resp, err := http.Post("http://"+w.addr+"/predict/", "text/csv", strings.NewReader(body))
		if err != nil {
			t.Fatalf("upload %d: the overload answer was lost: %v", i, err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 503 || !strings.Contains(string(msg), "overloaded") {
			t.Fatalf("upload %d: %d %s", i, resp.StatusCode, msg)
		}
	}
	close(g.release)
	await(t, pending)
}
