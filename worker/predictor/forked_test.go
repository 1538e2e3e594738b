package predictor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/drum-go/drum/internal/proctree"
)

// startTestZygote starts a zygote and a ForkServer on its worker socket (as a worker
// inherits it); both end with the test.
func startTestZygote(t *testing.T, codeDir string, env ...string) (*Zygote, *ForkServer) {
	t.Helper()
	py := needPython(t)
	z, err := StartZygote(py, codeDir, append(os.Environ(), env...), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(z.Stop)
	dup, err := syscall.Dup(int(z.WorkerSocket().Fd()))
	if err != nil {
		t.Fatal(err)
	}
	fs, err := NewForkServer(os.NewFile(uintptr(dup), "fork"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	return z, fs
}

func forkTemp(t *testing.T, fs *ForkServer, cfg Config) (*Python, error) {
	t.Helper()
	p, err := fs.Start(context.Background(), cfg)
	if err == nil {
		t.Cleanup(func() { p.Close() })
	}
	return p, err
}

func parentOf(pid int) int {
	for parent, kids := range proctree.Children("/proc") {
		for _, k := range kids {
			if k == pid {
				return parent
			}
		}
	}
	return 0
}

// TestForkedPredictorServesGolden: predictors forked from one zygote are its children and
// answer the golden requests as spawned ones do.
func TestForkedPredictorServesGolden(t *testing.T) {
	needGolden(t)
	for _, model := range []string{"regression", "custom"} {
		dir := filepath.Join(goldenDir, "models", model)
		z, fs := startTestZygote(t, dir)
		cfg := modelConfig(t, dir, goldenModels[model])
		cfg.Logger = testLogger(t)
		p, err := forkTemp(t, fs, cfg)
		if err != nil {
			t.Fatalf("fork %s: %v", model, err)
		}
		if got := parentOf(p.Pid()); got != z.Pid() {
			t.Fatalf("%s: predictor %d has parent %d, want the zygote %d", model, p.Pid(), got, z.Pid())
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.Pid()))
		if want := fmt.Sprintf("drum predictor: forked by zygote %d for worker %d", z.Pid(), os.Getpid()); !strings.Contains(string(cmdline), want) {
			t.Fatalf("%s: predictor command line %q, want it to say %q", model, cmdline, want)
		}
		c := loadGolden(t, model, "predict_csv_5")
		res, err := p.Call(context.Background(), &Request{Op: "predict", Format: "csv", Payload: c.payload(t)})
		if err != nil {
			t.Fatalf("%s: %v", model, err)
		}
		_, want := goldenPredictions(t, c.Response.Body)
		if len(res.Values) != len(want) {
			t.Fatalf("%s: %d values, want %d", model, len(res.Values), len(want))
		}
		for i := range want {
			if d := res.Values[i] - want[i]; d > 1e-9 || d < -1e-9 {
				t.Fatalf("%s: value %d = %v, want %v", model, i, res.Values[i], want[i])
			}
		}
	}
}

// TestForkedKillAndDeadline: a forked predictor killed -9 is seen dead with the zygote's
// account of it, and a passed deadline kills it through its pidfd.
func TestForkedKillAndDeadline(t *testing.T) {
	_, fs := startTestZygote(t, "")
	cfg := modelConfig(t, writeModel(t, map[string]string{"custom.py": echoModel}), goldenModel{target: "regression"})
	cfg.Logger = testLogger(t)

	p, err := forkTemp(t, fs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if v := callValue(t, p, context.Background(), echoRequest("7", "0")); v != 7 {
		t.Fatalf("echo 7 gave %v", v)
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		syscall.Kill(p.Pid(), syscall.SIGKILL)
	}()
	_, err = p.Call(context.Background(), echoRequest("1", "30"))
	var de *DiedError
	if !errors.As(err, &de) || de.Reason != "signal: killed" {
		t.Fatalf("want *DiedError with reason \"signal: killed\", got %v", err)
	}

	p2, err := forkTemp(t, fs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var te *TimeoutError
	if _, err := p2.Call(ctx, echoRequest("1", "30")); !errors.As(err, &te) {
		t.Fatalf("want *TimeoutError, got %v", err)
	}
	select {
	case <-p2.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("timed-out forked predictor still running 10 s after its kill")
	}
}

// TestForkedLoadError: a model that fails to load gives the same *LoadError as spawned.
func TestForkedLoadError(t *testing.T) {
	_, fs := startTestZygote(t, "")
	cfg := modelConfig(t, writeModel(t, map[string]string{"custom.py": "def load_model(d):\n    raise ValueError('nope')\n"}), goldenModel{target: "regression"})
	_, err := forkTemp(t, fs, cfg)
	var le *LoadError
	if !errors.As(err, &le) || !strings.Contains(le.Message, "nope") {
		t.Fatalf("want *LoadError mentioning nope, got %v", err)
	}
}

// TestForkUnavailable: a zygote that is gone, or that refuses because it is not
// single-threaded, gives *ForkUnavailableError so the worker can spawn instead.
func TestForkUnavailable(t *testing.T) {
	cfg := modelConfig(t, writeModel(t, map[string]string{"custom.py": echoModel}), goldenModel{target: "regression"})

	z, fs := startTestZygote(t, "")
	syscall.Kill(z.Pid(), syscall.SIGKILL)
	<-z.Done()
	var fu *ForkUnavailableError
	if _, err := forkTemp(t, fs, cfg); !errors.As(err, &fu) {
		t.Fatalf("dead zygote: want *ForkUnavailableError, got %v", err)
	}

	// A thread started at import makes forking unsafe: the zygote refuses with the reason.
	_, fs = startTestZygote(t, "", "PYTHONSTARTUP=", "PYTHONPATH="+writeModel(t, map[string]string{
		"sitecustomize.py": "import threading, time\nthreading.Thread(target=time.sleep, args=(3600,), daemon=True).start()\n",
	}))
	_, err := forkTemp(t, fs, cfg)
	if !errors.As(err, &fu) || !strings.Contains(fu.Reason, "threads") {
		t.Fatalf("threaded zygote: want *ForkUnavailableError about threads, got %v", err)
	}
}

// TestForkedPredictorDiesWithWorker: a forked predictor busy in user code (so it cannot
// see EOF on its request pipe) dies once the worker that asked for it is killed, although
// it is the zygote's child and the zygote lives on.
//
// Two cases: sleeping user code (the predictor's own watch on the worker's pidfd kills it)
// and user code holding the GIL (that watch cannot run: the zygote kills it).
func TestForkedPredictorDiesWithWorker(t *testing.T) {
	for _, spin := range []bool{false, true} {
		z, _ := startTestZygote(t, "")
		testDiesWithWorker(t, func(helper *exec.Cmd) {
			helper.Env = append(helper.Env, "HELPER_FORK=1")
			if spin {
				helper.Env = append(helper.Env, "HELPER_SPIN=1")
			}
			helper.ExtraFiles = []*os.File{z.WorkerSocket()} // fd 3
		})
		select {
		case <-z.Done():
			t.Fatalf("the zygote exited: %s", z.Reason())
		default:
		}
	}
}

// TestForkedPreloadedPickleFollowsTheFile: the zygote unpickles a drop-in artifact once;
// a predictor forked after the file changed loads the new one from disk.
func TestForkedPreloadedPickleFollowsTheFile(t *testing.T) {
	py := needPython(t)
	dir := t.TempDir()
	mk := func(name string, value float64) string {
		path := filepath.Join(t.TempDir(), name)
		script := fmt.Sprintf(`import pickle, sys
from sklearn.dummy import DummyRegressor
m = DummyRegressor(strategy="constant", constant=%g).fit([[0.0]], [0.0])
pickle.dump(m, open(sys.argv[1], "wb"))`, value)
		if out, err := exec.Command(py, "-c", script, path).CombinedOutput(); err != nil {
			t.Fatalf("make pickle: %v\n%s", err, out)
		}
		return path
	}
	one, two := mk("one.pkl", 1), mk("two.pkl", 2)
	if err := os.Rename(one, filepath.Join(dir, "model.pkl")); err != nil {
		t.Fatal(err)
	}
	var zlog strings.Builder
	var mu sync.Mutex
	z, err := StartZygote(py, dir, os.Environ(), hclog.New(&hclog.LoggerOptions{Output: writerFunc(func(b []byte) {
		mu.Lock()
		zlog.Write(b)
		mu.Unlock()
	})}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(z.Stop)
	dup, _ := syscall.Dup(int(z.WorkerSocket().Fd()))
	fs, err := NewForkServer(os.NewFile(uintptr(dup), "fork"))
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	cfg := modelConfig(t, dir, goldenModel{target: "regression"})
	predict := func() float64 {
		p, err := forkTemp(t, fs, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return callValue(t, p, context.Background(), &Request{Op: "predict", Format: "csv", Payload: []byte("x\n5\n")})
	}
	if v := predict(); v != 1 {
		t.Fatalf("first model predicted %v, want 1", v)
	}
	mu.Lock()
	preloaded := strings.Contains(zlog.String(), "model artifact preloaded")
	mu.Unlock()
	if !preloaded {
		t.Fatalf("the zygote did not preload the pickle; its log:\n%s", zlog.String())
	}
	if err := os.Rename(two, filepath.Join(dir, "model.pkl")); err != nil {
		t.Fatal(err)
	}
	if v := predict(); v != 2 {
		t.Fatalf("after replacing model.pkl the forked predictor predicted %v, want 2 (the new file)", v)
	}
}

type writerFunc func([]byte)

func (f writerFunc) Write(b []byte) (int, error) { f(b); return len(b), nil }
