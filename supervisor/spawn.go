package supervisor

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/drum-go/drum/ipc"
)

type workerState int

const (
	stateBooting workerState = iota
	stateReady
	stateStopping
)

func (s workerState) String() string {
	switch s {
	case stateBooting:
		return "booting"
	case stateReady:
		return "ready"
	}
	return "stopping"
}

// stateName is the state shown by drum ctl status, /stats/ and /metrics: a ready
// worker whose predictor cannot be restarted is "unhealthy".
func (w *workerProc) stateName() string {
	if w.state == stateReady && w.noPredictor != "" {
		return "unhealthy"
	}
	return w.state.String()
}

// workerProc is one running worker process as the master sees it.
type workerProc struct {
	id            int
	pid           int
	ctrl          *ipc.Conn
	state         workerState
	started       time.Time
	lastBeat      time.Time
	failMsg       string // what the worker reported before exiting, if anything
	killedFor     string // why the master killed it (timeout, scale-down), if it did
	counters      ipc.Counters
	predictorPids []int // from its last heartbeat
	limit         int   // requests after which it is recycled (0 = never)
	// From its heartbeats: why it has no predictor (restarting one failed), how many
	// restarts failed in a row; and when the master may next try to replace it.
	noPredictor    string
	failedRestarts int
	replaceAfter   time.Time
	// mailbox holds the latest stats frame for this worker; a sender goroutine writes
	// it, so a worker that stops reading (SIGSTOP, hung) can never block the loop.
	mailbox  chan []byte
	ctrlDone chan struct{} // closed when readControl has handed on the worker's last message
}

// post replaces whatever is waiting in the mailbox with meta.
func (w *workerProc) post(meta []byte) {
	select {
	case <-w.mailbox:
	default:
	}
	select {
	case w.mailbox <- meta:
	default:
	}
}

// sendLoop writes mailbox frames to the worker until the mailbox is closed or the
// channel fails.
func (w *workerProc) sendLoop() {
	for meta := range w.mailbox {
		if err := w.ctrl.Write(ipc.KindStats, 0, meta, nil); err != nil {
			return
		}
	}
}

// tableflipEnvPrefix marks tableflip's own variables. tableflip never clears its
// "has parent" sentinel, so a worker started by an upgraded master would think it is
// part of an upgrade unless the master strips it.
const tableflipEnvPrefix = "TABLEFLIP_"

func workerEnv(environ []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		// Workers never speak to systemd: only the master is the service's main process.
		if !strings.HasPrefix(kv, tableflipEnvPrefix) && !strings.HasPrefix(kv, notifySocketEnv+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// spawn starts worker id: the drum binary in its worker role with the listener on fd 3
// and one end of a fresh socketpair on fd 4, then sends it its configuration.
func (m *master) spawn(id int) (*workerProc, error) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("spawn worker %d: socketpair: %w", id, err)
	}
	ours := os.NewFile(uintptr(pair[0]), fmt.Sprintf("control-%d", id))
	theirs := os.NewFile(uintptr(pair[1]), fmt.Sprintf("control-%d-worker", id))
	defer theirs.Close()

	outR, outW, err := os.Pipe()
	if err != nil {
		ours.Close()
		return nil, fmt.Errorf("spawn worker %d: output pipe: %w", id, err)
	}
	defer outW.Close()

	cmd := exec.Command(m.opts.Executable, m.opts.WorkerArgs...)
	cmd.Env = workerEnv(os.Environ())
	files, fork := m.workerFiles(theirs) // zygote.go
	cmd.ExtraFiles = files
	cmd.Stdout = outW
	cmd.Stderr = outW
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// The worker dies with the master even on SIGKILL. Pdeathsig fires when the
		// *thread* that forked exits, so the goroutine below stays locked to its thread
		// for the worker's whole life.
		Pdeathsig: syscall.SIGKILL,
		// Own process group: a terminal's Ctrl+C reaches only the master, which then
		// stops the workers in order instead of every process dying at once.
		Setpgid: true,
	}

	w := &workerProc{id: id, state: stateBooting, started: m.opts.Now(), mailbox: make(chan []byte, 1),
		ctrlDone: make(chan struct{})}
	if cfg := m.opts.Config; cfg.MaxRequests > 0 {
		// Jitter spreads recycling so workers started together are not replaced together.
		w.limit = cfg.MaxRequests + rand.IntN(cfg.MaxRequestsJitter+1)
	}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the worker
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		err := cmd.Wait()
		// Its last heartbeat (final counters) goes to the loop before the exit does.
		select {
		case <-w.ctrlDone:
		case <-time.After(time.Second):
		}
		m.events <- event{kind: evExit, w: w, err: err, state: cmd.ProcessState}
	}()
	if err := <-started; err != nil {
		ours.Close()
		outR.Close()
		return nil, fmt.Errorf("spawn worker %d: %w", id, err)
	}
	w.pid = cmd.Process.Pid
	w.lastBeat = w.started
	w.ctrl = ipc.NewConn(ours)
	go relog(outR, m.log.With("worker", id, "pid", w.pid))

	if err := w.ctrl.Send(ipc.KindConfig, WorkerConfig{ID: id, Config: m.opts.Config, Fork: fork}); err != nil {
		// The worker died at once; its exit event reports why.
		m.log.Error("send config to worker", "worker", id, "pid", w.pid, "error", err)
	}
	go m.readControl(w)
	go w.sendLoop()
	return w, nil
}

// readControl turns a worker's control messages into loop events until it closes.
func (m *master) readControl(w *workerProc) {
	defer close(w.ctrlDone)
	defer w.ctrl.Close()
	for {
		f, err := w.ctrl.Read()
		if err != nil {
			return // the exit event (from Wait) tells the loop what happened
		}
		ev := event{w: w}
		switch f.Kind {
		case ipc.KindReady:
			ev.kind = evReady
			_ = ipc.Decode(f, &ev.ready)
		case ipc.KindHeartbeat:
			ev.kind = evHeartbeat
			_ = ipc.Decode(f, &ev.beat)
		case ipc.KindFailed:
			ev.kind = evFailed
			var fl ipc.Failed
			_ = ipc.Decode(f, &fl)
			ev.failed = fl.Error
		default:
			m.log.Warn("unknown control message from worker", "worker", w.id, "kind", f.Kind)
			continue
		}
		m.events <- ev
	}
}

// exitReason names how a worker ended, for logs and counters.
func exitReason(w *workerProc, state *os.ProcessState) string {
	if w.killedFor != "" {
		return w.killedFor
	}
	if state == nil {
		return "crash (unknown status)"
	}
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "signal " + ws.Signal().String()
	}
	if state.ExitCode() == 0 {
		return "exit (code 0)"
	}
	return fmt.Sprintf("crash (exit code %d)", state.ExitCode())
}
