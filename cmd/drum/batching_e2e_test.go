package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drum-go/drum/internal/testnet"
)

// oneRowBodies splits the regression model's X_100.csv into one CSV per row, plus a
// malformed one: row 7 with AVG_fr (a float column) empty, which the model refuses
// ("Input X contains NaN") but which has the same columns and kinds as the others.
func oneRowBodies(t *testing.T) (good [][]byte, bad []byte) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(goldenModel("regression"), "requests", "X_100.csv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	header := lines[0]
	if !strings.HasPrefix(header, "TPA(ADJ)_fr,AVG_fr,") {
		t.Fatalf("unexpected header %q", header)
	}
	for _, row := range lines[1:] {
		good = append(good, []byte(header+"\n"+row+"\n"))
	}
	cells := strings.Split(lines[8], ",")
	cells[1] = ""
	return good, []byte(header + "\n" + strings.Join(cells, ",") + "\n")
}

func postCSV(t *testing.T, s *server, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", s.url("/predict/"), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/csv")
	status, _, got := s.do(req)
	return status, got
}

var batchSeries = regexp.MustCompile(`(?m)^(drum_batch_size_bucket\{le="1"\}|drum_batch_size_count|drum_batch_fallbacks_total) (\d+)$`)

// batchFigures reads the batch series from the master's /metrics.
func batchFigures(t *testing.T, s *server) (single, batches, fallbacks int) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.url("/metrics"), nil)
	_, _, body := s.do(req)
	for _, m := range batchSeries.FindAllStringSubmatch(string(body), -1) {
		n, _ := strconv.Atoi(m[2])
		switch m[1] {
		case `drum_batch_size_bucket{le="1"}`:
			single = n
		case "drum_batch_size_count":
			batches = n
		case "drum_batch_fallbacks_total":
			fallbacks = n
		}
	}
	return single, batches, fallbacks
}

func TestBatchingE2E(t *testing.T) {
	needPython(t)
	for _, tc := range []struct {
		name string
		env  []string
	}{
		{"prefork", nil},
		{"fastapi pool", []string{"MLOPS_RUNTIME_PARAM_DRUM_SERVER_TYPE=fastapi", "MLOPS_RUNTIME_PARAM_DRUM_FASTAPI_EXECUTOR_WORKERS=2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testBatching(t, tc.env)
		})
	}
}

func testBatching(t *testing.T, env []string) {
	good, bad := oneRowBodies(t)
	addr := testnet.FreeAddr(t)
	cmd := exec.Command(drumBin, append([]string{"server", "--code-dir", goldenModel("regression"),
		"--address", addr, "--max-workers", "1"}, modelArgs["regression"]...)...)
	cmd.Env = append(append(os.Environ(), "DRUM_BATCHING=true", "MLOPS_RUNTIME_PARAM_DRUM_WORKER_QUEUE_SIZE=64"), env...)
	s := adoptServer(t, cmd, addr)
	s.waitReady(60 * time.Second)
	if !strings.Contains(s.log.String(), "adaptive batching on") {
		t.Fatalf("the start-up log does not show batching:\n%s", s.log.String())
	}

	// One at a time: the answers batching must reproduce. Nothing waits, so nothing is
	// combined.
	alone := make([][]byte, len(good))
	for i, body := range good {
		status, got := postCSV(t, s, body)
		if status != http.StatusOK {
			t.Fatalf("row %d alone: %d %s", i, status, got)
		}
		alone[i] = got
	}
	badStatus, badAlone := postCSV(t, s, bad)
	if badStatus != http.StatusInternalServerError || !bytes.Contains(badAlone, []byte("Input X contains NaN")) {
		t.Fatalf("malformed row alone: %d %s", badStatus, badAlone)
	}
	// The first rows against DRUM's own answer for X_5.csv.
	golden := loadGolden(t, "regression", "predict_csv_5")
	var want struct{ Predictions []json.Number }
	dec := json.NewDecoder(strings.NewReader(golden.Response.Body))
	dec.UseNumber()
	if err := dec.Decode(&want); err != nil || len(want.Predictions) != 5 {
		t.Fatalf("golden predict_csv_5: %v", err)
	}
	for i, v := range want.Predictions {
		if w := `{"predictions":[` + v.String() + `]}`; strings.TrimSpace(string(alone[i])) != w {
			t.Fatalf("row %d alone: %s, DRUM answers %s", i, alone[i], w)
		}
	}
	waitFor(t, "the sequential figures in /metrics", 10*time.Second, func() bool {
		_, n, _ := batchFigures(t, s)
		return n == len(good)+1
	})
	if single, n, _ := batchFigures(t, s); single != n {
		t.Fatalf("sequential requests were combined: %d of %d calls had one request", single, n)
	}

	// 32 clients at once, every row three times and the malformed row ten times among
	// them: each answer is byte for byte the one it got alone.
	type job struct {
		body []byte
		want []byte
		code int
	}
	var jobs []job
	for round := 0; round < 3; round++ {
		for i, body := range good {
			jobs = append(jobs, job{body, alone[i], http.StatusOK})
			if round == 1 && i%10 == 5 {
				jobs = append(jobs, job{bad, badAlone, http.StatusInternalServerError})
			}
		}
	}
	work := make(chan job)
	var mu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	for c := 0; c < 32; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				status, got := postCSV(t, s, j.body)
				if status != j.code || !bytes.Equal(got, j.want) {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%d %s, alone %d %s", status, got, j.code, j.want))
					mu.Unlock()
				}
			}
		}()
	}
	for _, j := range jobs {
		work <- j
	}
	close(work)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d of %d concurrent answers differ from the lone ones, e.g. %s", len(failures), len(jobs), failures[0])
	}

	// The master's /metrics shows calls that combined several requests, and batches the
	// malformed row failed, retried one by one.
	var single, batches, fallbacks int
	waitFor(t, "the concurrent figures in /metrics", 10*time.Second, func() bool {
		single, batches, fallbacks = batchFigures(t, s)
		return fallbacks > 0 && batches > single
	})
	t.Logf("%d requests in %d predictor calls (%d alone), %d fallbacks", len(jobs), batches-len(good)-1, single-len(good)-1, fallbacks)
}
