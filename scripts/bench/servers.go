package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/drum-go/drum/internal/proctree"
)

// serverSpec says how to start one server under test.
type serverSpec struct {
	Name  string // "drum (prefork)", "baseline", ...
	Key   string // short, for file names and tables
	Argv  []string
	Env   []string
	Dir   string
	Ready string // a log line that marks one readiness event
	// ReadyCount is how many Ready lines mean "all workers ready".
	ReadyCount int
}

// server is a started server.
type server struct {
	spec    serverSpec
	cmd     *exec.Cmd
	pid     int
	base    string // http://127.0.0.1:PORT
	log     *bytes.Buffer
	logMu   sync.Mutex
	seen    map[int]bool // every pid seen in its process tree, for the final check
	started time.Time
	ready   time.Duration // start → all workers ready
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startServer starts spec (the port is substituted for {port} in Argv and Env), pinned to
// cpus when set, and waits (bounded by timeout) until it logs readiness.
func startServer(spec serverSpec, cpus string, timeout time.Duration) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	sub := func(s string) string { return strings.ReplaceAll(s, "{port}", strconv.Itoa(port)) }
	argv := make([]string, 0, len(spec.Argv)+2)
	if cpus != "" {
		argv = append(argv, "taskset", "-c", cpus)
	}
	for _, a := range spec.Argv {
		argv = append(argv, sub(a))
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = spec.Dir
	cmd.Env = os.Environ()
	for _, e := range spec.Env {
		cmd.Env = append(cmd.Env, sub(e))
	}
	// Its own process group, so a Ctrl+C on the harness does not reach it first; it is
	// still stopped by pid below.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s := &server{spec: spec, cmd: cmd, base: "http://127.0.0.1:" + strconv.Itoa(port),
		log: &bytes.Buffer{}, seen: map[int]bool{}}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	lines := make(chan string, 1024)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			s.logMu.Lock()
			if s.log.Len() < 4<<20 {
				s.log.WriteString(sc.Text() + "\n")
			}
			s.logMu.Unlock()
			select {
			case lines <- sc.Text():
			default:
			}
		}
		pr.Close()
	}()
	s.started = time.Now()
	if err := cmd.Start(); err != nil {
		pw.Close()
		pr.Close()
		return nil, err
	}
	pw.Close()
	s.pid = cmd.Process.Pid
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.cmd = cmd
	registerLive(s, exited)

	n := 0
	deadline := time.After(timeout)
	for n < spec.ReadyCount {
		select {
		case l := <-lines:
			if strings.Contains(l, spec.Ready) {
				n++
			}
		case <-exited:
			return nil, fmt.Errorf("%s exited during start-up:\n%s", spec.Name, s.logTail())
		case <-deadline:
			s.stop()
			return nil, fmt.Errorf("%s not ready after %s:\n%s", spec.Name, timeout, s.logTail())
		}
	}
	s.ready = time.Since(s.started)
	s.tree() // remember the pids
	go func() {
		for range lines { // keep draining
		}
	}()
	return s, nil
}

func (s *server) logTail() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	b := s.log.Bytes()
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// live servers, stopped on any exit path.
var (
	liveMu   sync.Mutex
	live     = map[*server]chan struct{}{}
	stopping bool // set by stopAll: a server that starts afterwards is stopped at once
)

func registerLive(s *server, exited chan struct{}) {
	liveMu.Lock()
	live[s] = exited
	late := stopping
	liveMu.Unlock()
	if late {
		s.stop()
	}
}

func stopAll() {
	liveMu.Lock()
	stopping = true
	var all []*server
	for s := range live {
		all = append(all, s)
	}
	liveMu.Unlock()
	for _, s := range all {
		s.stop()
	}
}

// stop sends SIGTERM to the server's pid, waits up to 15 s, then SIGKILLs it; then any
// process of its tree still alive (by the pids recorded) is SIGKILLed, by pid.
func (s *server) stop() {
	liveMu.Lock()
	exited, ok := live[s]
	delete(live, s)
	liveMu.Unlock()
	if !ok {
		return
	}
	s.tree()
	_ = syscall.Kill(s.pid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(s.pid, syscall.SIGKILL)
		<-exited
	}
	time.Sleep(100 * time.Millisecond)
	for pid := range s.seen {
		if pid != s.pid && alive(pid) {
			fmt.Fprintf(os.Stderr, "bench: %s left pid %d behind; killing it\n", s.spec.Name, pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool { return proctree.Alive("/proc", pid) }

// tree lists the server's pid and every descendant (one pass over /proc), and
// remembers them so that stop can end any the server leaves behind.
func (s *server) tree() []int {
	out := proctree.Tree("/proc", s.pid)
	for _, p := range out {
		s.seen[p] = true
	}
	return out
}

// memory is a process tree's resident memory in bytes.
type memory struct {
	RSS, PSS int64
	Procs    int
}

// mem sums Rss and Pss from /proc/PID/smaps_rollup over the process tree.
func (s *server) mem() (memory, error) {
	var m memory
	for _, pid := range s.tree() {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "smaps_rollup"))
		if err != nil {
			continue // gone meanwhile
		}
		m.Procs++
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				continue
			}
			switch f[0] {
			case "Rss:":
				m.RSS += kb << 10
			case "Pss:":
				m.PSS += kb << 10
			}
		}
	}
	if m.Procs == 0 {
		return m, errors.New("no process of the server could be read")
	}
	return m, nil
}

// memSampler records the peak RSS and PSS of a server while it runs.
type memSampler struct {
	stop chan struct{}
	done chan struct{}
	peak memory
}

func sampleMem(s *server, every time.Duration) *memSampler {
	ms := &memSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(ms.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if m, err := s.mem(); err == nil {
				ms.peak.RSS = max(ms.peak.RSS, m.RSS)
				ms.peak.PSS = max(ms.peak.PSS, m.PSS)
				ms.peak.Procs = max(ms.peak.Procs, m.Procs)
			}
			select {
			case <-ms.stop:
				return
			case <-t.C:
			}
		}
	}()
	return ms
}

func (ms *memSampler) finish() memory {
	close(ms.stop)
	<-ms.done
	return ms.peak
}
