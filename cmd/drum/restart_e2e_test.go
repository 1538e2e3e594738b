package main

// End-to-end test of a predictor that dies while the model no longer loads: requests on
// its worker must be answered (503, naming the failure), not left waiting forever.

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/drum-go/drum/internal/testnet"
)

// restartModel is an unstructured custom.py; %s is load_model's body.
const restartModel = `def load_model(code_dir):
    %s

def score_unstructured(model, data, **kwargs):
    return model
`

// postBurst sends n concurrent /predictUnstructured/ requests on fresh connections and
// returns "status body" for each; a request with no answer within 40s is "no answer".
func postBurst(url string, n int) []string {
	out := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 40 * time.Second}
			resp, err := client.Post(url, "text/plain", strings.NewReader("x"))
			if err != nil {
				out[i] = "no answer: " + err.Error()
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			out[i] = fmt.Sprintf("%d %s", resp.StatusCode, b)
		}()
	}
	wg.Wait()
	return out
}

// TestPredictorRestartFails: break the model file, kill -9 a predictor: every request
// is answered (the dead predictor's worker with a prompt 503 naming the load failure);
// fix the model file: that worker's predictor comes back and predictions succeed.
func TestPredictorRestartFails(t *testing.T) {
	needPython(t)
	dir := t.TempDir()
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "custom.py"), []byte(fmt.Sprintf(restartModel, body)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(`return "v1"`)
	addr := testnet.FreeAddr(t)
	cmd := exec.Command(drumBin, "server", "--code-dir", dir, "--target-type", "unstructured",
		"--address", addr, "--max-workers", "2")
	// Each version of custom.py is read from source, whatever its mtime.
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	s := adoptServer(t, cmd, addr)
	s.waitReady(60 * time.Second)
	master := s.cmd.Process.Pid
	workers := workersOf(master)
	if len(workers) != 2 {
		t.Fatalf("workers %v", workers)
	}
	preds := predictorsOf(master, workers[0])
	if len(preds) != 1 {
		t.Fatalf("worker %d has predictors %v", workers[0], preds)
	}

	write(`raise RuntimeError("broken model file")`)
	if err := syscall.Kill(preds[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	is503 := func(a string) bool {
		return strings.HasPrefix(a, `503 {"message":"ERROR: no predictor is available in this worker: `+
			`restarting the predictor failed: model failed to load: `) &&
			strings.Contains(a, "broken model file") && strings.HasSuffix(a, "; retry later\"}\n")
	}
	// Bursts land on either worker: keep sending until the broken one has answered.
	saw503 := false
	deadline := time.Now().Add(90 * time.Second)
	for !saw503 {
		if time.Now().After(deadline) {
			t.Fatal("no 503 from the worker whose predictor cannot restart")
		}
		start := time.Now()
		for _, a := range postBurst(s.url("/predictUnstructured/"), 4) {
			switch {
			case a == "200 v1":
			case strings.HasPrefix(a, "500 ") && strings.Contains(a, fmt.Sprintf("predictor process %d died", preds[0])):
				// Sent to the killed predictor before its worker noticed.
			case is503(a):
				saw503 = true
			default:
				t.Fatalf("unexpected answer: %s", a)
			}
		}
		if took := time.Since(start); took > 35*time.Second {
			t.Fatalf("a burst took %s to be answered", took)
		}
	}
	// /metrics (the master's aggregate) counts the rejections and the unhealthy worker;
	// the master tries a replacement, which cannot load the model either: the old worker
	// keeps its slot and the server keeps running.
	metric := func(name string) string {
		resp, err := http.Get(s.url("/metrics"))
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				return v
			}
		}
		return ""
	}
	waitFor(t, "the no_predictor rejections and the unhealthy worker on /metrics", 60*time.Second, func() bool {
		// A request that waited through the failed restart counts as failed; those that
		// arrive once it has failed are rejected: send some.
		for _, a := range postBurst(s.url("/predictUnstructured/"), 4) {
			if a != "200 v1" && !is503(a) {
				t.Fatalf("unexpected answer: %s", a)
			}
		}
		v := metric(`drum_requests_rejected_total{reason="no_predictor"}`)
		return v != "" && v != "0" && metric(`drum_workers{state="unhealthy"}`) == "1"
	})
	waitFor(t, "a replacement attempt for the unhealthy worker", 60*time.Second, func() bool {
		return strings.Contains(s.log.String(), "replacing worker: its predictor failed to restart") &&
			strings.Contains(s.log.String(), "replacement worker failed; the old one keeps serving")
	})
	select {
	case <-s.done:
		t.Fatalf("the master exited: %v", s.err)
	default:
	}

	// The model file is fixed: the broken worker's next restart loads it.
	write(`return "v2"`)
	sawV2 := false
	waitFor(t, "predictions to succeed again", 90*time.Second, func() bool {
		ok := true
		for _, a := range postBurst(s.url("/predictUnstructured/"), 4) {
			switch {
			case a == "200 v2":
				sawV2 = true
			case a == "200 v1":
			case is503(a):
				ok = false
			default:
				t.Fatalf("unexpected answer: %s", a)
			}
		}
		return ok && sawV2
	})
	waitFor(t, "no unhealthy worker on /metrics", 60*time.Second, func() bool {
		return metric(`drum_workers{state="unhealthy"}`) == "0"
	})
	if strings.Contains(s.log.String(), "start predictor: start predictor:") {
		t.Error("the log repeats 'start predictor:'")
	}
}
