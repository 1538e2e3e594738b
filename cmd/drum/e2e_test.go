package main

// End-to-end tests: the real drum binary, real Python predictors, real golden models.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/drum-go/drum/internal/goldentest"
	"github.com/drum-go/drum/internal/proctree"
	"github.com/drum-go/drum/internal/testnet"
	"github.com/drum-go/drum/worker/predictor"
)

var (
	drumBin   string // built once in TestMain
	pythonErr error  // why no interpreter with pandas was found, if none was
	sharedDir = filepath.Join("..", "..", "..", "shared")
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "drum-e2e-")
	if err != nil {
		panic(err)
	}
	drumBin = filepath.Join(dir, "drum")
	if out, err := exec.Command("go", "build", "-o", drumBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build drum: %v\n%s", err, out)
		os.Exit(1)
	}
	_, pythonErr = predictor.FindPython("")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// needPython skips loudly when no interpreter with pandas exists, and fails in CI,
// where scripts/setup.sh must have installed one.
func needPython(t *testing.T) {
	t.Helper()
	if pythonErr == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("CI must have Python with pandas (scripts/setup.sh installs it): %v", pythonErr)
	}
	t.Skipf("NO PYTHON WITH PANDAS FOUND — END-TO-END TEST NOT RUN: %v", pythonErr)
}

func goldenModel(name string) string { return filepath.Join(sharedDir, "golden", "models", name) }

// modelArgs are the command lines the golden recordings were made with.
var modelArgs = map[string][]string{
	"regression": {"--target-type", "regression"},
	"custom":     {"--target-type", "regression"},
	"binary":     {"--target-type", "binary", "--positive-class-label", "Iris-versicolor", "--negative-class-label", "Iris-setosa"},
	"multiclass": {"--target-type", "multiclass", "--class-labels", "class_0", "class_1", "class_2"},
}

// server is a running `drum server`.
type server struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string
	log  *syncBuffer
	done chan struct{}
	err  error // Wait's result, once done is closed
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServer starts drum server on a free loopback port and waits for "drum ready".
// Cleanup stops it by pid (SIGTERM, then SIGKILL) and checks no process is left behind.
func startServer(t *testing.T, model string, workers int, extra ...string) *server {
	t.Helper()
	s := startServerNoWait(t, goldenModel(model), workers, append(append([]string{}, modelArgs[model]...), extra...)...)
	s.waitReady(60 * time.Second)
	return s
}

func startServerNoWait(t *testing.T, codeDir string, workers int, args ...string) *server {
	t.Helper()
	addr := testnet.FreeAddr(t)
	full := append([]string{"server", "--code-dir", codeDir, "--address", addr, "--max-workers", strconv.Itoa(workers)}, args...)
	return adoptServer(t, exec.Command(drumBin, full...), addr)
}

// adoptServer starts an already-configured command (its own flags or environment) as a
// server on addr. Cleanup stops it by pid (SIGTERM, then SIGKILL) and checks that no
// process of its tree is left behind.
func adoptServer(t *testing.T, cmd *exec.Cmd, addr string) *server {
	t.Helper()
	s := &server{t: t, cmd: cmd, addr: addr, log: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.err = cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		tree := processTree(cmd.Process.Pid)
		s.stop(syscall.SIGTERM, 20*time.Second)
		waitGone(t, tree, 10*time.Second)
		if t.Failed() {
			t.Logf("server log:\n%s", s.log.String())
		}
	})
	return s
}

// waitFor polls cond until it holds, failing after limit (a liveness bound, not a
// speed target).
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (s *server) waitReady(limit time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if strings.Contains(s.log.String(), "drum ready") {
			return
		}
		select {
		case <-s.done:
			s.t.Fatalf("server exited during start-up (%v):\n%s", s.err, s.log.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	s.t.Fatalf("server not ready after %s:\n%s", limit, s.log.String())
}

// stop signals the master and waits (bounded); it kills the master if it hangs.
func (s *server) stop(sig syscall.Signal, limit time.Duration) (exited bool) {
	select {
	case <-s.done:
		return true
	default:
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.done:
		return true
	case <-time.After(limit):
		_ = s.cmd.Process.Kill()
		<-s.done
		return false
	}
}

func (s *server) url(path string) string { return "http://" + s.addr + path }

// processTree lists pid and all its descendants (from /proc).
func processTree(root int) []int { return proctree.Tree("/proc", root) }

func childrenOf(pid int) []int { return proctree.Children("/proc")[pid] }

func alive(pid int) bool { return proctree.Alive("/proc", pid) }

func waitGone(t *testing.T, pids []int, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		var left []int
		for _, p := range pids {
			if alive(p) {
				left = append(left, p)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, p := range left {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
			t.Errorf("processes left behind after the master exited: %v", left)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// goldenCase is one recorded DRUM exchange.
type goldenCase struct {
	Request struct {
		Method     string      `json:"method"`
		Path       string      `json:"path"`
		Headers    [][2]string `json:"headers"`
		Body       *string     `json:"body"`
		BodyB64    string      `json:"body_base64"`
		BodyFile   string      `json:"body_file"`
		BodySHA256 string      `json:"body_sha256"`
	} `json:"request"`
	Response struct {
		Status int    `json:"status"`
		Body   string `json:"body"`
	} `json:"response"`
}

func loadGolden(t *testing.T, model, name string) goldenCase {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(sharedDir, "golden", model, name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var g goldenCase
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatalf("%s/%s: %v", model, name, err)
	}
	return g
}

func (g goldenCase) body(t *testing.T) []byte {
	t.Helper()
	switch {
	case g.Request.BodyFile != "":
		b, err := os.ReadFile(filepath.Join(sharedDir, "golden", g.Request.BodyFile))
		if err != nil {
			t.Fatal(err)
		}
		return b
	case g.Request.BodyB64 != "":
		b, err := base64.StdEncoding.DecodeString(g.Request.BodyB64)
		if err != nil {
			t.Fatal(err)
		}
		return b
	case g.Request.Body != nil:
		return []byte(*g.Request.Body)
	}
	return nil
}

// replay sends the recorded request to s.
func (s *server) replay(g goldenCase) (int, http.Header, []byte) {
	s.t.Helper()
	req, err := http.NewRequest(g.Request.Method, s.url(g.Request.Path), bytes.NewReader(g.body(s.t)))
	if err != nil {
		s.t.Fatal(err)
	}
	for _, h := range g.Request.Headers {
		switch strings.ToLower(h[0]) {
		case "host", "content-length":
		default:
			req.Header.Set(h[0], h[1])
		}
	}
	return s.do(req)
}

func (s *server) do(req *http.Request) (int, http.Header, []byte) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		s.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

// prediction is one row: a value (single-column targets) or ordered label/probability pairs.
type prediction struct {
	labels []string
	values []float64
}

// parsePredictions reads {"predictions": [...]}, keeping the key order of row objects.
func parsePredictions(t *testing.T, body []byte) []prediction {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	expect := func(want json.Delim) {
		tok, err := dec.Token()
		if err != nil || tok != want {
			t.Fatalf("predictions body: want %v, got %v (%v) in %s", want, tok, err, body)
		}
	}
	num := func(tok json.Token) float64 {
		n, ok := tok.(json.Number)
		if !ok {
			if tok == nil {
				return math.NaN()
			}
			t.Fatalf("not a number: %v in %s", tok, body)
		}
		f, err := n.Float64()
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	expect('{')
	if tok, _ := dec.Token(); tok != "predictions" {
		t.Fatalf("first key is %v, want predictions: %s", tok, body)
	}
	expect('[')
	var out []prediction
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		if tok != json.Delim('{') {
			out = append(out, prediction{values: []float64{num(tok)}})
			continue
		}
		var p prediction
		for dec.More() {
			k, _ := dec.Token()
			v, _ := dec.Token()
			p.labels = append(p.labels, k.(string))
			p.values = append(p.values, num(v))
		}
		expect('}')
		out = append(out, p)
	}
	return out
}

func samePredictions(t *testing.T, what string, got, want []prediction) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d predictions, want %d", what, len(got), len(want))
	}
	for i := range want {
		if strings.Join(got[i].labels, ",") != strings.Join(want[i].labels, ",") {
			t.Fatalf("%s row %d: labels %v, want %v (same order)", what, i, got[i].labels, want[i].labels)
		}
		for j := range want[i].values {
			if d := math.Abs(got[i].values[j] - want[i].values[j]); !(d <= 1e-9) {
				t.Fatalf("%s row %d col %d: %v, want %v (diff %g)", what, i, j, got[i].values[j], want[i].values[j], d)
			}
		}
	}
}

// TestGoldenPredictions serves each golden model with 2 workers and checks the recorded
// prediction exchanges: numbers within 1e-9, same labels in the same order.
func TestGoldenPredictions(t *testing.T) {
	needPython(t)
	for _, model := range []string{"regression", "binary", "multiclass", "custom"} {
		t.Run(model, func(t *testing.T) {
			s := startServer(t, model, 2)
			for _, name := range []string{"predict_csv_5", "predict_multipart_5", "predict_csv_1"} {
				g := loadGolden(t, model, name)
				status, hdr, body := s.replay(g)
				if status != g.Response.Status {
					t.Fatalf("%s: status %d, want %d: %s", name, status, g.Response.Status, body)
				}
				samePredictions(t, name, parsePredictions(t, body), parsePredictions(t, []byte(g.Response.Body)))
				// Go's client canonicalises the received name; the worker's raw-socket
				// tests check the exact spelling X_Request_ID.
				if hdr.Get("X_Request_ID") == "" || hdr.Get("X-Drum-Version") != "1.17.20.post1" {
					t.Fatalf("%s: missing X_Request_ID / X-Drum-Version in %v", name, hdr)
				}
			}
		})
	}
}

// TestProcessTreeAndShutdown checks the process model: 1 master, 2 workers, 2
// predictors; a worker killed with SIGKILL is replaced; SIGTERM ends everything with 0.
func TestProcessTreeAndShutdown(t *testing.T) {
	needPython(t)
	// The spawned tree: each worker's predictor is its child (forked predictors:
	// zygote_e2e_test.go).
	t.Setenv("DRUM_PREDICTOR_START", "spawn")
	s := startServer(t, "regression", 2)
	master := s.cmd.Process.Pid

	workers := childrenOf(master)
	if len(workers) != 2 {
		t.Fatalf("master %d has %d children %v, want 2 workers", master, len(workers), workers)
	}
	for _, w := range workers {
		if preds := childrenOf(w); len(preds) != 1 {
			t.Fatalf("worker %d has children %v, want exactly 1 predictor", w, preds)
		}
	}
	t.Logf("process tree: master %d -> workers %v -> predictors %v %v", master, workers, childrenOf(workers[0]), childrenOf(workers[1]))

	// Kill -9 one worker: its predictor dies with it and a replacement serves.
	victim, victimPred := workers[0], childrenOf(workers[0])[0]
	killed := time.Now()
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, []int{victim, victimPred}, 10*time.Second)
	g := loadGolden(t, "regression", "predict_csv_5")
	want := parsePredictions(t, []byte(g.Response.Body))
	deadline := time.Now().Add(30 * time.Second) // a liveness bound, not a speed target
	for {
		ws := childrenOf(master)
		ready := 0
		for _, w := range ws {
			if w != victim && len(childrenOf(w)) == 1 {
				ready++
			}
		}
		if ready == 2 && strings.Count(s.log.String(), "worker ready") >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no replacement worker after kill -9 (children %v):\n%s", ws, s.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("replacement worker ready %s after kill -9", time.Since(killed).Round(time.Millisecond))
	// Every request is answered, whichever worker takes it.
	for i := 0; i < 10; i++ {
		status, _, body := s.replay(g)
		if status != 200 {
			t.Fatalf("after replacement: status %d: %s", status, body)
		}
		samePredictions(t, "after replacement", parsePredictions(t, body), want)
	}

	tree := processTree(master)
	start := time.Now()
	if !s.stop(syscall.SIGTERM, 10*time.Second) {
		t.Fatalf("master did not exit within 10 s of SIGTERM:\n%s", s.log.String())
	}
	if s.err != nil {
		t.Fatalf("master exit after SIGTERM: %v, want exit code 0\n%s", s.err, s.log.String())
	}
	t.Logf("SIGTERM to exit: %s", time.Since(start).Round(time.Millisecond))
	waitGone(t, tree, 5*time.Second)
}

// TestMasterKilledTakesTreeDown: SIGKILL to the master leaves no orphan behind.
func TestMasterKilledTakesTreeDown(t *testing.T) {
	needPython(t)
	s := startServer(t, "binary", 2)
	tree := processTree(s.cmd.Process.Pid)
	if len(tree) != 6 || zygoteOf(s.cmd.Process.Pid) == 0 {
		t.Fatalf("process tree %v, want master + 2 workers + zygote + 2 forked predictors", tree)
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	waitGone(t, tree, 10*time.Second)
}

// TestScoreMatchesServer: drum score on X_100 writes what DRUM wrote, and the same
// numbers the server answers.
func TestScoreMatchesServer(t *testing.T) {
	needPython(t)
	for _, model := range []string{"regression", "binary", "multiclass", "custom"} {
		t.Run(model, func(t *testing.T) {
			input := filepath.Join(goldenModel(model), "requests", "X_100.csv")
			out := filepath.Join(t.TempDir(), "out.csv")
			args := append([]string{"score", "--code-dir", goldenModel(model), "--input", input, "--output", out}, modelArgs[model]...)
			if b, err := exec.Command(drumBin, args...).CombinedOutput(); err != nil {
				t.Fatalf("drum score: %v\n%s", err, b)
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join(sharedDir, "golden", "score", model+".X_100.out.csv"))
			if err != nil {
				t.Fatal(err)
			}
			if err := goldentest.SameCSV(got, want, 1e-12); err != nil {
				t.Fatalf("score output differs from DRUM's: %v", err)
			}
			if model != "regression" {
				return
			}
			served := startServer(t, model, 2).predictFile(input)
			rows := csvColumn(t, got)
			if len(rows) != 100 || len(served) != 100 {
				t.Fatalf("score wrote %d rows, server answered %d; want 100 each", len(rows), len(served))
			}
			for i := range rows {
				if d := math.Abs(rows[i] - served[i].values[0]); d > 1e-9 {
					t.Fatalf("row %d: score %v, server %v", i, rows[i], served[i].values[0])
				}
			}
		})
	}
}

// predictFile POSTs a CSV file to /predict/ and returns the predictions.
func (s *server) predictFile(path string) []prediction {
	s.t.Helper()
	body, err := os.ReadFile(path)
	if err != nil {
		s.t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", s.url("/predict/"), bytes.NewReader(body))
	req.Header.Set("Content-Type", "text/csv")
	status, _, resp := s.do(req)
	if status != 200 {
		s.t.Fatalf("server: %d %.300s", status, resp)
	}
	return parsePredictions(s.t, resp)
}

func csvColumn(t *testing.T, b []byte) []float64 {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Scan() // header
	var out []float64
	for sc.Scan() {
		f, err := strconv.ParseFloat(sc.Text(), 64)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	return out
}

// TestScoreStdout: without --output, DRUM prints the DataFrame as text.
func TestScoreStdout(t *testing.T) {
	needPython(t)
	input := filepath.Join(goldenModel("regression"), "requests", "X_5.csv")
	cmd := exec.Command(drumBin, "score", "--code-dir", goldenModel("regression"), "--target-type", "regression", "--input", input)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("drum score: %v\n%s", err, stderr.String())
	}
	want, _ := os.ReadFile(filepath.Join(sharedDir, "golden", "score", "regression.X_5.stdout.txt"))
	if strings.TrimSpace(stdout.String()) != strings.TrimSpace(string(want)) {
		t.Fatalf("stdout:\n%s\nwant:\n%s", stdout.String(), want)
	}
}

// TestBadStartup: every start-up mistake exits non-zero with a message naming it.
func TestBadStartup(t *testing.T) {
	twoArtifacts := t.TempDir()
	for _, f := range []string{"a.pkl", "b.pkl"} {
		if err := os.WriteFile(filepath.Join(twoArtifacts, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A real interpreter that cannot import pandas: Debian's python3 without site-packages.
	noPandas := filepath.Join(t.TempDir(), "python-without-pandas")
	script := "#!/bin/sh\nexec /usr/bin/python3 -S \"$@\"\n"
	if err := os.WriteFile(noPandas, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	reg := goldenModel("regression")
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"unknown target type", []string{"server", "--code-dir", reg, "--target-type", "regresion", "--address", "127.0.0.1:1"}, []string{"--target-type", "regresion", "binary, regression"}},
		{"missing code dir", []string{"server", "--code-dir", "/nonexistent/model", "--target-type", "regression", "--address", "127.0.0.1:1"}, []string{"--code-dir", "/nonexistent/model", "does not exist"}},
		{"no code dir", []string{"server", "--target-type", "regression", "--address", "127.0.0.1:1"}, []string{"--code-dir", "is required"}},
		{"binary without labels", []string{"server", "--code-dir", goldenModel("binary"), "--target-type", "binary", "--address", "127.0.0.1:1"}, []string{"Positive/negative class labels are missing"}},
		{"two artifacts", []string{"server", "--code-dir", twoArtifacts, "--target-type", "regression", "--address", "127.0.0.1:1"}, []string{"Multiple serialized model files found", "a.pkl", "b.pkl"}},
		{"interpreter without pandas", []string{"server", "--code-dir", reg, "--target-type", "regression", "--address", "127.0.0.1:1", "--python", noPandas}, []string{noPandas, "pandas"}},
		{"score without input", []string{"score", "--code-dir", reg, "--target-type", "regression"}, []string{"--input"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "interpreter without pandas" {
				if _, err := os.Stat("/usr/bin/python3"); err != nil {
					t.Skip("no /usr/bin/python3 to build an interpreter without pandas from")
				}
			}
			cmd := exec.Command(drumBin, tc.args...)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("exit 0, want non-zero; output:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Fatalf("output does not name %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestModelThatNeverLoads: the master gives up after its boot budget, exits non-zero,
// and says why (the model's own error), instead of restarting forever.
func TestModelThatNeverLoads(t *testing.T) {
	needPython(t)
	dir := t.TempDir()
	code := "def load_model(code_dir):\n    raise RuntimeError('weights file is corrupt')\n\ndef score(data, model, **kw):\n    pass\n"
	if err := os.WriteFile(filepath.Join(dir, "custom.py"), []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServerNoWait(t, dir, 2, "--target-type", "regression")
	select {
	case <-s.done:
	case <-time.After(90 * time.Second):
		t.Fatalf("master still running after 90 s with a model that cannot load:\n%s", s.log.String())
	}
	if s.err == nil {
		t.Fatalf("master exited 0; want non-zero:\n%s", s.log.String())
	}
	if !strings.Contains(s.log.String(), "weights file is corrupt") {
		t.Fatalf("log does not carry the load error:\n%s", s.log.String())
	}
}
