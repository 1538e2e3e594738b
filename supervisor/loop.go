package supervisor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/drum-go/drum/ipc"
)

const tick = 250 * time.Millisecond

// loop is the master's only decision maker: signals, worker events and the ticker are
// handled here one at a time, so the state needs no locks.
func (m *master) loop(ctx context.Context, sigs <-chan os.Signal) error {
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	done := ctx.Done()
	upgraded := m.upg.Exit() // also closed by upg.Stop when we stop: take it once
	for {
		select {
		case sig := <-sigs:
			m.handleSignal(sig.(syscall.Signal))
		case ev := <-m.events:
			if err := m.handleEvent(ev); err != nil {
				m.stopAll(false)
				m.drain(context.Background())
				return err
			}
		case <-ticker.C:
			m.checkWorkers()
		case call := <-m.ctl:
			call.reply <- m.handleControl(call.req)
		case <-upgraded:
			upgraded = nil
			// A new master is ready and serving on the same socket: this generation
			// drains and leaves.
			if !m.stopping {
				m.log.Info("upgrade complete: new master is ready, old workers draining")
				m.handedOver = true
				if m.ctlLn != nil {
					_ = m.ctlLn.Close() // drum ctl now reaches the new master
				}
				m.stopMetrics() // so does /metrics on DRUM_METRICS_ADDRESS
				for _, w := range m.all() {
					w.killedFor = "upgrade"
				}
				m.stopAll(true)
			}
		case <-done:
			done = nil
			m.log.Info("context cancelled, stopping gracefully")
			m.stopAll(true)
		}
		if m.stopping && len(m.workers) == 0 && len(m.surge) == 0 {
			m.log.Info("all workers stopped, master exiting", "worker_exits", formatCounts(m.exits))
			return nil
		}
	}
}

func (m *master) handleSignal(sig syscall.Signal) {
	switch sig {
	case syscall.SIGTERM:
		m.log.Info("SIGTERM: graceful shutdown", "graceful_timeout", m.opts.Config.GracefulTimeout)
		m.stopAll(true)
	case syscall.SIGINT, syscall.SIGQUIT:
		m.log.Info("fast shutdown", "signal", sig.String())
		m.stopAll(false)
	case syscall.SIGHUP:
		m.upgrade()
	case syscall.SIGUSR1:
		if m.opts.ReopenLogs == nil {
			m.log.Info("SIGUSR1: logging to stderr, no log file to reopen")
			return
		}
		if err := m.opts.ReopenLogs(); err != nil {
			m.log.Error("SIGUSR1: reopen log file", "error", err)
			return
		}
		m.log.Info("SIGUSR1: log file reopened")
	case syscall.SIGTTIN:
		if m.stopping {
			return
		}
		m.want++
		m.log.Info("SIGTTIN: one worker more", "workers", m.want)
		m.respawnAt[m.want] = m.opts.Now()
	case syscall.SIGTTOU:
		if m.stopping || m.want <= 1 {
			m.log.Info("SIGTTOU ignored: at least one worker must run", "workers", m.want)
			return
		}
		id := m.want
		m.want--
		m.log.Info("SIGTTOU: one worker fewer", "workers", m.want)
		delete(m.respawnAt, id)
		if w := m.workers[id]; w != nil {
			w.killedFor = "scale-down"
			m.stopWorker(w, syscall.SIGTERM)
		}
	}
}

// upgrade starts a new master (tableflip re-executes the binary, which may have been
// replaced on disk) without blocking the loop; the old generation keeps serving until
// the new one calls Ready, and keeps serving if it fails.
func (m *master) upgrade() {
	switch {
	case m.stopping:
		return
	case !m.announced:
		m.log.Warn("SIGHUP ignored: this generation is not ready yet")
		return
	case m.upgrading:
		m.log.Warn("SIGHUP ignored: an upgrade is already in progress")
		return
	case m.parentAlive:
		m.hupPending = true
		m.log.Info("SIGHUP: the previous generation is still draining; upgrading once it has exited")
		return
	}
	m.upgrading = true
	m.log.Info("SIGHUP: starting a new generation")
	_ = sdNotify("RELOADING=1")
	go func() {
		err := m.upg.Upgrade()
		m.events <- event{kind: evUpgrade, err: err}
	}()
}

func (m *master) handleEvent(ev event) error {
	now := m.opts.Now()
	if ev.kind == evParentExited {
		m.parentAlive = false
		if m.hupPending {
			m.hupPending = false
			m.upgrade()
		}
		return nil
	}
	if ev.kind == evZygoteExit {
		m.zygoteExited(ev.zygote) // zygote.go
		return nil
	}
	if ev.kind == evUpgrade {
		m.upgrading = false
		if ev.err != nil {
			m.log.Error("upgrade failed; the current generation keeps serving", "error", ev.err)
			_ = sdNotify("READY=1", "STATUS=upgrade failed; the previous generation keeps serving")
		}
		return nil
	}
	w := ev.w
	current, surge := m.workers[w.id] == w, m.surge[w.id] == w
	switch ev.kind {
	case evReady:
		w.state = stateReady
		w.lastBeat = now
		m.bootFails = 0
		m.log.Info("worker ready", "worker", w.id, "pid", w.pid, "predictor_pid", ev.ready.PredictorPid,
			"boot", now.Sub(w.started).Round(time.Millisecond))
		switch {
		case m.stopping || (!current && !surge):
			m.stopWorker(w, syscall.SIGTERM)
		case surge:
			m.promote(w)
		}
		m.announceIfReady(now)
	case evHeartbeat:
		w.lastBeat = now
		w.counters, w.predictorPids = ev.beat.Counters, ev.beat.PredictorPids
		m.noteHealth(w, ev.beat)
		if current {
			m.maybeRecycle(w)
			m.maybeReplaceUnhealthy(w, now)
		}
	case evFailed:
		w.failMsg = ev.failed
		m.log.Error("worker failed to start", "worker", w.id, "pid", w.pid, "error", ev.failed)
	case evExit:
		close(w.mailbox)
		// Its counts stay in the server's totals (as of its last heartbeat).
		m.departed.Depart(w.counters)
		delete(m.leaving, w.pid)
		switch {
		case current:
			return m.handleExit(w, ev, now)
		case surge:
			delete(m.surge, w.id)
			reason := m.exitReason(w, ev.state)
			m.exits[reasonClass(reason)]++
			if m.stopping {
				m.log.Info("replacement worker stopped before it was ready", "worker", w.id, "pid", w.pid, "reason", reason)
				break
			}
			m.log.Error("replacement worker failed; the old one keeps serving", "worker", w.id, "pid", w.pid,
				"reason", reason, "error", w.failMsg)
		default:
			reason := m.exitReason(w, ev.state)
			m.exits[reasonClass(reason)]++
			m.log.Info("worker exited", "worker", w.id, "pid", w.pid, "reason", reason)
		}
	}
	return nil
}

// maybeRecycle starts a replacement for a worker past its request limit, one at a time
// and only while every slot has a ready worker, so capacity never drops.
func (m *master) maybeRecycle(w *workerProc) {
	if w.limit <= 0 || m.stopping || w.state != stateReady || len(m.surge) > 0 {
		return
	}
	if served := w.counters.Completed + w.counters.Failed; served < int64(w.limit) {
		return
	}
	for id := 1; id <= m.want; id++ {
		if o := m.workers[id]; o == nil || o.state != stateReady {
			return
		}
	}
	nw := m.startSurge(w, "recycling")
	if nw == nil {
		return
	}
	m.log.Info("recycling worker: it reached its request limit", "worker", w.id, "pid", w.pid,
		"served", w.counters.Completed+w.counters.Failed, "limit", w.limit, "replacement_pid", nw.pid)
}

// unhealthyRestarts is how many predictor restarts in a row a worker may fail before the
// master starts a replacement for it; unhealthyRetry spaces the attempts while the
// replacements fail too (the model file is broken: they cannot load it either).
const (
	unhealthyRestarts = 3
	unhealthyRetry    = 30 * time.Second
)

// noteHealth records (and logs the changes of) what w's heartbeat says about its
// predictors.
func (m *master) noteHealth(w *workerProc, hb ipc.Heartbeat) {
	switch {
	case hb.NoPredictor != "" && w.noPredictor == "":
		m.log.Error("worker has no predictor and cannot restart one; it answers predictions with 503",
			"worker", w.id, "pid", w.pid, "failed_restarts", hb.FailedRestarts, "error", hb.NoPredictor)
	case hb.NoPredictor == "" && w.noPredictor != "":
		m.log.Info("worker's predictor is back", "worker", w.id, "pid", w.pid)
	}
	w.noPredictor, w.failedRestarts = hb.NoPredictor, hb.FailedRestarts
}

// maybeReplaceUnhealthy starts a replacement for a worker whose predictor failed to
// restart unhealthyRestarts times in a row. The worker keeps its slot (answering 503s,
// and retrying the load itself) until the replacement is ready, so a broken model file
// costs no crash loop and no capacity; a replacement that fails is retried after
// unhealthyRetry.
func (m *master) maybeReplaceUnhealthy(w *workerProc, now time.Time) {
	if m.stopping || w.state != stateReady || w.noPredictor == "" || w.failedRestarts < unhealthyRestarts ||
		m.surge[w.id] != nil || now.Before(w.replaceAfter) {
		return
	}
	w.replaceAfter = now.Add(unhealthyRetry)
	nw := m.startSurge(w, "an unhealthy worker")
	if nw == nil {
		return
	}
	m.log.Warn("replacing worker: its predictor failed to restart", "worker", w.id, "pid", w.pid,
		"failed_restarts", w.failedRestarts, "replacement_pid", nw.pid)
}

// startSurge boots a replacement for w's slot beside it (promote swaps them once it is
// ready); nil when it could not start, which is logged.
func (m *master) startSurge(w *workerProc, why string) *workerProc {
	nw, err := m.spawn(w.id)
	if err != nil {
		m.log.Error("could not start a replacement for "+why, "worker", w.id, "error", err)
		return nil
	}
	m.surge[w.id] = nw
	return nw
}

// promote makes a ready replacement the slot's worker and drains the one it replaces.
func (m *master) promote(nw *workerProc) {
	old := m.workers[nw.id]
	m.workers[nw.id] = nw
	delete(m.surge, nw.id)
	if old != nil {
		m.leaving[old.pid] = old // counted until it exits
		old.killedFor = "recycle"
		if old.noPredictor != "" {
			old.killedFor = "unhealthy"
		}
		m.stopWorker(old, syscall.SIGTERM)
	}
}

func (m *master) announceIfReady(now time.Time) {
	if m.announced || m.stopping {
		return
	}
	for id := 1; id <= m.want; id++ {
		if w := m.workers[id]; w == nil || w.state != stateReady {
			return
		}
	}
	m.announced = true
	if m.ctlLn != nil {
		go m.serveControl(m.ctlLn)
	}
	m.readyCalled = true // the PID file and the control socket are ours from here
	if err := m.upg.Ready(); err != nil {
		m.log.Error("upgrader ready", "error", err)
	}
	if err := sdNotify("READY=1", fmt.Sprintf("MAINPID=%d", os.Getpid()),
		fmt.Sprintf("STATUS=serving on %s with %d workers", m.ln.Addr(), m.want)); err != nil {
		m.log.Warn("cannot tell systemd we are ready", "error", err)
	}
	m.log.Info(fmt.Sprintf("drum ready: listening on %s with %d workers", m.ln.Addr(), m.want),
		"address", m.ln.Addr().String(), "workers", m.want, "startup", now.Sub(m.startedAt).Round(time.Millisecond))
}

// exitReason names how a worker ended: why the master stopped it, or how it died
// (including an OOM kill, told apart from other SIGKILLs by the cgroup's counter).
func (m *master) exitReason(w *workerProc, state *os.ProcessState) string {
	reason := exitReason(w, state)
	if reason == "signal "+syscall.SIGKILL.String() {
		if n, ok := cgroupOOMKills(); ok && n > m.oomKills {
			m.oomKills = n
			return fmt.Sprintf("oom (cgroup oom_kill count %d)", n)
		}
	}
	return reason
}

func (m *master) handleExit(w *workerProc, ev event, now time.Time) error {
	reason := m.exitReason(w, ev.state)
	m.exits[reasonClass(reason)]++
	delete(m.workers, w.id)
	m.restarts[w.id]++
	if m.stopping || w.killedFor == "scale-down" {
		m.log.Info("worker exited", "worker", w.id, "pid", w.pid, "reason", reason)
		return nil
	}
	if w.state != stateReady {
		m.bootFails++
		m.lastBootErr = w.failMsg
		if m.lastBootErr == "" {
			m.lastBootErr = "worker exited during start-up: " + reason
		}
		m.log.Error("worker exited before it was ready", "worker", w.id, "pid", w.pid, "reason", reason,
			"failures_in_a_row", m.bootFails, "error", w.failMsg)
		if m.bootFails >= m.opts.MaxBootFailures {
			return fmt.Errorf("workers failed to start %d times in a row; last error: %s", m.bootFails, m.lastBootErr)
		}
	} else {
		m.log.Error("worker exited unexpectedly; replacing it", "worker", w.id, "pid", w.pid, "reason", reason)
	}
	// Back-off: a slot whose workers keep dying quickly waits longer each time.
	if now.Sub(w.started) < 10*time.Second {
		m.slotCrashes[w.id]++
	} else {
		m.slotCrashes[w.id] = 0
	}
	if w.id <= m.want {
		if nw := m.surge[w.id]; nw != nil {
			// A replacement is already booting for this slot: it takes over when ready.
			delete(m.surge, w.id)
			m.workers[w.id] = nw
			return nil
		}
		m.respawnAt[w.id] = now.Add(backoff(m.slotCrashes[w.id]))
	}
	return nil
}

// backoff is 0 for a first death, then 250ms doubling up to 10s.
func backoff(crashes int) time.Duration {
	if crashes <= 1 {
		return 0
	}
	d := 250 * time.Millisecond << (crashes - 2)
	if d > 10*time.Second || d <= 0 {
		d = 10 * time.Second
	}
	return d
}

func reasonClass(reason string) string {
	for _, p := range []string{"exit", "crash", "signal", "timeout", "scale-down", "oom", "recycle", "unhealthy", "upgrade"} {
		if len(reason) >= len(p) && reason[:len(p)] == p {
			return p
		}
	}
	return reason
}

// checkWorkers runs on every tick: heartbeats, boot deadlines, respawns, stop deadline.
func (m *master) checkWorkers() {
	now := m.opts.Now()
	cfg := m.opts.Config
	if m.stopping {
		if now.After(m.stopDeadline) {
			for _, w := range m.all() {
				m.log.Warn("worker did not stop in time; killing it", "worker", w.id, "pid", w.pid)
				_ = syscall.Kill(w.pid, syscall.SIGKILL)
			}
			m.stopDeadline = now.Add(time.Hour) // kill once
		}
		return
	}
	for _, w := range m.all() {
		switch {
		case w.killedFor != "":
		case w.state == stateReady && now.Sub(w.lastBeat) > cfg.HeartbeatTimeout:
			w.killedFor = "timeout"
			m.log.Error("worker missed its heartbeats; killing it with its predictor", "worker", w.id, "pid", w.pid,
				"silent_for", now.Sub(w.lastBeat).Round(time.Millisecond), "heartbeat_timeout", cfg.HeartbeatTimeout)
			_ = syscall.Kill(w.pid, syscall.SIGKILL)
		case w.state == stateBooting && now.Sub(w.started) > cfg.ModelLoadTimeout+10*time.Second:
			w.killedFor = "timeout"
			m.failBoot(w, fmt.Sprintf("model did not load within %s (DRUM_MODEL_LOAD_TIMEOUT)", cfg.ModelLoadTimeout))
		}
	}
	if now.Sub(m.lastStats) >= time.Second {
		m.lastStats = now
		m.broadcastStats()
	}
	for id, at := range m.respawnAt {
		if now.Before(at) {
			continue
		}
		if err := m.startSlot(id); err != nil {
			m.log.Error("could not start worker; retrying", "worker", id, "error", err)
			m.respawnAt[id] = now.Add(time.Second)
		}
	}
}

func (m *master) failBoot(w *workerProc, msg string) {
	w.failMsg = msg
	m.log.Error("killing worker", "worker", w.id, "pid", w.pid, "reason", msg)
	_ = syscall.Kill(w.pid, syscall.SIGKILL)
}

// stopAll stops every worker: gracefully (SIGTERM: finish in-flight requests within the
// graceful timeout) or fast (SIGQUIT). Workers are told by signal, which cannot block
// the loop the way a write to a stuck worker's socket could.
func (m *master) stopAll(graceful bool) {
	if !m.stopping {
		m.stopping = true
		if !m.handedOver {
			_ = sdNotify("STOPPING=1")
		}
		m.respawnAt = map[int]time.Time{}
		// Close every copy of the socket the master holds (its listener, the dup handed
		// to workers, tableflip's own), so once the workers have drained theirs, new
		// connections are refused at once instead of queueing on a socket nobody
		// accepts from and being reset when the last copy closes. (A master started by
		// an upgrade that never took over leaves tableflip be: see stopUpgrader.)
		if !m.handedOver {
			m.stopUpgrader()
		}
		_ = m.ln.Close()
		_ = m.lnFile.Close()
		timeout := 3 * time.Second
		if graceful {
			timeout = m.opts.Config.GracefulTimeout + 2*time.Second
		}
		m.stopDeadline = m.opts.Now().Add(timeout)
	} else if !graceful {
		m.stopDeadline = m.opts.Now().Add(3 * time.Second)
	}
	sig := syscall.SIGTERM
	if !graceful {
		sig = syscall.SIGQUIT
	}
	for _, w := range m.all() {
		m.stopWorker(w, sig)
	}
}

// all lists every worker process the master runs: slot workers and replacements.
func (m *master) all() []*workerProc {
	out := make([]*workerProc, 0, len(m.workers)+len(m.surge))
	for _, w := range m.workers {
		out = append(out, w)
	}
	for _, w := range m.surge {
		out = append(out, w)
	}
	return out
}

func (m *master) stopWorker(w *workerProc, sig syscall.Signal) {
	w.state = stateStopping
	if err := syscall.Kill(w.pid, sig); err != nil {
		m.log.Debug("signal worker", "worker", w.id, "pid", w.pid, "error", err)
	}
}

// drain waits (bounded) for workers to exit after stopAll when the loop is not running.
func (m *master) drain(ctx context.Context) {
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	for len(m.workers) > 0 {
		select {
		case ev := <-m.events:
			if ev.kind == evExit && m.workers[ev.w.id] == ev.w {
				delete(m.workers, ev.w.id)
			}
		case <-deadline.C:
			for _, w := range m.workers {
				_ = syscall.Kill(w.pid, syscall.SIGKILL)
			}
			return
		}
	}
}

// broadcastStats sends every worker the server-wide figures it reports on /stats/.
func (m *master) broadcastStats() {
	st := ipc.ServerStats{WorkerExits: m.exits, Departed: m.departed.Departed}
	procs := make([]*workerProc, 0, len(m.workers)+len(m.leaving))
	for _, w := range m.workers {
		procs = append(procs, w)
	}
	for _, w := range m.leaving {
		procs = append(procs, w)
	}
	sort.Slice(procs, func(i, j int) bool {
		if procs[i].id != procs[j].id {
			return procs[i].id < procs[j].id
		}
		return procs[i].pid < procs[j].pid
	})
	for _, w := range procs {
		st.Workers = append(st.Workers, ipc.WorkerStats{
			ID: w.id, Pid: w.pid, State: w.stateName(), Restarts: m.restarts[w.id],
			LastHeartbeat: w.lastBeat.UnixMilli(), Counters: w.counters, PredictorPids: w.predictorPids,
		})
	}
	st.Sum()
	m.publishStats(st) // for /metrics (metrics.go)
	meta, err := json.Marshal(st)
	if err != nil {
		m.log.Error("encode server stats", "error", err)
		return
	}
	for _, w := range procs { // draining ones too: they still answer scrapes
		w.post(meta)
	}
}

// formatCounts renders counts by reason as "crash=1 exit=2", sorted.
func formatCounts(c map[string]int) string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, c[k])
	}
	return strings.Join(parts, " ")
}
