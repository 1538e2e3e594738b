package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/drum-go/drum/internal/testnet"
)

const e2eToken = "e2e-secret-7f3a"

// metricSum adds the values of the series of name whose labels contain every one of
// labels (`key="value"`), in a text exposition.
func metricSum(body, name string, labels ...string) (float64, bool) {
	var sum float64
	found := false
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		series := line[:i]
		ok := true
		for _, l := range labels {
			if !strings.Contains(series, l) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		sum += v
		found = true
	}
	return sum, found
}

// TestOperability: a 2-worker server with auth, DRUM_METRICS_ADDRESS and JSON logs.
// After N predictions /metrics counts N however the workers shared them, on the main
// port and on the metrics address; health aliases are open, everything else needs the
// token, which appears in no answer and no log line.
func TestOperability(t *testing.T) {
	needPython(t)
	addr, maddr := testnet.FreeAddr(t), testnet.FreeAddr(t)
	args := append([]string{"server", "--code-dir", goldenModel("regression"), "--address", addr, "--max-workers", "2"},
		modelArgs["regression"]...)
	cmd := exec.Command(drumBin, args...)
	cmd.Env = append(os.Environ(), "DRUM_METRICS_ADDRESS="+maddr, "DRUM_AUTH_HEADER=X-Api-Key", "DRUM_LOG_FORMAT=json",
		`MLOPS_RUNTIME_PARAM_DRUM_AUTH_TOKEN={"type":"credential","payload":{"credentialType":"api_token","apiToken":"`+e2eToken+`"}}`)
	s := adoptServer(t, cmd, addr)
	s.waitReady(60 * time.Second)

	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	call := func(method, url string, body []byte, hdr ...string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}

	// Health aliases and DRUM's probes are open; the rest needs the token.
	for _, p := range []string{"/ping/", "/health/", "/v2/health/live", "/v2/health/ready"} {
		if st, body := call("GET", s.url(p), nil); st != 200 || !strings.Contains(body, `"OK"`) {
			t.Errorf("GET %s: %d %s", p, st, body)
		}
	}
	g := loadGolden(t, "regression", "predict_csv_5")
	csv := g.body(t)
	if st, body := call("POST", s.url("/predict/"), csv, "Content-Type", "text/csv"); st != 401 || !strings.Contains(body, `"message"`) {
		t.Fatalf("prediction without the token: %d %s", st, body)
	}
	if st, _ := call("POST", s.url("/predict/"), csv, "Content-Type", "text/csv", "X-Api-Key", "nope"); st != 401 {
		t.Fatalf("prediction with a wrong token: %d", st)
	}
	if st, body := call("GET", s.url("/info/"), nil, "X-Api-Key", e2eToken); st != 200 || strings.Contains(body, e2eToken) {
		t.Fatalf("/info/: %d, token shown: %v", st, strings.Contains(body, e2eToken))
	}

	// N predictions from several clients at once, so both workers take some.
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := i; j < n; j += 8 {
				if st, body := call("POST", s.url("/predict/"), csv, "Content-Type", "text/csv", "X-Api-Key", e2eToken); st != 200 {
					errs <- fmt.Sprintf("prediction %d: %d %s", j, st, body)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}

	route200 := []string{`http_route="/predict/"`, `http_request_method="POST"`, `http_response_status_code="200"`}
	route401 := []string{`http_route="/predict/"`, `http_response_status_code="401"`}
	check := func(where, body string) error {
		if v, _ := metricSum(body, "http_server_request_duration_seconds_count", route200...); v != n {
			return fmt.Errorf("%s: %v answered predictions, want %d", where, v, n)
		}
		if v, _ := metricSum(body, "http_server_request_duration_seconds_bucket", append(route200, `le="+Inf"`)...); v != n {
			return fmt.Errorf("%s: +Inf bucket %v, want %d", where, v, n)
		}
		if v, _ := metricSum(body, "http_server_request_duration_seconds_count", route401...); v != 2 {
			return fmt.Errorf("%s: %v refused predictions, want 2", where, v)
		}
		for _, name := range []string{"drum_requests_completed_total", "drum_requests_admitted_total",
			"drum_predictor_duration_seconds_count", "drum_queue_duration_seconds_count"} {
			if v, _ := metricSum(body, name); v != n {
				return fmt.Errorf("%s: %s %v, want %d", where, name, v, n)
			}
		}
		if v, _ := metricSum(body, "drum_workers", `state="ready"`); v != 2 {
			return fmt.Errorf("%s: %v ready workers, want 2", where, v)
		}
		if _, ok := metricSum(body, "drum_build_info"); !ok {
			return fmt.Errorf("%s: no drum_build_info", where)
		}
		return nil
	}
	var last error
	for _, where := range []string{"main port", "metrics address"} {
		url := s.url("/metrics")
		hdr := []string{"X-Api-Key", e2eToken}
		if where == "metrics address" {
			url, hdr = "http://"+maddr+"/metrics", nil
		}
		waitFor(t, "/metrics on the "+where+" to count every prediction", 15*time.Second, func() bool {
			st, body := call("GET", url, nil, hdr...)
			if st != 200 {
				last = fmt.Errorf("%s: status %d", where, st)
				return false
			}
			last = check(where, body)
			return last == nil
		})
	}
	if last != nil {
		t.Fatal(last)
	}
	if st, _ := call("GET", s.url("/metrics"), nil); st != 401 {
		t.Errorf("/metrics on the main port without the token: %d, want 401", st)
	}

	// The per-worker figures of /stats/ add up to the same N.
	_, statsBody := call("GET", s.url("/stats/"), nil, "X-Api-Key", e2eToken)
	var stats struct {
		Drum struct {
			PerWorker []struct {
				ID       int `json:"id"`
				Counters struct {
					Completed int `json:"completed"`
				} `json:"counters"`
				PredictorPids []int `json:"predictor_pids"`
			} `json:"per_worker"`
		} `json:"drum"`
	}
	if err := json.Unmarshal([]byte(statsBody), &stats); err != nil {
		t.Fatalf("/stats/: %v", err)
	}
	sum, per := 0, []int{}
	for _, w := range stats.Drum.PerWorker {
		sum += w.Counters.Completed
		per = append(per, w.Counters.Completed)
		// Forked predictors are the zygote's children: the worker's heartbeat names them.
		if len(w.PredictorPids) == 0 {
			t.Errorf("/stats/ worker %d: no predictor_pids", w.ID)
		} else if cl := readCmdline(w.PredictorPids[0]); !strings.Contains(cl, "predictor") {
			t.Errorf("/stats/ worker %d: predictor pid %d is %q", w.ID, w.PredictorPids[0], cl)
		}
	}
	t.Logf("predictions per worker: %v", per)
	if len(per) != 2 || sum != n {
		t.Errorf("/stats/ per worker %v, want 2 workers adding up to %d", per, n)
	}

	// Logs: JSON lines, an access line per request, durations not in nanoseconds, and
	// never the token.
	log := s.log.String()
	if strings.Contains(log, e2eToken) {
		t.Fatalf("the token is in the log")
	}
	access := 0
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("log line is not JSON: %q", line)
			continue
		}
		if m["@message"] == "request" && m["path"] == "/predict/" {
			access++
			if _, ok := m["duration_ms"].(float64); !ok {
				t.Errorf("access line without duration_ms: %q", line)
			}
		}
	}
	if access != n+2 {
		t.Errorf("%d access lines for /predict/, want %d", access, n+2)
	}
}

// TestMetricsKeepDepartedWorkers: server-wide counters never step back when workers go
// away (recycled by DRUM_GUNICORN_MAX_REQUESTS, or killed): Prometheus would read a
// drop as a counter reset.
func TestMetricsKeepDepartedWorkers(t *testing.T) {
	needPython(t)
	addr, maddr := testnet.FreeAddr(t), testnet.FreeAddr(t)
	args := append([]string{"server", "--code-dir", goldenModel("regression"), "--address", addr, "--max-workers", "2"},
		modelArgs["regression"]...)
	cmd := exec.Command(drumBin, args...)
	cmd.Env = append(os.Environ(), "MLOPS_RUNTIME_PARAM_DRUM_GUNICORN_MAX_REQUESTS=7", "DRUM_METRICS_ADDRESS="+maddr)
	s := adoptServer(t, cmd, addr)
	s.waitReady(60 * time.Second)

	csv := loadGolden(t, "regression", "predict_csv_5").body(t)
	client := &http.Client{Timeout: 30 * time.Second}
	fresh := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	scrape := func(c *http.Client, url string) (float64, bool) {
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		if resp.StatusCode != 200 { // a worker just started, before the master's figures reach it
			return 0, false
		}
		v, _ := metricSum(b.String(), "drum_requests_admitted_total")
		return v, true
	}
	admitted := func() float64 { v, _ := scrape(client, s.url("/metrics")); return v }
	// The master's own address is one source: strictly monotonic. The main port is
	// answered by whichever worker takes the connection (a new one each time): it may
	// lag the master by a broadcast (1 s), never more (2 s allowed for a slow machine),
	// and a worker that has just started must not answer with its own counts alone.
	type mark struct {
		at time.Time
		v  float64
	}
	var marks []mark
	sent, seen := 0, 0.0
	send := func(k int) {
		for range k {
			resp, err := client.Post(s.url("/predict/"), "text/csv", bytes.NewReader(csv))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("prediction: %d", resp.StatusCode)
			}
			sent++
			time.Sleep(40 * time.Millisecond) // spread over several heartbeats, broadcasts and recycles
			now := time.Now()
			v, ok := scrape(client, "http://"+maddr+"/metrics")
			if !ok || v < seen {
				t.Fatalf("master's drum_requests_admitted_total stepped back from %v to %v (ok %v)", seen, v, ok)
			}
			seen = v
			marks = append(marks, mark{now, v})
			if w, ok := scrape(fresh, s.url("/metrics")); ok {
				floor := 0.0
				for _, m := range marks {
					if m.at.Before(now.Add(-2 * time.Second)) {
						floor = max(floor, m.v)
					}
				}
				if w < floor {
					t.Fatalf("the main port's drum_requests_admitted_total is %v, below the master's %v of 2 s before", w, floor)
				}
			}
		}
	}
	send(150) // many recycles of each worker, over several broadcasts
	waitFor(t, "/metrics to count every prediction through the recycles", 15*time.Second,
		func() bool { return admitted() == float64(sent) })

	// A killed worker's counts (as of its last heartbeat, all of them by now) stay too.
	ws := workersOf(s.cmd.Process.Pid)
	if len(ws) == 0 {
		t.Fatal("no worker processes")
	}
	if err := syscall.Kill(ws[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the killed worker to be replaced", 60*time.Second, func() bool {
		now := workersOf(s.cmd.Process.Pid)
		return len(now) == 2 && now[0] != ws[0] && now[1] != ws[0]
	})
	send(5)
	waitFor(t, "/metrics to keep the killed worker's predictions", 15*time.Second,
		func() bool { return admitted() == float64(sent) })
}
