package supervisor

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"
)

// The control socket (drum ctl) speaks one JSON request line, one JSON reply line.
// Requests are handed to the master's loop, which alone changes its state.

// CtlRequest is one drum ctl command.
type CtlRequest struct {
	Cmd    string `json:"cmd"`              // status, add, remove, kill, reload, drain
	Worker int    `json:"worker,omitempty"` // for kill
}

// CtlWorker is one row of `drum ctl status`.
type CtlWorker struct {
	ID            int     `json:"id"`
	Pid           int     `json:"pid"`
	State         string  `json:"state"`
	Requests      int64   `json:"requests"`
	InFlight      int64   `json:"in_flight"`
	LastHeartbeat float64 `json:"last_heartbeat_s_ago"`
	Restarts      int     `json:"restarts"`
	Replacing     bool    `json:"replacement,omitempty"` // booting to take over its slot
}

// CtlReply answers a request.
type CtlReply struct {
	OK      bool        `json:"ok"`
	Error   string      `json:"error,omitempty"`
	Message string      `json:"message,omitempty"`
	Pid     int         `json:"master_pid"`
	Workers []CtlWorker `json:"workers,omitempty"`
	Want    int         `json:"want"`
}

type ctlCall struct {
	req   CtlRequest
	reply chan CtlReply
}

// clearStaleSocket removes a control socket left by a master that died without
// cleaning up; a socket someone still answers on is an error.
func clearStaleSocket(path string) error {
	st, err := os.Lstat(path)
	if err != nil {
		return nil
	}
	if st.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("control socket %s exists and is not a socket", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("control socket %s is in use: is another drum server running?", path)
	}
	return os.Remove(path)
}

// serveControl accepts drum ctl connections until ln is closed.
func (m *master) serveControl(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go m.handleControlConn(c)
	}
}

func (m *master) handleControlConn(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var req CtlRequest
	line, err := bufio.NewReader(c).ReadBytes('\n')
	reply := CtlReply{Pid: os.Getpid()}
	if err == nil {
		err = json.Unmarshal(line, &req)
	}
	if err != nil {
		reply.Error = "bad request: " + err.Error()
	} else {
		call := ctlCall{req: req, reply: make(chan CtlReply, 1)}
		select {
		case m.ctl <- call:
			reply = <-call.reply
		case <-time.After(5 * time.Second):
			reply.Error = "the master is busy; try again"
		}
	}
	b, _ := json.Marshal(reply)
	_, _ = c.Write(append(b, '\n'))
}

// handleControl runs in the loop.
func (m *master) handleControl(req CtlRequest) CtlReply {
	r := CtlReply{OK: true, Pid: os.Getpid(), Want: m.want}
	switch req.Cmd {
	case "status":
	case "add":
		m.handleSignal(syscall.SIGTTIN)
		r.Message = fmt.Sprintf("workers: %d", m.want)
	case "remove":
		if m.want <= 1 {
			return CtlReply{Pid: r.Pid, Want: m.want, Error: "at least one worker must run"}
		}
		m.handleSignal(syscall.SIGTTOU)
		r.Message = fmt.Sprintf("workers: %d", m.want)
	case "kill":
		w := m.workers[req.Worker]
		if w == nil {
			return CtlReply{Pid: r.Pid, Want: m.want, Error: "no worker " + strconv.Itoa(req.Worker)}
		}
		m.log.Info("drum ctl: killing worker; it will be replaced", "worker", w.id, "pid", w.pid)
		_ = syscall.Kill(w.pid, syscall.SIGKILL)
		r.Message = fmt.Sprintf("killed worker %d (pid %d)", w.id, w.pid)
	case "reload":
		if !m.announced || m.upgrading || m.stopping {
			return CtlReply{Pid: r.Pid, Want: m.want, Error: "cannot reload now: not ready, already upgrading, or stopping"}
		}
		m.upgrade()
		r.Message = "upgrade started; the new master takes over once its workers are ready"
		if m.hupPending {
			r.Message = "the previous generation is still draining; the upgrade starts once it has exited"
		}
	case "drain":
		m.log.Info("drum ctl: drain requested; stopping gracefully")
		m.stopAll(true)
		r.Message = "draining: in-flight requests finish, then the master exits"
	default:
		return CtlReply{Pid: r.Pid, Want: m.want, Error: fmt.Sprintf("unknown command %q; use status, add, remove, kill, reload or drain", req.Cmd)}
	}
	r.Want = m.want
	now := m.opts.Now()
	add := func(w *workerProc, replacing bool) {
		r.Workers = append(r.Workers, CtlWorker{
			ID: w.id, Pid: w.pid, State: w.stateName(), Requests: w.counters.Completed + w.counters.Failed,
			InFlight: w.counters.InFlight, LastHeartbeat: now.Sub(w.lastBeat).Round(time.Millisecond).Seconds(),
			Restarts: m.restarts[w.id], Replacing: replacing,
		})
	}
	for id := 1; id <= len(m.workers)+len(m.surge)+m.want; id++ {
		if w := m.workers[id]; w != nil {
			add(w, false)
		}
		if w := m.surge[id]; w != nil {
			add(w, true)
		}
	}
	return r
}

// Ctl sends one request to the control socket at path.
func Ctl(path string, req CtlRequest) (CtlReply, error) {
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return CtlReply{}, fmt.Errorf("connect to control socket %s (is drum server running?): %w", path, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	b, _ := json.Marshal(req)
	if _, err := c.Write(append(b, '\n')); err != nil {
		return CtlReply{}, fmt.Errorf("control socket %s: %w", path, err)
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		return CtlReply{}, fmt.Errorf("control socket %s: %w", path, err)
	}
	var r CtlReply
	if err := json.Unmarshal(line, &r); err != nil {
		return CtlReply{}, fmt.Errorf("control socket %s: bad reply: %w", path, err)
	}
	if r.Error != "" {
		return r, errors.New(r.Error)
	}
	return r, nil
}
