package predictor

import (
	"os"
	"os/exec"
	"runtime"
	"syscall"
)

// process is a started predictor process and its exit status: our child (spawned), or a
// child of the zygote (forked; see forked.go).
type process struct {
	cmd  *exec.Cmd // nil when forked
	path string    // the program, for messages
	pid  int
	done chan struct{} // closed once the process has exited (and, if ours, been reaped)
	// Valid after done is closed.
	state    *os.ProcessState
	waitErr  error
	exitText string // forked: how it ended, as the zygote reported it ("" if unknown)

	// sigkill kills a forked process through its pidfd (nil when spawned).
	sigkill func()
	// bridgeRunning: the bridge already runs with its boot config (forked), so no boot
	// frame is sent.
	bridgeRunning bool
}

// startPinned starts cmd with Pdeathsig = SIGKILL from a goroutine locked to its OS thread
// for the child's whole life.
//
// Linux sends the parent-death signal when the *thread* that forked the child exits, not
// when the process does, and the Go runtime may retire idle threads at any time. A thread
// locked by a goroutine that never unlocks is only retired when that goroutine returns,
// which here happens after the child has been reaped.
func startPinned(cmd *exec.Cmd) (*process, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	p := &process{cmd: cmd, path: cmd.Path, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread must not go back to the pool while the child lives,
		// and when this goroutine ends the runtime discards the thread, which is harmless
		// once the child is gone.
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		p.pid = cmd.Process.Pid
		started <- nil
		p.waitErr = cmd.Wait()
		p.state = cmd.ProcessState
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// kill sends SIGKILL; a child that already exited is not an error.
func (p *process) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	if p.sigkill != nil {
		p.sigkill()
		return
	}
	_ = p.cmd.Process.Kill()
}

// exited reports whether the child has exited.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// reason describes how the child ended ("exit status 1", "signal: killed"); valid after done.
func (p *process) reason() string {
	if p.state != nil {
		return p.state.String()
	}
	if p.exitText != "" {
		return p.exitText
	}
	if p.waitErr != nil {
		return p.waitErr.Error()
	}
	return "exited"
}
