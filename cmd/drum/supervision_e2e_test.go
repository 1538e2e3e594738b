package main

// End-to-end tests of the master's supervision (issue 3): upgrades, restarts,
// heartbeats, recycling and the PID 1 role, with the real binary under real load.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/drum-go/drum/internal/proctree"
	"github.com/drum-go/drum/internal/testnet"
)

// versionModel is a custom.py model whose prediction is the number in version.txt, so
// a test can tell which generation answered; a negative version refuses to load.
const versionModel = `import os
import pandas as pd

def load_model(code_dir):
    with open(os.path.join(code_dir, "version.txt")) as f:
        v = float(f.read())
    if v < 0:
        raise RuntimeError("refusing to load model version %s" % v)
    return v

def score(data, model, **kwargs):
    return pd.DataFrame({"Predictions": [model] * len(data)})
`

func writeVersionModel(t *testing.T, version int) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "custom.py"), []byte(versionModel), 0o644); err != nil {
		t.Fatal(err)
	}
	setVersion(t, dir, version)
	return dir
}

func setVersion(t *testing.T, dir string, v int) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "version.txt"), []byte(strconv.Itoa(v)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// loadGen keeps conc clients posting to url until stopped (bounded by maxRequests).
// Each request uses a fresh connection: that is what "never refused or reset" is
// about; keep-alive clients additionally race the server closing idle connections.
type loadGen struct {
	sent, failed atomic.Int64
	mu           sync.Mutex
	errs         []string
	seen         map[string]int // response bodies seen (model versions)
	stop         chan struct{}
	wg           sync.WaitGroup
}

func startLoad(t *testing.T, url string, body []byte, conc int, maxRequests int64) *loadGen {
	return startLoadWith(t, url, body, conc, maxRequests, false)
}

// startLoadWith can also reuse connections (keep-alive), as most real clients do.
func startLoadWith(t *testing.T, url string, body []byte, conc int, maxRequests int64, keepAlive bool) *loadGen {
	t.Helper()
	l := &loadGen{stop: make(chan struct{}), seen: map[string]int{}}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: conc}, Timeout: 30 * time.Second}
	for i := 0; i < conc; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				if l.sent.Add(1) > maxRequests {
					l.sent.Add(-1)
					return
				}
				resp, err := client.Post(url, "text/csv", bytes.NewReader(body))
				var got []byte
				if err == nil {
					got, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d: %s", resp.StatusCode, got)
					}
				}
				l.mu.Lock()
				if err != nil {
					l.failed.Add(1)
					if len(l.errs) < 5 {
						l.errs = append(l.errs, err.Error())
					}
				} else {
					l.seen[string(got)]++
				}
				l.mu.Unlock()
			}
		}()
	}
	return l
}

func (l *loadGen) halt() (sent, failed int64) {
	close(l.stop)
	l.wg.Wait()
	return l.sent.Load(), l.failed.Load()
}

// lastBody is a fresh request's answer, for checking which model version serves.
func predictOnce(url string) (string, error) {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
	resp, err := client.Post(url, "text/csv", strings.NewReader("a\n1\n"))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// startVersionServer serves version 1 of the version model with 2 workers and a PID
// file, ready; cleanup ends whichever master is current then.
func startVersionServer(t *testing.T) (*server, string, string) {
	t.Helper()
	dir := writeVersionModel(t, 1)
	pidFile := filepath.Join(t.TempDir(), "drum.pid")
	s := startServerNoWait(t, dir, 2, "--target-type", "regression", "--pid-file", pidFile)
	killMastersOnCleanup(t, pidFile)
	s.waitReady(60 * time.Second)
	return s, dir, pidFile
}

// killMastersOnCleanup ends whatever master the PID file names when the test ends
// (after upgrades the first master is long gone), and checks its tree is gone.
func killMastersOnCleanup(t *testing.T, pidFile string) {
	t.Cleanup(func() {
		pid, err := readPID(pidFile)
		if err != nil || !alive(pid) {
			return
		}
		tree := processTree(pid)
		_ = syscall.Kill(pid, syscall.SIGTERM)
		waitGone(t, tree, 20*time.Second)
	})
}

func readPID(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// TestUpgradeUnderLoad: five SIGHUP upgrades under steady load lose no request, and
// each new generation serves the model folder as it is now.
func TestUpgradeUnderLoad(t *testing.T) {
	needPython(t)
	s, dir, pidFile := startVersionServer(t)
	waitFor(t, "pid file", 10*time.Second, func() bool { _, err := readPID(pidFile); return err == nil })

	load := startLoad(t, s.url("/predict/"), []byte("a\n1\n"), 3, 200000)
	kept := startLoadWith(t, s.url("/predict/"), []byte("a\n1\n"), 2, 200000, true)
	start := time.Now()
	for v := 2; v <= 6; v++ {
		old, _ := readPID(pidFile)
		setVersion(t, dir, v)
		if err := syscall.Kill(old, syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf(`{"predictions":[%d.0]}`, v)
		waitFor(t, fmt.Sprintf("version %d to serve", v), 60*time.Second, func() bool {
			got, err := predictOnce(s.url("/predict/"))
			return err == nil && got == want
		})
		waitFor(t, "old master to exit", 60*time.Second, func() bool { return !alive(old) })
		if cur, _ := readPID(pidFile); cur == old {
			t.Fatalf("pid file still names the old master %d after upgrade %d", old, v-1)
		}
	}
	sent, failed := load.halt()
	ksent, kfailed := kept.halt()
	t.Logf("5 upgrades in %s: %d requests on new connections, %d failed; %d on keep-alive connections, %d failed %v; answers by body: %v",
		time.Since(start).Round(time.Millisecond), sent, failed, ksent, kfailed, kept.errs, load.seen)
	if failed != 0 {
		t.Fatalf("%d of %d requests failed during upgrades: %v\n%s", failed, sent, load.errs, s.log.String())
	}
}

// TestUpgradeWithBrokenModel: a new generation that cannot load leaves the old one
// serving with no failed request; fixing the folder and a second SIGHUP upgrades.
func TestUpgradeWithBrokenModel(t *testing.T) {
	needPython(t)
	s, dir, _ := startVersionServer(t)
	master := s.cmd.Process.Pid

	load := startLoad(t, s.url("/predict/"), []byte("a\n1\n"), 4, 200000)
	setVersion(t, dir, -1)
	if err := syscall.Kill(master, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the failed upgrade to be logged", 90*time.Second, func() bool {
		return strings.Contains(s.log.String(), "upgrade failed; the current generation keeps serving")
	})
	if !strings.Contains(s.log.String(), "refusing to load model version -1") {
		t.Errorf("the new generation's load error is not in the log:\n%s", s.log.String())
	}
	if got, err := predictOnce(s.url("/predict/")); err != nil || got != `{"predictions":[1.0]}` {
		t.Fatalf("after the failed upgrade: %q, %v; want version 1 still serving", got, err)
	}
	// A later SIGHUP can try again.
	setVersion(t, dir, 2)
	if err := syscall.Kill(master, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "version 2 to serve", 60*time.Second, func() bool {
		got, err := predictOnce(s.url("/predict/"))
		return err == nil && got == `{"predictions":[2.0]}`
	})
	sent, failed := load.halt()
	t.Logf("failed upgrade then a good one: %d requests, %d failed", sent, failed)
	if failed != 0 {
		t.Fatalf("%d of %d requests failed: %v", failed, sent, load.errs)
	}
}

// TestFailedUpgradeKeepsControlSocket: an upgrade whose model does not load leaves the
// old master fully in charge: its default control socket ($TMPDIR/drum-PORT.sock)
// still answers drum ctl, its PID file still names it and /metrics still answers, so
// drum ctl reload can retry once the model is fixed, and ctl reaches the new master.
func TestFailedUpgradeKeepsControlSocket(t *testing.T) {
	needPython(t)
	dir := writeVersionModel(t, 1)
	tmp := t.TempDir()
	pidFile := filepath.Join(tmp, "drum.pid")
	addr, maddr := testnet.FreeAddr(t), testnet.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	sock := filepath.Join(tmp, "drum-"+port+".sock") // the default for --address
	env := append(os.Environ(), "TMPDIR="+tmp, "DRUM_METRICS_ADDRESS="+maddr)
	cmd := exec.Command(drumBin, "server", "--code-dir", dir, "--address", addr, "--max-workers", "2",
		"--target-type", "regression", "--pid-file", pidFile)
	cmd.Env = env
	s := adoptServer(t, cmd, addr)
	killMastersOnCleanup(t, pidFile)
	s.waitReady(60 * time.Second)
	master := s.cmd.Process.Pid

	ctl := func(args ...string) (string, error) {
		c := exec.Command(drumBin, append([]string{"ctl", "--address", addr}, args...)...)
		c.Env = env
		out, err := c.CombinedOutput()
		return string(out), err
	}
	ctlMaster := func() (int, error) { // the pid answering drum ctl status
		out, err := ctl("--json")
		if err != nil {
			return 0, fmt.Errorf("%v: %s", err, out)
		}
		var r struct {
			Pid int `json:"master_pid"`
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			return 0, fmt.Errorf("%v: %s", err, out)
		}
		return r.Pid, nil
	}
	metricsOK := func() error {
		resp, err := http.Get("http://" + maddr + "/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("no control socket at the default path: %v", err)
	}
	if pid, err := ctlMaster(); err != nil || pid != master {
		t.Fatalf("drum ctl status before the upgrade: pid %d, %v; want %d", pid, err, master)
	}

	// Break the model and upgrade: the new master fails and must leave everything be.
	setVersion(t, dir, -1)
	if err := syscall.Kill(master, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the failed upgrade to be logged", 120*time.Second, func() bool {
		return strings.Contains(s.log.String(), "upgrade failed; the current generation keeps serving")
	})
	// The failed master may still be on its way out: give it time to do damage.
	waitFor(t, "the failed master to exit", 30*time.Second, func() bool {
		for _, pid := range childrenOf(master) {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if argv := strings.Split(string(b), "\x00"); len(argv) > 1 && argv[1] == "server" {
				return false // the new master, a child of the old one
			}
		}
		return true
	})
	time.Sleep(500 * time.Millisecond)
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("after a failed upgrade the control socket is gone: %v", err)
	}
	if pid, err := ctlMaster(); err != nil || pid != master {
		t.Fatalf("drum ctl status after a failed upgrade: pid %d, %v; want the old master %d", pid, err, master)
	}
	if pid, err := readPID(pidFile); err != nil || pid != master {
		t.Fatalf("after a failed upgrade the PID file holds %d (%v); want the old master %d", pid, err, master)
	}
	if err := metricsOK(); err != nil {
		t.Fatalf("/metrics after a failed upgrade: %v", err)
	}
	if got, err := predictOnce(s.url("/predict/")); err != nil || got != `{"predictions":[1.0]}` {
		t.Fatalf("after the failed upgrade: %q, %v; want version 1 still serving", got, err)
	}

	// Fix the model and retry through the control socket.
	setVersion(t, dir, 2)
	if out, err := ctl("reload"); err != nil {
		t.Fatalf("drum ctl reload after a failed upgrade: %v\n%s", err, out)
	}
	var newMaster int
	waitFor(t, "a new master on the control socket", 120*time.Second, func() bool {
		pid, err := ctlMaster()
		newMaster = pid
		return err == nil && pid != master
	})
	// The old generation stops accepting a moment after the new master is ready: until
	// then either may answer, and an answer must come from one of them.
	waitFor(t, "version 2 to answer", 60*time.Second, func() bool {
		got, err := predictOnce(s.url("/predict/"))
		if err != nil || got != `{"predictions":[1.0]}` && got != `{"predictions":[2.0]}` {
			t.Fatalf("during the retried upgrade: %q, %v; want version 1 or 2", got, err)
		}
		return got == `{"predictions":[2.0]}`
	})
	waitFor(t, "the old master to exit", 60*time.Second, func() bool { return !alive(master) })
	if pid, err := ctlMaster(); err != nil || pid != newMaster {
		t.Fatalf("drum ctl status once the old master exited: pid %d, %v; want %d", pid, err, newMaster)
	}
	if pid, err := readPID(pidFile); err != nil || pid != newMaster {
		t.Fatalf("the PID file holds %d (%v); want the new master %d", pid, err, newMaster)
	}
	if err := metricsOK(); err != nil {
		t.Fatalf("/metrics after the upgrade: %v", err)
	}
	// The new master owns the socket now: a clean stop removes it and the PID file.
	tree := processTree(newMaster)
	if out, err := ctl("drain"); err != nil {
		t.Fatalf("drum ctl drain: %v\n%s", err, out)
	}
	waitGone(t, tree, 40*time.Second)
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("the control socket outlived the last master: %v", err)
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("the PID file outlived the last master: %v", err)
	}
}

// TestKillWorkerUnderLoad: kill -9 of one worker costs at most the requests that
// worker held; a replacement comes up and the reason is logged.
func TestKillWorkerUnderLoad(t *testing.T) {
	needPython(t)
	s := startServerNoWait(t, writeVersionModel(t, 1), 2, "--target-type", "regression")
	s.waitReady(60 * time.Second)
	const conc = 4
	load := startLoad(t, s.url("/predict/"), []byte("a\n1\n"), conc, 200000)
	time.Sleep(300 * time.Millisecond)
	victim := workersOf(s.cmd.Process.Pid)[0]
	killed := time.Now()
	_ = syscall.Kill(victim, syscall.SIGKILL)
	waitFor(t, "replacement worker", 30*time.Second, func() bool { return strings.Count(s.log.String(), "worker ready") >= 3 })
	recovered := time.Since(killed)
	time.Sleep(300 * time.Millisecond)
	sent, failed := load.halt()
	t.Logf("kill -9 of worker %d under load: %d requests, %d failed, replacement ready after %s", victim, sent, failed, recovered.Round(time.Millisecond))
	if failed > conc {
		t.Fatalf("%d requests failed; at most the %d a worker can hold may: %v", failed, conc, load.errs)
	}
	if !strings.Contains(s.log.String(), "signal killed") {
		t.Fatalf("exit reason not logged:\n%s", s.log.String())
	}
}

// TestHeartbeatTimeout: a worker that stops answering (SIGSTOP) is killed with its
// predictor and replaced once the heartbeat timeout passes.
func TestHeartbeatTimeout(t *testing.T) {
	needPython(t)
	dir := writeVersionModel(t, 1)
	addr := testnet.FreeAddr(t)
	cmd := exec.Command(drumBin, "server", "--code-dir", dir, "--target-type", "regression", "--address", addr, "--max-workers", "2")
	cmd.Env = append(os.Environ(), `MLOPS_RUNTIME_PARAM_DRUM_WORKER_HEARTBEAT_TIMEOUT={"type":"numeric","payload":3}`)
	s := adoptServer(t, cmd, addr)
	s.waitReady(60 * time.Second)
	victim := workersOf(s.cmd.Process.Pid)[0]
	victimPred := predictorsOf(s.cmd.Process.Pid, victim)
	stopped := time.Now()
	if err := syscall.Kill(victim, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the silent worker to be killed", 30*time.Second, func() bool {
		return strings.Contains(s.log.String(), "worker missed its heartbeats")
	})
	waitGone(t, append([]int{victim}, victimPred...), 10*time.Second)
	waitFor(t, "replacement worker", 30*time.Second, func() bool { return strings.Count(s.log.String(), "worker ready") >= 3 })
	t.Logf("SIGSTOPped worker replaced %s after it stopped (timeout 3 s)", time.Since(stopped).Round(time.Millisecond))
	if got, err := predictOnce(s.url("/predict/")); err != nil || got != `{"predictions":[1.0]}` {
		t.Fatalf("after replacement: %q %v", got, err)
	}
}

// TestTransientLoadFailure: a model that fails to load once and then succeeds ends up
// serving.
func TestTransientLoadFailure(t *testing.T) {
	needPython(t)
	dir := t.TempDir()
	code := `import os
import pandas as pd

def load_model(code_dir):
    marker = os.path.join(code_dir, "tried-once")
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("transient: storage not mounted yet")
    return 7.0

def score(data, model, **kwargs):
    return pd.DataFrame({"Predictions": [model] * len(data)})
`
	if err := os.WriteFile(filepath.Join(dir, "custom.py"), []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServerNoWait(t, dir, 1, "--target-type", "regression")
	s.waitReady(60 * time.Second)
	if !strings.Contains(s.log.String(), "transient: storage not mounted yet") {
		t.Fatalf("the first failure is not logged:\n%s", s.log.String())
	}
	if got, err := predictOnce(s.url("/predict/")); err != nil || got != `{"predictions":[7.0]}` {
		t.Fatalf("got %q %v", got, err)
	}
}

// TestRecyclingUnderLoad: with max-requests and jitter, workers are replaced one at a
// time while the others serve, and no request fails.
func TestRecyclingUnderLoad(t *testing.T) {
	needPython(t)
	dir := writeVersionModel(t, 1)
	addr := testnet.FreeAddr(t)
	cmd := exec.Command(drumBin, "server", "--code-dir", dir, "--target-type", "regression", "--address", addr, "--max-workers", "2")
	cmd.Env = append(os.Environ(),
		`MLOPS_RUNTIME_PARAM_DRUM_GUNICORN_MAX_REQUESTS={"type":"numeric","payload":40}`,
		`MLOPS_RUNTIME_PARAM_DRUM_GUNICORN_MAX_REQUESTS_JITTER={"type":"numeric","payload":20}`)
	s := adoptServer(t, cmd, addr)
	s.waitReady(60 * time.Second)
	load := startLoad(t, s.url("/predict/"), []byte("a\n1\n"), 4, 100000)
	waitFor(t, "three recycles", 90*time.Second, func() bool {
		return strings.Count(s.log.String(), "recycling worker") >= 3
	})
	sent, failed := load.halt()
	t.Logf("recycling under load: %d requests, %d failed, %d recycles", sent, failed, strings.Count(s.log.String(), "recycling worker"))
	if failed != 0 {
		t.Fatalf("%d of %d requests failed while recycling: %v", failed, sent, load.errs)
	}
}

// TestPID1 runs drum as PID 1 of a new PID namespace: an orphaned grandchild is
// reaped, SIGHUP upgrades without ending the namespace, TERM drains and exits 0.
func TestPID1(t *testing.T) {
	needPython(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root for unshare --pid")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare (util-linux) not installed")
	}
	dir := writeVersionModel(t, 1)
	// load_model leaves an orphan behind: a double-forked grandchild that exits at once
	// and must be reaped by PID 1 (else it stays a zombie).
	orphan := `
def _orphan():
    import os
    pid = os.fork()
    if pid == 0:
        if os.fork() == 0:
            import time
            time.sleep(0.5)
            os._exit(0)
        os._exit(0)
    os.waitpid(pid, 0)
_orphan()
`
	f, err := os.OpenFile(filepath.Join(dir, "custom.py"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(orphan)
	f.Close()
	addr := testnet.FreeAddr(t)
	// --kill-child: if the test dies, the namespace's init gets SIGTERM and ends it.
	cmd := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "--kill-child=SIGTERM", drumBin, "server", "--code-dir", dir,
		"--target-type", "regression", "--address", addr, "--max-workers", "2")
	s := adoptServer(t, cmd, addr)
	s.waitReady(60 * time.Second)
	if !strings.Contains(s.log.String(), "running as PID 1") {
		t.Fatalf("drum did not take the init role:\n%s", s.log.String())
	}
	init := childrenOf(s.cmd.Process.Pid)
	if len(init) != 1 {
		t.Fatalf("unshare children %v, want drum as the namespace's PID 1", init)
	}
	// No zombie may stay in the namespace once the orphans have exited: the orphan
	// was reparented to PID 1, which must have reaped it.
	time.Sleep(time.Second)
	if z := zombiesUnder(processTree(init[0])); len(z) > 0 {
		t.Fatalf("zombies %v left in the namespace: PID 1 does not reap", z)
	}
	// SIGHUP: the namespace survives the master's replacement and serves the new model.
	setVersion(t, dir, 2)
	_ = syscall.Kill(init[0], syscall.SIGHUP)
	waitFor(t, "version 2 after SIGHUP", 60*time.Second, func() bool {
		got, err := predictOnce(s.url("/predict/"))
		return err == nil && got == `{"predictions":[2.0]}`
	})
	waitFor(t, "init to follow the new master", 30*time.Second, func() bool {
		return strings.Contains(s.log.String(), "following the new one")
	})
	select {
	case <-s.done:
		t.Fatalf("the namespace ended on SIGHUP:\n%s", s.log.String())
	default:
	}
	// TERM to PID 1 (unshare forwards nothing): drains and exits 0, which ends the
	// namespace and so unshare, which exits with PID 1's status.
	if err := syscall.Kill(init[0], syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(init[0], syscall.SIGKILL)
		t.Fatalf("no exit after SIGTERM:\n%s", s.log.String())
	}
	if s.err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", s.err, s.log.String())
	}
}

// zombiesUnder lists zombie processes whose parent is one of pids (the process tree
// itself leaves zombies out).
func zombiesUnder(pids []int) []int {
	parents := map[int]bool{}
	for _, p := range pids {
		parents[p] = true
	}
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		f := proctree.StatFields(b)
		if len(f) >= 2 && f[0] == "Z" {
			if ppid, _ := strconv.Atoi(f[1]); parents[ppid] {
				out = append(out, pid)
			}
		}
	}
	return out
}

// TestSystemdNotifyHandover: under Type=notify the master reports READY=1 with its pid,
// and after SIGHUP the new master reports MAINPID=<its pid>, so systemd follows it.
func TestSystemdNotifyHandover(t *testing.T) {
	needPython(t)
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := make(chan string, 16)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	expect := func(what string, match func(string) bool) string {
		t.Helper()
		deadline := time.After(60 * time.Second)
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					t.Fatalf("notify socket closed waiting for %s", what)
				}
				if match(m) {
					return m
				}
			case <-deadline:
				t.Fatalf("no %s notification", what)
			}
		}
	}
	dir := writeVersionModel(t, 1)
	pidFile := filepath.Join(t.TempDir(), "drum.pid")
	addr := testnet.FreeAddr(t)
	cmd := exec.Command(drumBin, "server", "--code-dir", dir, "--target-type", "regression", "--address", addr,
		"--max-workers", "1", "--pid-file", pidFile)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	s := adoptServer(t, cmd, addr)
	killMastersOnCleanup(t, pidFile)
	first := s.cmd.Process.Pid
	expect("READY=1 from the first master", func(m string) bool {
		return strings.Contains(m, "READY=1") && strings.Contains(m, fmt.Sprintf("MAINPID=%d", first))
	})
	_ = syscall.Kill(first, syscall.SIGHUP)
	expect("RELOADING=1", func(m string) bool { return strings.Contains(m, "RELOADING=1") })
	m := expect("READY=1 from the new master", func(m string) bool {
		return strings.Contains(m, "READY=1") && strings.Contains(m, "MAINPID=") && !strings.Contains(m, fmt.Sprintf("MAINPID=%d", first))
	})
	newPid, _ := readPID(pidFile)
	if !strings.Contains(m, fmt.Sprintf("MAINPID=%d", newPid)) {
		t.Fatalf("new master announced %q; the pid file names %d", m, newPid)
	}
}

// TestSystemdUnitVerifies checks deploy/drum.service with systemd's own verifier.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	unit, err := os.ReadFile(filepath.Join("..", "..", "deploy", "drum.service"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "drum.service")
	if err := os.WriteFile(path, bytes.ReplaceAll(unit, []byte("/usr/local/bin/drum"), []byte(drumBin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestCtl drives a server through its control socket: status, add, kill, remove,
// reload (a new master answers on the same socket) and drain (exit 0).
func TestCtl(t *testing.T) {
	needPython(t)
	dir := writeVersionModel(t, 1)
	sock := filepath.Join(t.TempDir(), "drum.sock")
	pidFile := filepath.Join(t.TempDir(), "drum.pid")
	s := startServerNoWait(t, dir, 2, "--target-type", "regression", "--control-socket", sock, "--pid-file", pidFile)
	killMastersOnCleanup(t, pidFile)
	s.waitReady(60 * time.Second)
	ctl := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(drumBin, append([]string{"ctl", "--socket", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("drum ctl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	readyWorkers := func() int { return strings.Count(ctl("status"), " ready ") }
	if n := readyWorkers(); n != 2 {
		t.Fatalf("status shows %d ready workers, want 2:\n%s", n, ctl("status"))
	}
	ctl("add")
	waitFor(t, "3 ready workers", 30*time.Second, func() bool { return readyWorkers() == 3 })
	ctl("kill", "1")
	waitFor(t, "worker 1 replaced", 30*time.Second, func() bool {
		return readyWorkers() == 3 && strings.Contains(s.log.String(), "drum ctl: killing worker")
	})
	ctl("remove")
	waitFor(t, "2 workers", 30*time.Second, func() bool { return readyWorkers() == 2 && len(workersOf(s.cmd.Process.Pid)) == 2 })
	for args, want := range map[string]string{
		"frobnicate": "unknown command", "add 5": "takes no argument", "kill abc": "positive number", "kill 1 2": "one worker id",
	} {
		out, err := exec.Command(drumBin, append([]string{"ctl", "--socket", sock}, strings.Fields(args)...)...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), want) {
			t.Fatalf("drum ctl %s: %v\n%s", args, err, out)
		}
	}
	// reload: the new master takes over the same socket.
	ctl("reload")
	waitFor(t, "the new master on the control socket", 60*time.Second, func() bool {
		out, err := exec.Command(drumBin, "ctl", "--socket", sock, "--json").CombinedOutput()
		return err == nil && !strings.Contains(string(out), fmt.Sprintf(`"master_pid": %d`, s.cmd.Process.Pid))
	})
	newMaster, _ := readPID(pidFile)
	if newMaster == s.cmd.Process.Pid {
		t.Fatalf("drum ctl reached a new master before the pid file named it")
	}
	waitFor(t, "the old master to exit", 60*time.Second, func() bool { return !alive(s.cmd.Process.Pid) })
	tree := processTree(newMaster)
	ctl("drain")
	waitGone(t, tree, 40*time.Second)
}

// TestTermUnderLoad: SIGTERM with more connections than workers (one worker, a slow
// model, a dozen requests waiting): every accepted request is answered, a connection
// made after the stop began is refused, and the master exits 0.
func TestTermUnderLoad(t *testing.T) {
	needPython(t)
	dir := t.TempDir()
	code := "import time\nimport pandas as pd\n\ndef load_model(code_dir):\n    return 1\n\n" +
		"def score(data, model, **kwargs):\n    time.sleep(0.2)\n    return pd.DataFrame({'Predictions': [1.0] * len(data)})\n"
	if err := os.WriteFile(filepath.Join(dir, "custom.py"), []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServerNoWait(t, dir, 1, "--target-type", "regression")
	s.waitReady(60 * time.Second)
	const clients = 12
	results := make(chan error, clients)
	for i := 0; i < clients; i++ {
		go func() {
			got, err := predictOnce(s.url("/predict/"))
			if err == nil && got != `{"predictions":[1.0]}` {
				err = fmt.Errorf("answer %q", got)
			}
			results <- err
		}()
	}
	time.Sleep(300 * time.Millisecond) // all connected, most waiting for the predictor
	stopped := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// While the queued requests are still being answered, the socket no longer takes
	// new connections: refused at once (retryable), not accepted and later reset.
	time.Sleep(400 * time.Millisecond)
	if c, err := net.DialTimeout("tcp", s.addr, time.Second); err == nil {
		c.Close()
		t.Errorf("a connection made during the drain was accepted")
	}
	failed := 0
	for i := 0; i < clients; i++ {
		if err := <-results; err != nil {
			failed++
			t.Errorf("request: %v", err)
		}
	}
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("no exit 30 s after SIGTERM:\n%s", s.log.String())
	}
	if s.err != nil {
		t.Fatalf("exit after SIGTERM: %v", s.err)
	}
	t.Logf("SIGTERM with %d requests queued on 1 worker: %d failed, exit 0 after %s", clients, failed, time.Since(stopped).Round(time.Millisecond))
}

// TestLogFileReopen: after logrotate moves the log file, SIGUSR1 makes the master write
// to a new file at the same path.
func TestLogFileReopen(t *testing.T) {
	needPython(t)
	logPath := filepath.Join(t.TempDir(), "drum.log")
	addr := testnet.FreeAddr(t)
	cmd := exec.Command(drumBin, "server", "--code-dir", writeVersionModel(t, 1), "--target-type", "regression",
		"--address", addr, "--max-workers", "1", "--log-file", logPath)
	s := adoptServer(t, cmd, addr)
	fileHas := func(path, what string) func() bool {
		return func() bool { b, _ := os.ReadFile(path); return strings.Contains(string(b), what) }
	}
	waitFor(t, "drum ready in the log file", 60*time.Second, fileHas(logPath, "drum ready"))
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a new log file", 10*time.Second, fileHas(logPath, "log file reopened"))
	// Workers' lines reach the new file too (they are re-logged by the master).
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	waitFor(t, "the stop in the new file", 30*time.Second, fileHas(logPath, "worker exited"))
	if b, _ := os.ReadFile(logPath + ".1"); strings.Contains(string(b), "log file reopened") {
		t.Fatalf("the rotated file kept receiving lines after SIGUSR1")
	}
}

// TestHUPWhileDraining: a SIGHUP that arrives while the previous generation still drains
// is not lost: it is carried out once that generation has exited.
func TestHUPWhileDraining(t *testing.T) {
	needPython(t)
	dir := t.TempDir()
	code := versionModel + "\nimport time\n_score = score\ndef score(data, model, **kwargs):\n    if 'slow' in data.columns:\n        time.sleep(3)\n    return _score(data, model, **kwargs)\n"
	if err := os.WriteFile(filepath.Join(dir, "custom.py"), []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	setVersion(t, dir, 1)
	pidFile := filepath.Join(t.TempDir(), "drum.pid")
	s := startServerNoWait(t, dir, 1, "--target-type", "regression", "--pid-file", pidFile)
	killMastersOnCleanup(t, pidFile)
	s.waitReady(60 * time.Second)
	first := s.cmd.Process.Pid
	// A slow request keeps the first generation draining for ~3 s after the upgrade.
	slow := make(chan error, 1)
	go func() {
		client := &http.Client{Timeout: 30 * time.Second}
		resp, err := client.Post(s.url("/predict/"), "text/csv", strings.NewReader("slow\n1\n"))
		if err == nil {
			resp.Body.Close()
		}
		slow <- err
	}()
	time.Sleep(300 * time.Millisecond)
	setVersion(t, dir, 2)
	_ = syscall.Kill(first, syscall.SIGHUP)
	var second int
	waitFor(t, "the second master", 60*time.Second, func() bool {
		second, _ = readPID(pidFile)
		return second != 0 && second != first
	})
	if !alive(first) {
		t.Fatalf("the first master exited before the test could HUP during its drain")
	}
	setVersion(t, dir, 3)
	_ = syscall.Kill(second, syscall.SIGHUP) // while the first still drains
	waitFor(t, "version 3 from a third master", 60*time.Second, func() bool {
		got, err := predictOnce(s.url("/predict/"))
		third, _ := readPID(pidFile)
		return err == nil && got == `{"predictions":[3.0]}` && third != second && third != first
	})
	if err := <-slow; err != nil {
		t.Fatalf("the slow request during the upgrade: %v", err)
	}
	if !strings.Contains(s.log.String(), "still draining; upgrading once it has exited") {
		t.Fatalf("the second HUP was not queued (did the first master exit early?):\n%s", s.log.String())
	}
}
