package supervisor

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cloudflare/tableflip"
	"github.com/hashicorp/go-hclog"

	"github.com/drum-go/drum/ipc"
	"github.com/drum-go/drum/worker"
	"github.com/drum-go/drum/worker/predictor"
)

type evKind int

const (
	evReady evKind = iota
	evHeartbeat
	evFailed
	evExit
	evUpgrade
	evParentExited
	evZygoteExit
)

// event is everything the loop reacts to besides signals and its ticker.
type event struct {
	kind   evKind
	w      *workerProc
	ready  ipc.Ready
	beat   ipc.Heartbeat
	failed string
	err    error
	state  *os.ProcessState
	zygote *predictor.Zygote // evZygoteExit
}

// master is the state the loop owns; only the loop goroutine touches it.
type master struct {
	opts   Options
	log    hclog.Logger
	upg    *tableflip.Upgrader
	ln     net.Listener
	lnFile *os.File
	events chan event

	want        int                 // desired number of workers
	workers     map[int]*workerProc // slot id -> current process
	respawnAt   map[int]time.Time   // slot id -> when to start its replacement
	slotCrashes map[int]int         // consecutive quick deaths per slot, for back-off
	bootFails   int                 // workers in a row that died before becoming ready
	lastBootErr string

	startedAt    time.Time
	announced    bool // all workers of this generation were ready once
	upgrading    bool
	stopping     bool
	stopDeadline time.Time
	exits        map[string]int      // worker exits by reason
	restarts     map[int]int         // replacements per slot
	surge        map[int]*workerProc // slot id -> replacement booting to take over (recycling)
	leaving      map[int]*workerProc // pid -> a replaced worker still draining (recycling)
	departed     ipc.ServerStats     // Departed: the counters of every worker that has exited
	oomKills     int                 // cgroup OOM-kill count last seen
	handedOver   bool                // an upgraded master took over: keep the PID file
	readyCalled  bool                // upg.Ready was called: this generation took over
	parentAlive  bool                // the master we replaced is still draining
	hupPending   bool                // a HUP came while it was: upgrade once it has exited
	ctl          chan ctlCall        // drum ctl requests for the loop
	ctlLn        net.Listener        // the control socket, if any
	lastStats    time.Time           // last stats broadcast
	metrics      metricsState        // /metrics on DRUM_METRICS_ADDRESS (metrics.go)
	zygote       *predictor.Zygote   // forks predictors for this generation's workers (zygote.go); nil: they spawn
}

// Run starts the master and blocks until it has stopped. It returns nil after a clean
// shutdown (a signal, ctx cancellation, or handing over to an upgraded master) and an
// error when it cannot serve (socket in use, workers that never boot).
func Run(ctx context.Context, opts Options) error {
	if err := opts.setDefaults(); err != nil {
		return fmt.Errorf("master: %w", err)
	}
	cfg := opts.Config
	m := &master{
		opts:        opts,
		log:         opts.Logger,
		events:      make(chan event, 64),
		want:        cfg.Workers,
		workers:     map[int]*workerProc{},
		respawnAt:   map[int]time.Time{},
		slotCrashes: map[int]int{},
		startedAt:   opts.Now(),
		exits:       map[string]int{},
		restarts:    map[int]int{},
		surge:       map[int]*workerProc{},
		leaving:     map[int]*workerProc{},
		ctl:         make(chan ctlCall),
	}
	m.oomKills, _ = cgroupOOMKills()
	upg, err := tableflip.New(tableflip.Options{
		PIDFile: cfg.PIDFile,
		// A new generation must load its models before the old one lets go.
		UpgradeTimeout: cfg.ModelLoadTimeout + 30*time.Second,
	})
	if err != nil {
		return fmt.Errorf("master: init upgrader: %w", err)
	}
	m.upg = upg
	defer m.stopUpgrader()
	if !upg.HasParent() {
		if err := checkPIDFile(cfg.PIDFile); err != nil {
			return fmt.Errorf("master: %w", err)
		}
	} else {
		// tableflip cannot upgrade again until the master we replace has exited.
		m.parentAlive = true
		go func() {
			_ = upg.WaitForParent(context.Background())
			m.events <- event{kind: evParentExited}
		}()
	}
	defer func() {
		if !m.handedOver && m.tookOver() {
			removePIDFile(cfg.PIDFile)
		}
	}()

	ln, err := upg.Listen("tcp", cfg.Address)
	if err != nil {
		return fmt.Errorf("master: listen on %s: %w", cfg.Address, err)
	}
	m.ln = ln
	// Go listens with somaxconn; DRUM_WEBSERVER_BACKLOG asks for its own queue length.
	// Set it again after an upgrade too: the new master may run with a new value.
	if cfg.Backlog > 0 {
		if err := worker.SetBacklog(ln, cfg.Backlog); err != nil {
			m.log.Warn("cannot set the listen backlog", "backlog", cfg.Backlog, "error", err)
		}
	}
	tcp, ok := ln.(*net.TCPListener)
	if !ok {
		return fmt.Errorf("master: listener on %s is %T, not TCP", cfg.Address, ln)
	}
	if m.lnFile, err = tcp.File(); err != nil {
		return fmt.Errorf("master: listener fd: %w", err)
	}
	defer m.lnFile.Close()

	// The control socket goes through tableflip too, so drum ctl keeps working across
	// upgrades: the new master inherits the same socket.
	if cfg.ControlSocket != "" {
		if !upg.HasParent() {
			if err := clearStaleSocket(cfg.ControlSocket); err != nil {
				return fmt.Errorf("master: %w", err)
			}
		}
		cl, err := upg.Listen("unix", cfg.ControlSocket)
		if err != nil {
			return fmt.Errorf("master: control socket %s: %w", cfg.ControlSocket, err)
		}
		_ = os.Chmod(cfg.ControlSocket, 0o600) // it can kill workers: owner only
		// Served only once this generation is ready (announceIfReady): during an
		// upgrade the old master keeps answering drum ctl until it hands over.
		m.ctlLn = cl
	}

	if err := m.serveMetrics(upg.Listen); err != nil { // metrics.go
		return fmt.Errorf("master: metrics address %s: %w", cfg.MetricsAddress, err)
	}
	defer m.stopMetrics()

	sigs := opts.Signals
	if sigs == nil {
		sigs = make(chan os.Signal, 16)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP,
			syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGUSR1)
		defer signal.Stop(sigs)
	}

	m.startZygote() // zygote.go
	defer m.stopZygote()
	m.log.Info("starting workers", "address", ln.Addr().String(), "workers", m.want,
		"code_dir", cfg.CodeDir, "target_type", cfg.TargetType, "python", cfg.Python,
		"upgrade", upg.HasParent())
	for id := 1; id <= m.want; id++ {
		if err := m.startSlot(id); err != nil {
			m.stopAll(false)
			m.drain(ctx)
			return err
		}
	}
	return m.loop(ctx, sigs)
}

// tookOver reports whether this master owns the server's shared files (the control
// socket and the PID file): a first master always does; one started by an upgrade only
// once it called Ready. Until then they are still the old master's, which keeps serving
// if this one fails.
func (m *master) tookOver() bool {
	return !m.upg.HasParent() || m.readyCalled
}

// stopUpgrader stops tableflip (in stopAll, and when Run returns). Stop unlinks every
// Unix socket in use (it assumes a shutdown without an upgrade), so a master started
// by an upgrade that never took over must not call it: the control socket it inherited
// is the old master's, still serving, and drum ctl reload must keep reaching it to
// retry. Its copies of the descriptors close when the process exits; the path stays.
func (m *master) stopUpgrader() {
	if m.tookOver() {
		m.upg.Stop()
	}
}

// startSlot starts the worker for one slot and records it.
func (m *master) startSlot(id int) error {
	w, err := m.spawn(id)
	if err != nil {
		return err
	}
	m.workers[id] = w
	delete(m.respawnAt, id)
	m.log.Debug("worker started", "worker", id, "pid", w.pid)
	return nil
}
