package predictor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ForkServer is a worker's end of its generation's zygote (see zygote.go and
// bridge/zygote.py): it asks the zygote to fork predictors that share its imported
// libraries copy-on-write.
type ForkServer struct {
	conn *net.UnixConn // SOCK_SEQPACKET: each request is one atomic message

	mu       sync.Mutex
	fallback string // why predictors are spawned instead, once forking failed
}

// NewForkServer wraps the inherited fork socket; it takes ownership of f.
func NewForkServer(f *os.File) (*ForkServer, error) {
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("fork socket: %w", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("fork socket is %T, not a unix socket", c)
	}
	return &ForkServer{conn: uc}, nil
}

// Close releases the socket.
func (z *ForkServer) Close() error { return z.conn.Close() }

// ForkUnavailableError says the zygote cannot fork a predictor (it refused, or is gone):
// start one the classic way instead. It is never a model failure.
type ForkUnavailableError struct{ Reason string }

func (e *ForkUnavailableError) Error() string { return "zygote cannot fork a predictor: " + e.Reason }

// forkRequest is the message to the zygote; six descriptors travel with it (forkFDs).
type forkRequest struct {
	Boot      json.RawMessage `json:"boot"`
	Env       []string        `json:"env,omitempty"`
	WorkerPid int             `json:"worker_pid"` // for the child's process title
}

// forkReply is the zygote's answer on the status socket: pid (with a pidfd), an error, or
// later the exit of the child.
type forkReply struct {
	Pid   int    `json:"pid"`
	Error string `json:"error"`
	Exit  string `json:"exit"`
}

// Start forks a predictor from the zygote and returns it once it has loaded the model and
// answered a warm-up call, exactly like StartPython. An error wrapping
// *ForkUnavailableError means nothing was started and StartPython should be used.
func (z *ForkServer) Start(ctx context.Context, cfg Config) (*Python, error) {
	return startAndWarm(ctx, cfg, z.fork)
}

// StartOrSpawn forks a predictor, or spawns one when the zygote cannot fork (it refused
// or is gone): the first such failure is logged with its reason and every later
// predictor of this worker is spawned. A nil ForkServer always spawns.
func (z *ForkServer) StartOrSpawn(ctx context.Context, cfg Config) (*Python, error) {
	if z == nil {
		return StartPython(ctx, cfg)
	}
	z.mu.Lock()
	fallback := z.fallback
	z.mu.Unlock()
	if fallback != "" {
		return StartPython(ctx, cfg)
	}
	p, err := z.Start(ctx, cfg)
	var fu *ForkUnavailableError
	if !errors.As(err, &fu) {
		return p, err
	}
	z.mu.Lock()
	if z.fallback == "" {
		z.fallback = fu.Reason
		if cfg.Logger != nil {
			cfg.Logger.Warn("predictors start as fresh interpreters from now on (spawn): the zygote cannot fork",
				"reason", fu.Reason)
		}
	}
	z.mu.Unlock()
	return StartPython(ctx, cfg)
}

// fork is the launcher of forked predictors.
func (z *ForkServer) fork(ctx context.Context, cfg Config, pipes *childPipes, bootMeta []byte) (*process, error) {
	msg, err := json.Marshal(forkRequest{Boot: bootMeta, Env: append(append([]string{}, cfg.Env...), "PYTHONUNBUFFERED=1"), WorkerPid: os.Getpid()})
	if err != nil {
		return nil, fmt.Errorf("encode fork request: %w", err)
	}
	// Our own pidfd lets the child die with this worker although it is not our child.
	self, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return nil, &ForkUnavailableError{Reason: fmt.Sprintf("pidfd_open: %v", err)}
	}
	defer unix.Close(self)
	status, theirs, err := seqpacketPair()
	if err != nil {
		return nil, err
	}
	defer theirs.Close()
	fds := []int{int(pipes.reqR.Fd()), int(pipes.repW.Fd()), int(pipes.outW.Fd()), int(pipes.errW.Fd()), self, int(theirs.Fd())}
	if _, _, err := z.conn.WriteMsgUnix(msg, unix.UnixRights(fds...), nil); err != nil {
		status.Close()
		return nil, &ForkUnavailableError{Reason: fmt.Sprintf("send fork request: %v", err)}
	}
	theirs.Close() // now only the zygote (and the child) hold it: EOF means they are gone

	if dl, ok := ctx.Deadline(); ok {
		_ = status.SetReadDeadline(dl)
	}
	reply, rights, err := readForkReply(status)
	if err != nil {
		status.Close()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, fmt.Errorf("zygote did not fork a predictor in time: %w", context.DeadlineExceeded)
		}
		return nil, &ForkUnavailableError{Reason: err.Error()}
	}
	_ = status.SetReadDeadline(time.Time{})
	if reply.Error != "" || reply.Pid <= 0 || len(rights) != 1 {
		for _, fd := range rights {
			unix.Close(fd)
		}
		status.Close()
		if reply.Error == "" {
			reply.Error = fmt.Sprintf("malformed answer (pid %d, %d descriptors)", reply.Pid, len(rights))
		}
		return nil, &ForkUnavailableError{Reason: reply.Error}
	}
	return watchForked(reply.Pid, rights[0], status, cfg.Python), nil
}

// readForkReply reads one answer and the descriptors that came with it.
func readForkReply(c *net.UnixConn) (forkReply, []int, error) {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	var fds []int
	if oobn > 0 {
		msgs, perr := unix.ParseSocketControlMessage(oob[:oobn])
		if perr == nil {
			for _, m := range msgs {
				if got, rerr := unix.ParseUnixRights(&m); rerr == nil {
					fds = append(fds, got...)
				}
			}
		}
	}
	if errors.Is(err, io.EOF) {
		err, n = nil, 0
	}
	if err != nil {
		return forkReply{}, fds, fmt.Errorf("read zygote answer: %w", err)
	}
	if n == 0 {
		return forkReply{}, fds, errors.New("the zygote exited")
	}
	var r forkReply
	if err := json.Unmarshal(buf[:n], &r); err != nil {
		return forkReply{}, fds, fmt.Errorf("undecodable zygote answer %q: %w", buf[:n], err)
	}
	return r, fds, nil
}

// seqpacketPair is a connected SOCK_SEQPACKET pair: ours as a UnixConn, theirs to pass on.
func seqpacketPair() (*net.UnixConn, *os.File, error) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	f := os.NewFile(uintptr(pair[0]), "fork-status")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		unix.Close(pair[1])
		return nil, nil, fmt.Errorf("fork status socket: %w", err)
	}
	return c.(*net.UnixConn), os.NewFile(uintptr(pair[1]), "fork-status-zygote"), nil
}

// watchForked follows a forked predictor that is not our child: its pidfd says when it
// has exited (and kills it without any risk of hitting a reused pid), and the zygote, which
// reaps it, tells how on the status socket.
func watchForked(pid, pidfd int, status *net.UnixConn, path string) *process {
	p := &process{pid: pid, path: path + " (forked by the zygote)", done: make(chan struct{}), bridgeRunning: true}
	// Non-blocking, the pidfd joins Go's poller: waiting for the exit holds no thread.
	_ = unix.SetNonblock(pidfd, true)
	pf := os.NewFile(uintptr(pidfd), fmt.Sprintf("pidfd-%d", pid))
	rc, _ := pf.SyscallConn() // fails only for a nil *os.File
	// Control refuses once the pidfd is closed, so a late kill never reaches another file.
	p.sigkill = func() {
		_ = rc.Control(func(fd uintptr) { _ = unix.PidfdSendSignal(int(fd), unix.SIGKILL, nil, 0) })
	}
	exitText := make(chan string, 1)
	go func() {
		defer status.Close()
		for {
			r, fds, err := readForkReply(status)
			for _, fd := range fds {
				unix.Close(fd)
			}
			if err != nil {
				exitText <- ""
				return
			}
			if r.Exit != "" {
				exitText <- r.Exit
				return
			}
		}
	}()
	go func() {
		waitPidfd(rc)
		pf.Close()
		// The zygote reaps it and reports its status; it may be gone itself.
		select {
		case p.exitText = <-exitText:
		case <-time.After(drainTimeout):
			_ = status.SetReadDeadline(time.Now())
		}
		if p.exitText == "" {
			p.exitText = "exited (status unknown: the zygote that reaps it did not report it)"
		}
		close(p.done)
	}()
	return p
}

// waitPidfd returns once the process of a pidfd has exited (the pidfd is readable).
func waitPidfd(rc syscall.RawConn) {
	exited := func(fd uintptr) bool {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
		return n > 0 || (err != nil && !errors.Is(err, unix.EINTR))
	}
	if rc.Read(exited) == nil {
		return
	}
	// Not pollable by Go's poller: wait in a blocking poll instead.
	_ = rc.Control(func(fd uintptr) {
		for {
			n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, -1)
			if n > 0 || (err != nil && !errors.Is(err, unix.EINTR)) {
				return
			}
		}
	})
}
