package predictor

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv makes the test binary act as a worker that owns a predictor (see TestMain).
const helperEnv = "DRUM_PREDICTOR_TEST_HELPER"

// echoModel is a tiny custom model that loads fast (pandas only).
// Column "sleep" delays the answer; column "spin" runs a regular expression that
// backtracks for hours without releasing the GIL; column "stray" first writes a reply
// frame with an id nobody waits for straight onto the reply pipe.
const echoModel = `import json, os, re, struct, time
import pandas as pd

def load_model(code_dir):
    return "model"

def score(data, model, **kwargs):
    if "spin" in data.columns:
        re.match("(a+)+$", "a" * 64 + "b")
    if "sleep" in data.columns:
        time.sleep(float(data["sleep"].iloc[0]))
    if "stray" in data.columns:
        meta = json.dumps({"ok": True, "columns": ["Predictions"], "rows": 1, "dtype": "f8"}).encode()
        body = struct.pack("<d", -1.0)
        os.write(4, struct.pack("<IB3xQI", 16 + len(meta) + len(body), 12, 987654321, len(meta)) + meta + body)
    return pd.DataFrame({"Predictions": [float(x) for x in data.iloc[:, 0]]})
`

// runHelperParent starts a predictor from a goroutine whose thread then exits, keeps it
// busy, prints its pid and waits to be killed.
func runHelperParent() {
	cfg := Config{
		Python:     os.Getenv("HELPER_PYTHON"),
		CodeDir:    os.Getenv("HELPER_CODE_DIR"),
		TargetType: "regression",
		Env:        []string{"PYTHONDONTWRITEBYTECODE=1"},
	}
	type started struct {
		p   *Python
		err error
	}
	ch := make(chan started, 1)
	go func() {
		// This goroutine locks its thread and returns, so the runtime ends the thread:
		// the predictor must not care which thread asked for it.
		runtime.LockOSThread()
		if os.Getenv("HELPER_FORK") != "" { // forked_test.go: ask the test's zygote on fd 3
			fs, err := NewForkServer(os.NewFile(3, "fork"))
			if err != nil {
				ch <- started{nil, err}
				return
			}
			p, err := fs.Start(context.Background(), cfg)
			ch <- started{p, err}
			return
		}
		p, err := StartPython(context.Background(), cfg)
		ch <- started{p, err}
	}()
	s := <-ch
	if s.err != nil {
		fmt.Println("ERR", s.err)
		os.Exit(1)
	}
	// Keep the bridge busy in user code so it cannot notice its parent's death by EOF on
	// fd 3: only the parent-death signal can end it then.
	payload := "x,sleep\n1,600\n"
	if os.Getenv("HELPER_SPIN") != "" {
		payload = "x,spin\n1,1\n"
	}
	go s.p.Call(context.Background(), &Request{Op: "predict", Payload: []byte(payload)})
	time.Sleep(300 * time.Millisecond)
	fmt.Println("PID", s.p.Pid())
	select {}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// "pid (comm) S ...": the state follows the last ')'.
	s := string(stat)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

func TestPredictorDiesWithParent(t *testing.T) {
	testDiesWithWorker(t, nil)
}

// testDiesWithWorker runs a helper worker (prepared by setup, if any) whose busy
// predictor must die once the helper is killed.
func testDiesWithWorker(t *testing.T, setup func(*exec.Cmd)) {
	py := needPython(t)
	dir := writeModel(t, map[string]string{"custom.py": echoModel})
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), helperEnv+"=1", "HELPER_PYTHON="+py, "HELPER_CODE_DIR="+dir)
	if setup != nil {
		setup(helper)
	}
	helper.Stderr = testWriter{t}
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { helper.Process.Kill(); helper.Wait() }()

	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var pid int
	select {
	case line := <-lines:
		f := strings.Fields(line)
		if len(f) != 2 || f[0] != "PID" {
			t.Fatalf("helper said %q", line)
		}
		pid, _ = strconv.Atoi(f[1])
	case <-time.After(30 * time.Second):
		t.Fatal("helper did not start a predictor")
	}
	if !alive(pid) {
		t.Fatalf("predictor %d died when the thread that started it exited", pid)
	}

	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	helper.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("predictor %d outlived its parent by 5 s", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
