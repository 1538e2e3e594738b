package main

// End-to-end tests for issue 4: server types, back-pressure, timeouts, slow clients,
// body limits and predictor failure isolation — the real binary, real Python predictors,
// loopback clients bounded in count and time. Helpers here are prefixed bp.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/drum-go/drum/internal/testnet"
)

// bpModelCode scores rows "a,s[,...]": it sleeps s seconds (first row) and predicts a for
// every row, or its own pid when a is negative.
const bpModelCode = `import os, time
import pandas as pd

def load_model(code_dir):
    return "m"

def score(data, model, **kwargs):
    a = float(data.iloc[0, 0])
    s = float(data.iloc[0, 1])
    if s > 0:
        time.sleep(s)
    v = float(os.getpid()) if a < 0 else a
    return pd.DataFrame({"Predictions": [v] * len(data)})
`

func bpModel(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "custom.py"), []byte(bpModelCode), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// bpStart starts drum server on the sleep model with runtime parameters params (plain
// values; nil skips none) and waits for it to be ready.
func bpStart(t *testing.T, workers int, params map[string]string) *server {
	t.Helper()
	for k, v := range params {
		t.Setenv("MLOPS_RUNTIME_PARAM_"+k, v)
	}
	s := startServerNoWait(t, bpModel(t), workers, "--target-type", "regression")
	s.waitReady(60 * time.Second)
	return s
}

type bpAnswer struct {
	status  int
	body    string
	header  http.Header
	latency time.Duration
	err     error
}

var bpClient = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 128, MaxConnsPerHost: 0},
}

// bpPredict posts one row a,s.
func bpPredict(s *server, a, sleep float64) bpAnswer {
	return bpPost(s, "text/csv", []byte(fmt.Sprintf("a,s\n%g,%g\n", a, sleep)))
}

func bpPost(s *server, ct string, body []byte) bpAnswer {
	start := time.Now()
	resp, err := bpClient.Post(s.url("/predict/"), ct, bytes.NewReader(body))
	if err != nil {
		return bpAnswer{err: err, latency: time.Since(start)}
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return bpAnswer{status: resp.StatusCode, body: string(b), header: resp.Header, latency: time.Since(start), err: err}
}

func bpGetJSON(t *testing.T, s *server, path string) map[string]any {
	t.Helper()
	resp, err := bpClient.Get(s.url(path))
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, b)
	}
	return m
}

// bpTotal is /stats/ drum.total.
func bpTotal(t *testing.T, s *server) map[string]any {
	t.Helper()
	drum, _ := bpGetJSON(t, s, "/stats/")["drum"].(map[string]any)
	total, _ := drum["total"].(map[string]any)
	if total == nil {
		t.Fatalf("/stats/ has no drum.total")
	}
	return total
}

func num(m map[string]any, keys ...string) float64 {
	var v any = m
	for _, k := range keys {
		mm, _ := v.(map[string]any)
		v = mm[k]
	}
	f, _ := v.(float64)
	return f
}

func p99(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	i := (len(ds)*99+99)/100 - 1
	return ds[min(i, len(ds)-1)]
}

// bpPredictorPids lists the predictor processes of the server: the children of its
// workers (prefork) or of the master itself (single process).
func bpPredictorPids(s *server) []int {
	var out []int
	for _, p := range processTree(s.cmd.Process.Pid)[1:] {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p)); err == nil && strings.Contains(string(b), "drum predictor") {
			out = append(out, p)
		}
	}
	return out
}

// TestOverload: 1 worker, 1 predictor, queue 4, a 200 ms model and 64 clients for 3 s:
// every answer is 200 or 503, no client times out, and the server's counters add up.
func TestOverload(t *testing.T) {
	needPython(t)
	s := bpStart(t, 1, map[string]string{"DRUM_SERVER_TYPE": "gunicorn", "DRUM_WORKER_QUEUE_SIZE": "4"})

	const clients = 64
	var (
		mu       sync.Mutex
		ok, busy []time.Duration
		others   []string
		wg       sync.WaitGroup
	)
	stop := time.Now().Add(3 * time.Second)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				a := bpPredict(s, 1, 0.2)
				mu.Lock()
				switch {
				case a.err != nil:
					others = append(others, "error: "+a.err.Error())
				case a.status == 200:
					ok = append(ok, a.latency)
				case a.status == 503:
					busy = append(busy, a.latency)
					if a.header.Get("Retry-After") == "" || !strings.Contains(a.body, "overloaded") {
						others = append(others, fmt.Sprintf("503 without Retry-After or message: %v %s", a.header, a.body))
					}
				default:
					others = append(others, fmt.Sprintf("%d %s", a.status, a.body))
				}
				mu.Unlock()
				if a.status == 503 {
					time.Sleep(50 * time.Millisecond) // a polite client backs off a little
				}
			}
		}()
	}
	wg.Wait()
	sent := len(ok) + len(busy) + len(others)
	t.Logf("overload: %d requests from %d clients in 3 s: %d × 200 (p99 %s), %d × 503 (p99 %s)",
		sent, clients, len(ok), p99(ok).Round(time.Millisecond), len(busy), p99(busy).Round(time.Microsecond))
	if len(others) > 0 {
		t.Fatalf("%d answers neither 200 nor 503, e.g. %s", len(others), others[0])
	}
	if len(ok) == 0 || len(busy) == 0 {
		t.Fatalf("want both 200s and 503s, got %d and %d", len(ok), len(busy))
	}
	// The server's own figures: every request admitted or rejected, and the queue drained.
	var total map[string]any
	waitFor(t, "/stats/ to account for every request", 15*time.Second, func() bool {
		total = bpTotal(t, s)
		return int(num(total, "admitted")+num(total, "rejected", "queue_full")) == sent &&
			num(total, "in_flight") == 0 && num(total, "queued") == 0
	})
	if int(num(total, "admitted")) != len(ok) || int(num(total, "completed")) != len(ok) ||
		int(num(total, "rejected", "queue_full")) != len(busy) {
		t.Fatalf("stats %v do not match the clients' %d × 200 and %d × 503", total, len(ok), len(busy))
	}
	t.Logf("server stats: admitted %v, rejected %v, queue p99 %v s, predictor p99 %v s",
		total["admitted"], total["rejected"], num(bpGetJSON(t, s, "/stats/"), "drum", "latency_s", "queue", "p99"),
		num(bpGetJSON(t, s, "/stats/"), "drum", "latency_s", "predict", "p99"))
}

// TestRequestTimeout: a prediction past DRUM_CLIENT_REQUEST_TIMEOUT gets 504 and its
// predictor is replaced; the next request gets its own answer from the new one.
func TestRequestTimeout(t *testing.T) {
	needPython(t)
	s := bpStart(t, 1, map[string]string{"DRUM_CLIENT_REQUEST_TIMEOUT": "1"})
	before := bpPredictorPids(s)
	if len(before) != 1 {
		t.Fatalf("predictors %v, want 1", before)
	}
	a := bpPredict(s, 7, 4)
	if a.err != nil || a.status != 504 || !strings.Contains(a.body, `"message":"ERROR: the prediction did not finish within 1s`) {
		t.Fatalf("slow prediction: %d %s %v, want 504 with a JSON message", a.status, a.body, a.err)
	}
	// The deadline covers queueing too, so a request sent while the replacement still
	// loads may itself time out on a slow machine; a client waits for readiness, as an
	// orchestrator does. /health/ is 200 again once the fresh predictor serves.
	waitFor(t, "a fresh predictor", 60*time.Second, func() bool {
		pids := bpPredictorPids(s)
		if len(pids) != 1 || pids[0] == before[0] {
			return false
		}
		resp, err := http.Get(s.url("/health/"))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	for i, v := range []float64{8, 9} {
		b := bpPredict(s, v, 0)
		if b.err != nil || b.status != 200 || b.body != fmt.Sprintf(`{"predictions":[%g.0]}`, v) {
			t.Fatalf("request %d after the timeout: %d %s %v, want its own answer %g", i, b.status, b.body, b.err, v)
		}
	}
	after := bpPredictorPids(s)
	if len(after) != 1 || after[0] == before[0] || alive(before[0]) {
		t.Fatalf("predictors before %v, after %v: want the hung one gone and a new one", before, after)
	}
	if total := bpTotal(t, s); num(total, "timed_out") != 1 || num(total, "completed") != 2 {
		t.Fatalf("stats %v: want timed_out 1, completed 2", total)
	}
}

// TestSlowloris: 200 connections dripping headers one byte a second do not slow normal
// requests, and the header timeout closes them.
func TestSlowloris(t *testing.T) {
	needPython(t)
	s := bpStart(t, 1, map[string]string{"DRUM_REQUEST_HEADER_TIMEOUT": "3"})
	const slow = 200
	closed := make(chan time.Duration, slow)
	start := time.Now()
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for i := 0; i < slow; i++ {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		go func() {
			req := "POST /predict/ HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: 8\r\n\r\na,s\n1,0\n"
			for j := 0; j < len(req); j++ {
				if _, err := c.Write([]byte{req[j]}); err != nil {
					break
				}
				time.Sleep(time.Second)
			}
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			_, _ = io.Copy(io.Discard, c) // returns when the server closes it
			closed <- time.Since(start)
		}()
	}
	for i := 0; i < 20; i++ {
		a := bpPredict(s, float64(i), 0.05)
		if a.err != nil || a.status != 200 || a.body != fmt.Sprintf(`{"predictions":[%d.0]}`, i) {
			t.Fatalf("normal request %d among slow clients: %d %s %v", i, a.status, a.body, a.err)
		}
	}
	var last time.Duration
	for i := 0; i < slow; i++ {
		select {
		case d := <-closed:
			last = max(last, d)
		case <-time.After(25 * time.Second):
			t.Fatalf("only %d of %d slow connections were closed by the server", i, slow)
		}
	}
	t.Logf("20 normal requests served among %d slowloris connections; all slow ones closed after %s", slow, last.Round(100*time.Millisecond))
	if a := bpPredict(s, 5, 0); a.status != 200 {
		t.Fatalf("after the slow clients: %d %s", a.status, a.body)
	}
}

// bpRSS sums the resident memory (kB) of the master and its workers (not predictors, nor
// the zygote).
func bpRSS(t *testing.T, s *server) int64 {
	var total int64
	for _, p := range processTree(s.cmd.Process.Pid) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if cl := readCmdline(p); err != nil || strings.Contains(cl, "drum predictor") || strings.Contains(cl, "drum zygote") {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				n, _ := strconv.ParseInt(f[1], 10, 64)
				total += n
			}
		}
	}
	return total
}

func readCmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return string(b)
}

// bpRawBig sends a POST of n body bytes (Content-Length, or chunked when chunked is set)
// on a raw connection, writing while it reads the answer, and returns the status line.
func bpRawBig(t *testing.T, s *server, n int64, chunked bool) string {
	t.Helper()
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hdr := "POST /predict/ HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
	if chunked {
		hdr += "Transfer-Encoding: chunked\r\n\r\n"
	} else {
		hdr += fmt.Sprintf("Content-Length: %d\r\n\r\n", n)
	}
	if _, err := c.Write([]byte(hdr)); err != nil {
		t.Fatal(err)
	}
	go func() { // the body, generated as it goes; stops when the server closes
		chunk := bytes.Repeat([]byte("1,0\n"), 16<<10) // 64 KiB
		for sent := int64(0); sent < n; sent += int64(len(chunk)) {
			var err error
			if chunked {
				_, err = fmt.Fprintf(c, "%x\r\n%s\r\n", len(chunk), chunk)
			} else {
				_, err = c.Write(chunk)
			}
			if err != nil {
				return
			}
		}
		if chunked {
			_, _ = c.Write([]byte("0\r\n\r\n"))
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("no answer to a %d-byte body (chunked %v): %v", n, chunked, err)
	}
	return strings.TrimSpace(line)
}

// TestBigBodies: bodies over the limit get 413 without the server's memory growing by
// their size; a body over the spool threshold is served and leaves no file behind.
func TestBigBodies(t *testing.T) {
	needPython(t)
	spool := t.TempDir()
	t.Setenv("TMPDIR", spool)
	const limit = 4 << 20
	s := bpStart(t, 1, map[string]string{
		"DRUM_MAX_REQUEST_BODY_BYTES": strconv.Itoa(limit),
		"DRUM_SPOOL_THRESHOLD_BYTES":  strconv.Itoa(1 << 20),
	})
	before := bpRSS(t, s)
	for _, chunked := range []bool{false, true} {
		if line := bpRawBig(t, s, 10*limit, chunked); !strings.Contains(line, " 413 ") {
			t.Fatalf("10× the limit (chunked %v): %q, want 413", chunked, line)
		}
	}
	grown := bpRSS(t, s) - before
	t.Logf("RSS of master+worker grew by %d kB over two 40 MiB bodies", grown)
	if grown*1024 > limit*10/2 {
		t.Fatalf("RSS grew by %d kB for a %d-byte body", grown, 10*limit)
	}

	// 3 MiB of 100-byte rows: over the spool threshold, under the limit.
	var body bytes.Buffer
	body.WriteString("a,s,pad\n")
	row := "3,0," + strings.Repeat("x", 95) + "\n"
	rows := (3 << 20) / len(row)
	for i := 0; i < rows; i++ {
		body.WriteString(row)
	}
	a := bpPost(s, "text/csv", body.Bytes())
	if a.err != nil || a.status != 200 || strings.Count(a.body, "3.0") != rows {
		t.Fatalf("spooled body: %d %v %.200s", a.status, a.err, a.body)
	}
	if total := bpTotal(t, s); num(total, "spooled") != 1 || num(total, "rejected", "body_too_large") != 2 {
		t.Fatalf("stats %v: want spooled 1 and body_too_large 2", total)
	}
	left, _ := os.ReadDir(spool)
	var names []string
	for _, e := range left {
		if strings.HasPrefix(e.Name(), "drum-body-") {
			names = append(names, e.Name())
		}
	}
	if len(names) > 0 {
		t.Fatalf("temporary files left behind: %v", names)
	}
}

// TestPredictorKilled: kill -9 of the predictor answers its request with 500; the queued
// requests are answered once a new predictor is ready.
func TestPredictorKilled(t *testing.T) {
	needPython(t)
	s := bpStart(t, 1, nil)
	preds := bpPredictorPids(s)
	if len(preds) != 1 {
		t.Fatalf("predictors %v, want 1", preds)
	}
	inFlight := make(chan bpAnswer, 1)
	go func() { inFlight <- bpPredict(s, 1, 20) }()
	waitFor(t, "the slow request in flight", 10*time.Second, func() bool { return num(bpTotal(t, s), "in_flight") == 1 })
	queued := make([]chan bpAnswer, 3)
	for i := range queued {
		queued[i] = make(chan bpAnswer, 1)
		go func() { queued[i] <- bpPredict(s, float64(10+i), 0) }()
	}
	waitFor(t, "3 queued requests", 10*time.Second, func() bool { return num(bpTotal(t, s), "queued") == 3 })
	if err := syscall.Kill(preds[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	a := <-inFlight
	if a.err != nil || a.status != 500 || !strings.Contains(a.body, fmt.Sprintf("predictor process %d died (signal: killed)", preds[0])) {
		t.Fatalf("in-flight request: %d %s %v, want 500 naming the dead predictor", a.status, a.body, a.err)
	}
	for i, ch := range queued {
		b := <-ch
		if b.err != nil || b.status != 200 || b.body != fmt.Sprintf(`{"predictions":[%d.0]}`, 10+i) {
			t.Fatalf("queued request %d: %d %s %v", i, b.status, b.body, b.err)
		}
	}
	if now := bpPredictorPids(s); len(now) != 1 || now[0] == preds[0] {
		t.Fatalf("predictors after the kill: %v (killed %d)", now, preds[0])
	}
}

// bpListenBacklog is the backlog ss reports for the listening socket on addr's port.
func bpListenBacklog(t *testing.T, addr string) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(addr)
	out, err := exec.Command("ss", "-ltnH", "sport = :"+port).Output()
	if err != nil {
		t.Skipf("ss not usable: %v", err)
	}
	f := strings.Fields(string(out))
	if len(f) < 3 {
		t.Fatalf("ss output %q", out)
	}
	n, _ := strconv.Atoi(f[2]) // State Recv-Q Send-Q(=backlog) ...
	return n
}

// TestServerTypes: each DRUM_SERVER_TYPE starts, predicts and reports its mode in /info/;
// flask logs its deprecation; an unknown value is a start-up error naming the accepted
// ones.
func TestServerTypes(t *testing.T) {
	needPython(t)
	cases := []struct {
		value, serverType, mode, drumServer string
		preds                               int // predictor processes with 1 worker
		extra                               map[string]string
	}{
		{"", "default", "prefork", "flask", 1, nil},
		{`{"type":"string","payload":"gunicorn"}`, "gunicorn", "prefork", "gunicorn", 1, nil},
		{"fastapi", "fastapi", "prefork", "fastapi", 2, map[string]string{"DRUM_FASTAPI_EXECUTOR_WORKERS": "2"}},
		{"UVICORN", "uvicorn", "prefork", "uvicorn", 1, map[string]string{"DRUM_UVICORN_LOOP": "uvloop"}},
		{`{"type":"string","payload":"flask"}`, "flask", "single-process", "flask", 1, map[string]string{"DRUM_WEBSERVER_BACKLOG": "77"}},
	}
	for _, tc := range cases {
		t.Run(tc.serverType, func(t *testing.T) {
			params := map[string]string{}
			for k, v := range tc.extra {
				params[k] = v
			}
			if tc.value != "" {
				params["DRUM_SERVER_TYPE"] = tc.value
			}
			s := bpStart(t, 1, params)
			if a := bpPredict(s, 42, 0); a.err != nil || a.status != 200 || a.body != `{"predictions":[42.0]}` {
				t.Fatalf("prediction: %d %s %v", a.status, a.body, a.err)
			}
			info := bpGetJSON(t, s, "/info/")
			mode, _ := info["drumMode"].(map[string]any)
			if info["drumServer"] != tc.drumServer || mode["serverType"] != tc.serverType || mode["mode"] != tc.mode ||
				int(num(mode, "predictorsPerWorker")) != tc.preds {
				t.Fatalf("/info/ %v, want drumServer %s, serverType %s, mode %s, %d predictors", info, tc.drumServer, tc.serverType, tc.mode, tc.preds)
			}
			if n := len(bpPredictorPids(s)); n != tc.preds {
				t.Fatalf("%d predictor processes, want %d", n, tc.preds)
			}
			log := s.log.String()
			switch tc.serverType {
			case "flask":
				if !strings.Contains(log, "DRUM_SERVER_TYPE=flask is deprecated") || !strings.Contains(log, "use DRUM_SERVER_TYPE=gunicorn") {
					t.Fatalf("no deprecation warning naming the replacement:\n%s", log)
				}
				if kids := childrenOf(s.cmd.Process.Pid); len(kids) != 1 || !strings.Contains(readCmdline(kids[0]), "drum predictor") {
					t.Fatalf("single process: the master's children are %v, want only its predictor", kids)
				}
				if n := bpListenBacklog(t, s.addr); n != 77 {
					t.Fatalf("listen backlog %d, want 77 (DRUM_WEBSERVER_BACKLOG)", n)
				}
				if drum := bpGetJSON(t, s, "/stats/")["drum"].(map[string]any); drum["scope"] != "process" {
					t.Fatalf("/stats/ drum %v, want scope process", drum)
				}
			case "uvicorn":
				if !strings.Contains(log, "DRUM_UVICORN_LOOP=uvloop has no effect") {
					t.Fatalf("DRUM_UVICORN_LOOP not reported as having no effect:\n%s", log)
				}
			case "fastapi":
				// Both predictors serve: two slow requests at once get two pids.
				var wg sync.WaitGroup
				answers := make([]bpAnswer, 2)
				for i := range answers {
					wg.Add(1)
					go func() { defer wg.Done(); answers[i] = bpPredict(s, -1, 1) }()
				}
				wg.Wait()
				if answers[0].status != 200 || answers[1].status != 200 || answers[0].body == answers[1].body {
					t.Fatalf("two concurrent requests on a pool of 2: %+v", answers)
				}
			}
		})
	}

	t.Run("unknown", func(t *testing.T) {
		cmd := exec.Command(drumBin, "server", "--code-dir", bpModel(t), "--target-type", "regression", "--address", testnet.FreeAddr(t))
		cmd.Env = append(os.Environ(), `MLOPS_RUNTIME_PARAM_DRUM_SERVER_TYPE={"type":"string","payload":"tornado"}`)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("exit 0 with server type tornado:\n%s", out)
		}
		for _, want := range []string{"DRUM_SERVER_TYPE", `"tornado"`, "flask, gunicorn, fastapi, uvicorn"} {
			if !strings.Contains(string(out), want) {
				t.Fatalf("error does not name %s:\n%s", want, out)
			}
		}
	})
}
