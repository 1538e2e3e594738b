package main

// End-to-end tests of forked predictors (DRUM_PREDICTOR_START=fork, the default): one
// zygote per master generation forks every worker's predictor.

import (
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drum-go/drum/internal/testnet"
)

// workersOf lists the master's worker processes (not its zygote).
func workersOf(master int) []int {
	var out []int
	for _, p := range childrenOf(master) {
		if strings.HasSuffix(readCmdline(p), "\x00worker\x00") {
			out = append(out, p)
		}
	}
	sort.Ints(out)
	return out
}

// zygoteOf is the master's zygote, or 0.
func zygoteOf(master int) int {
	for _, p := range childrenOf(master) {
		if strings.Contains(readCmdline(p), "drum zygote") {
			return p
		}
	}
	return 0
}

// predictorsOf lists the predictors serving worker: its children (spawned) or the
// zygote's children forked for it (their command line names the worker).
func predictorsOf(master, worker int) []int {
	out := append([]int{}, childrenOf(worker)...)
	if z := zygoteOf(master); z > 0 {
		for _, p := range childrenOf(z) {
			if strings.Contains(readCmdline(p), fmt.Sprintf("for worker %d\x00", worker)) {
				out = append(out, p)
			}
		}
	}
	return out
}

// servesGolden checks a few golden predictions through the server.
func servesGolden(t *testing.T, s *server, model, what string) {
	t.Helper()
	g := loadGolden(t, model, "predict_csv_5")
	want := parsePredictions(t, []byte(g.Response.Body))
	for i := 0; i < 6; i++ {
		status, _, body := s.replay(g)
		if status != 200 {
			t.Fatalf("%s: status %d: %s", what, status, body)
		}
		samePredictions(t, what, parsePredictions(t, body), want)
	}
}

// TestForkedPredictors: the predictors are children of the zygote and give the golden
// answers (drop-in pickle and custom.py); kill -9 of a predictor, of a worker and of the
// zygote each leave a server that answers, and SIGTERM leaves no process.
func TestForkedPredictors(t *testing.T) {
	needPython(t)
	for _, model := range []string{"regression", "custom"} {
		s := startServer(t, model, 2)
		master := s.cmd.Process.Pid
		z := zygoteOf(master)
		workers := workersOf(master)
		if z == 0 || len(workers) != 2 {
			t.Fatalf("%s: master %d children %v, want 2 workers and a zygote", model, master, childrenOf(master))
		}
		if kids := childrenOf(z); len(kids) != 2 {
			t.Fatalf("%s: zygote %d has children %v, want the 2 predictors", model, z, kids)
		}
		for _, w := range workers {
			if kids := childrenOf(w); len(kids) != 0 {
				t.Fatalf("%s: worker %d has children %v: its predictor was spawned, not forked", model, w, kids)
			}
			if preds := predictorsOf(master, w); len(preds) != 1 {
				t.Fatalf("%s: worker %d has predictors %v, want 1 forked for it", model, w, preds)
			}
		}
		if !strings.Contains(s.log.String(), "predictors fork from a shared zygote") {
			t.Fatalf("%s: start mode not logged:\n%s", model, s.log.String())
		}
		servesGolden(t, s, model, model+" forked")
		s.stop(syscall.SIGTERM, 20*time.Second)
	}

	s := startServer(t, "regression", 2)
	master := s.cmd.Process.Pid
	z := zygoteOf(master)
	seen := processTree(master) // the zygote's children leave the tree once it dies

	// kill -9 of a forked predictor: its worker forks a new one.
	w := workersOf(master)[0]
	pred := predictorsOf(master, w)[0]
	if err := syscall.Kill(pred, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a new forked predictor for the worker", 30*time.Second, func() bool {
		ps := predictorsOf(master, w)
		return len(ps) == 1 && ps[0] != pred && len(childrenOf(w)) == 0
	})
	servesGolden(t, s, "regression", "after kill -9 of a predictor")

	// kill -9 of a worker: its predictor (not its child) exits too; the replacement forks.
	pred = predictorsOf(master, w)[0]
	if err := syscall.Kill(w, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, []int{w, pred}, 10*time.Second)
	waitFor(t, "a replacement worker with a forked predictor", 30*time.Second, func() bool {
		ws := workersOf(master)
		return len(ws) == 2 && ws[0] != w && ws[1] != w && len(predictorsOf(master, ws[0])) == 1 &&
			len(predictorsOf(master, ws[1])) == 1 && strings.Count(s.log.String(), "worker ready") >= 3
	})
	servesGolden(t, s, "regression", "after kill -9 of a worker")
	seen = append(seen, processTree(master)...)

	// kill -9 of the zygote: the predictors it forked keep serving; a predictor that dies
	// afterwards is replaced by a spawned one.
	if err := syscall.Kill(z, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the master to drop the zygote", 30*time.Second, func() bool {
		return strings.Contains(s.log.String(), "the zygote exited")
	})
	servesGolden(t, s, "regression", "after kill -9 of the zygote")
	var orphan int
	for _, p := range seen {
		if alive(p) && strings.Contains(readCmdline(p), "drum predictor: forked") {
			orphan = p
			break
		}
	}
	if orphan == 0 {
		t.Fatalf("no forked predictor survived the zygote (seen %v)", seen)
	}
	if err := syscall.Kill(orphan, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a spawned replacement predictor", 30*time.Second, func() bool {
		for _, w := range workersOf(master) {
			if len(childrenOf(w)) == 1 {
				return true
			}
		}
		return false
	})
	if !strings.Contains(s.log.String(), "predictors start as fresh interpreters from now on") {
		t.Fatalf("fallback to spawn not logged:\n%s", s.log.String())
	}
	servesGolden(t, s, "regression", "after the fallback to spawn")

	seen = append(seen, processTree(master)...)
	if !s.stop(syscall.SIGTERM, 20*time.Second) || s.err != nil {
		t.Fatalf("master exit after SIGTERM: %v\n%s", s.err, s.log.String())
	}
	waitGone(t, seen, 10*time.Second)
}

// TestSpawnStartMode: DRUM_PREDICTOR_START=spawn starts no zygote, and each worker's
// predictor is its own child.
func TestSpawnStartMode(t *testing.T) {
	needPython(t)
	t.Setenv("DRUM_PREDICTOR_START", "spawn")
	s := startServer(t, "regression", 2)
	master := s.cmd.Process.Pid
	if z := zygoteOf(master); z != 0 {
		t.Fatalf("zygote %d started with DRUM_PREDICTOR_START=spawn", z)
	}
	for _, w := range workersOf(master) {
		if kids := childrenOf(w); len(kids) != 1 || !strings.Contains(readCmdline(kids[0]), "drum predictor") {
			t.Fatalf("worker %d has children %v, want its spawned predictor", w, kids)
		}
	}
	if !strings.Contains(s.log.String(), "DRUM_PREDICTOR_START=spawn") {
		t.Fatalf("start mode not logged:\n%s", s.log.String())
	}
	servesGolden(t, s, "regression", "spawned")
}

// TestBadPredictorStart: an unknown DRUM_PREDICTOR_START is a start-up error naming it.
func TestBadPredictorStart(t *testing.T) {
	needPython(t)
	cmd := exec.Command(drumBin, "server", "--code-dir", goldenModel("regression"), "--target-type", "regression", "--address", testnet.FreeAddr(t))
	cmd.Env = append(os.Environ(), "DRUM_PREDICTOR_START=vfork")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), `DRUM_PREDICTOR_START: "vfork" is not a start mode`) {
		t.Fatalf("exit %v, output:\n%s", err, out)
	}
}

// TestUpgradeStartsNewZygote: after SIGHUP the new generation forks from its own zygote,
// which serves the model folder as it is now, and the old zygote leaves with its master.
func TestUpgradeStartsNewZygote(t *testing.T) {
	needPython(t)
	s, dir, pidFile := startVersionServer(t)
	old := s.cmd.Process.Pid
	oldZygote := zygoteOf(old)
	if oldZygote == 0 {
		t.Fatalf("master %d has no zygote: children %v", old, childrenOf(old))
	}
	setVersion(t, dir, 2)
	if err := syscall.Kill(old, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "version 2 to serve", 60*time.Second, func() bool {
		got, err := predictOnce(s.url("/predict/"))
		return err == nil && got == `{"predictions":[2.0]}`
	})
	waitGone(t, []int{old, oldZygote}, 60*time.Second)
	cur, err := readPID(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	z := zygoteOf(cur)
	if z == 0 || z == oldZygote {
		t.Fatalf("new master %d: zygote %d (old one %d), want a new one", cur, z, oldZygote)
	}
	for _, w := range workersOf(cur) {
		if preds := predictorsOf(cur, w); len(preds) != 1 || len(childrenOf(w)) != 0 {
			t.Fatalf("new worker %d: predictors %v, children %v; want one forked by zygote %d", w, preds, childrenOf(w), z)
		}
	}
}
