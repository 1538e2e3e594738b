package predictor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/drum-go/drum/ipc"
	"github.com/drum-go/drum/worker/predictor/bridge"
)

// closeTimeout is how long Close waits for a clean exit before SIGKILL.
const closeTimeout = 5 * time.Second

// drainTimeout bounds the wait for a dead predictor's last stderr lines.
const drainTimeout = time.Second

// Python is a predictor process running bridge.py under a Python interpreter.
//
// Calls are serialised (the bridge answers one at a time). When a call's context is
// cancelled the call returns at once and the predictor stays usable: its late reply is
// recognised by its stale id and dropped. When a call's *deadline* passes the predictor is
// presumed hung: it is killed, the call returns a *TimeoutError, and every later call
// returns a *DiedError — the owner must start a new predictor.
type Python struct {
	pid  int
	info Info
	log  hclog.Logger
	proc *process
	tail *outputTail

	reqW *os.File // our end of the child's fd 3
	repR *os.File // our end of the child's fd 4
	w    *ipc.Writer

	hello      chan helloMeta // the first Hello frame
	readerDone chan struct{}  // closed when readReplies has returned
	logDone    sync.WaitGroup // stdout/stderr forwarding

	callMu  sync.Mutex // one call at a time
	nextID  atomic.Uint64
	mu      sync.Mutex
	pending map[uint64]chan callResult
	// partials are the OnPartial callbacks of pending calls that asked for them.
	partials map[uint64]func([]byte)

	closeOnce sync.Once
	closeErr  error
}

type callResult struct {
	res *Result
	err error
}

var _ Predictor = (*Python)(nil)

// StartPython starts cfg.Python on the embedded bridge, which loads the model in
// cfg.CodeDir, and returns once it has. ctx and cfg.LoadTimeout (when > 0) bound the
// start; the process itself outlives ctx and ends with Close, or with its parent
// (Pdeathsig). A model that fails to load gives an error wrapping *LoadError.
func StartPython(ctx context.Context, cfg Config) (*Python, error) {
	return startAndWarm(ctx, cfg, spawnBridge)
}

func startAndWarm(ctx context.Context, cfg Config, launch launcher) (*Python, error) {
	p, err := startPython(ctx, cfg, launch)
	if err != nil {
		return nil, fmt.Errorf("start predictor: %w", err)
	}
	if err := p.warmUp(ctx, cfg.LoadTimeout); err != nil {
		p.proc.kill()
		return nil, fmt.Errorf("start predictor: %w", err)
	}
	return p, nil
}

// warmUp makes one round trip through the bridge's request loop, so a predictor counts
// as started only once it has answered a call: a new generation of workers is ready
// (and the old one may drain) only when its predictors really serve.
func (p *Python) warmUp(ctx context.Context, limit time.Duration) error {
	if limit <= 0 {
		limit = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	probe := []byte("drum-warm-up")
	res, err := p.Call(ctx, &Request{Op: "ping", Payload: probe})
	if err != nil {
		return fmt.Errorf("warm-up call: %w", err)
	}
	if string(res.Body) != string(probe) {
		return fmt.Errorf("warm-up call: predictor echoed %q, want %q", res.Body, probe)
	}
	return nil
}

// launcher starts the predictor process on the child ends of pipes; bootMeta is the
// bridge configuration (see bootMeta).
type launcher func(ctx context.Context, cfg Config, pipes *childPipes, bootMeta []byte) (*process, error)

// spawnBridge execs a fresh interpreter on the bridge bootstrap.
func spawnBridge(_ context.Context, cfg Config, pipes *childPipes, _ []byte) (*process, error) {
	cmd := exec.Command(cfg.Python, "-c", bridge.Bootstrap)
	cmd.Env = append(append(os.Environ(), cfg.Env...), "PYTHONUNBUFFERED=1")
	cmd.Stdout, cmd.Stderr = pipes.outW, pipes.errW
	cmd.ExtraFiles = []*os.File{pipes.reqR, pipes.repW} // fd 3, fd 4
	proc, err := startPinned(cmd)
	if err != nil {
		return nil, fmt.Errorf("exec %s: %w", cfg.Python, err)
	}
	return proc, nil
}

func startPython(ctx context.Context, cfg Config, launch launcher) (*Python, error) {
	if cfg.Python == "" {
		return nil, errors.New("no Python interpreter configured (see FindPython)")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	if cfg.LoadTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.LoadTimeout)
		defer cancel()
	}
	meta, err := bootMeta(cfg, logger)
	if err != nil {
		return nil, err
	}

	pipes, err := openChildPipes()
	if err != nil {
		return nil, err
	}
	proc, err := launch(ctx, cfg, pipes, meta)
	pipes.closeChildEnds()
	if err != nil {
		pipes.closeParentEnds()
		return nil, err
	}

	p := &Python{
		pid:        proc.pid,
		log:        logger.With("predictor_pid", proc.pid),
		proc:       proc,
		tail:       &outputTail{},
		reqW:       pipes.reqW,
		repR:       pipes.repR,
		w:          ipc.NewWriter(pipes.reqW),
		hello:      make(chan helloMeta, 1),
		readerDone: make(chan struct{}),
		pending:    map[uint64]chan callResult{},
		partials:   map[uint64]func([]byte){},
	}
	p.logDone.Add(2)
	go func() {
		defer p.logDone.Done()
		forwardLines(pipes.outR, relogStdout(p.log))
		pipes.outR.Close()
	}()
	go func() {
		defer p.logDone.Done()
		forwardLines(pipes.errR, relogStderr(p.log, p.tail))
		pipes.errR.Close()
	}()
	go p.readReplies()
	go p.closePipesOnExit()

	if err := p.boot(ctx, meta); err != nil {
		p.proc.kill()
		<-p.proc.done
		return nil, err
	}
	scorer := p.info.Predictor
	if scorer == "" {
		scorer = "custom.py hooks"
	}
	p.log.Info("predictor ready", "scoring_with", scorer, "hooks", p.info.Hooks,
		"python", p.info.PythonVersion, "pandas", p.info.PandasVersion)
	return p, nil
}

// bootMeta is the bridge configuration: the meta of the boot frame (spawned), or part of
// the fork request (forked).
func bootMeta(cfg Config, log hclog.Logger) ([]byte, error) {
	meta, err := json.Marshal(bootConfig{
		CodeDir:            cfg.CodeDir,
		TargetType:         cfg.TargetType,
		PositiveClassLabel: cfg.PositiveClassLabel,
		NegativeClassLabel: cfg.NegativeClassLabel,
		ClassLabels:        cfg.ClassLabels,
		LogLevel:           bridgeLogLevel(log),
	})
	if err != nil {
		return nil, fmt.Errorf("encode bridge config: %w", err)
	}
	return meta, nil
}

// boot sends the bridge its source and configuration (unless it runs already) and waits
// for the Hello.
func (p *Python) boot(ctx context.Context, meta []byte) error {
	var sent chan error
	if !p.proc.bridgeRunning {
		sent = make(chan error, 1)
		go func() { sent <- p.w.Write(ipc.KindRequest, 0, meta, bridge.Source) }()
	}

	for {
		select {
		case err := <-sent:
			if err != nil && !p.proc.exited() {
				return fmt.Errorf("send bridge to predictor process %d: %w", p.pid, err)
			}
			sent = nil // a failed send to a dead child is explained by its exit below
		case h := <-p.hello:
			return p.loaded(h)
		case <-p.proc.done:
			// A bridge that fails to load writes its Hello and exits at once: read what
			// it wrote before deciding it said nothing.
			p.waitReader()
			select {
			case h := <-p.hello:
				return p.loaded(h)
			default:
			}
			p.drainLogs()
			msg := fmt.Sprintf("predictor process %d (%s) exited before loading the model: %s",
				p.pid, p.proc.path, p.proc.reason())
			if tail := p.tail.String(); tail != "" {
				msg += "; last output:\n" + tail
			}
			return errors.New(msg)
		case <-ctx.Done():
			return fmt.Errorf("predictor process %d did not load the model in time: %w", p.pid, ctx.Err())
		}
	}
}

// loaded records a Hello, or turns a failed one into a *LoadError.
func (p *Python) loaded(h helloMeta) error {
	if !h.OK {
		le := &LoadError{Pid: p.pid, Message: h.Error, Type: h.ErrorType, Traceback: h.Traceback}
		p.log.Error("model failed to load", "error", le.Message)
		return le
	}
	p.info = Info{Hooks: h.Hooks, PythonVersion: h.Python, PandasVersion: h.Pandas}
	if h.Predictor != nil {
		p.info.Predictor = *h.Predictor
	}
	return nil
}

// bridgeLogLevel passes the worker's log level down so the bridge does not format records
// that would be dropped anyway.
func bridgeLogLevel(log hclog.Logger) string {
	switch log.GetLevel() {
	case hclog.Trace, hclog.Debug:
		return "debug"
	case hclog.Warn:
		return "warn"
	case hclog.Error:
		return "error"
	case hclog.Off:
		return "off"
	default:
		return "info"
	}
}

// drainLogs waits (bounded) for the last output of an exited predictor.
func (p *Python) drainLogs() {
	done := make(chan struct{})
	go func() { p.logDone.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(drainTimeout):
	}
}

// readReplies delivers reply frames to the call waiting for their id, and drops the rest.
func (p *Python) readReplies() {
	defer close(p.readerDone)
	defer p.repR.Close()
	r := ipc.NewReader(p.repR)
	gotHello := false
	for {
		f, err := r.Read()
		if err != nil {
			// EOF is normal when the child exits; a child that lives on without its reply
			// channel (or with a corrupt one) can never answer again.
			if !errors.Is(err, os.ErrClosed) && !p.exitsSoon() {
				p.log.Error("predictor reply channel failed; killing it", "error", err)
				p.proc.kill()
			}
			return
		}
		switch f.Kind {
		case ipc.KindHello:
			var h helloMeta
			if err := json.Unmarshal(f.Meta, &h); err != nil {
				h = helloMeta{Error: fmt.Sprintf("undecodable hello from predictor: %v", err)}
			}
			if !gotHello {
				gotHello = true
				p.hello <- h
			}
		case ipc.KindReply:
			if bytes.HasPrefix(f.Meta, partialMeta) {
				// One piece of a streamed answer; the call goes on.
				p.mu.Lock()
				fn := p.partials[f.ID]
				p.mu.Unlock()
				if fn != nil {
					fn(append([]byte(nil), f.Data...))
				}
				continue
			}
			p.mu.Lock()
			ch := p.pending[f.ID]
			delete(p.pending, f.ID)
			delete(p.partials, f.ID)
			p.mu.Unlock()
			if ch == nil {
				p.log.Debug("dropping reply to a call that was abandoned", "id", f.ID)
				continue
			}
			res, err := decodeReply(f.Meta, f.Data)
			ch <- callResult{res: res, err: err}
		default:
			p.log.Warn("ignoring unexpected frame from predictor", "kind", f.Kind, "id", f.ID)
		}
	}
}

// exitsSoon reports whether the child exits within drainTimeout.
func (p *Python) exitsSoon() bool {
	select {
	case <-p.proc.done:
		return true
	case <-time.After(drainTimeout):
		return false
	}
}

// closePipesOnExit releases our ends of the protocol pipes once the child is gone: the
// request end at once (unblocking any writer), the reply end once its last frames are
// read — or after drainTimeout, should a process the user's code forked still hold it.
func (p *Python) closePipesOnExit() {
	<-p.proc.done
	p.reqW.Close()
	p.waitReader()
	p.repR.Close()
}

// waitReader waits (bounded) until every frame the exited child wrote has been read.
func (p *Python) waitReader() {
	select {
	case <-p.readerDone:
	case <-time.After(drainTimeout):
	}
}

// Info reports what the predictor loaded.
func (p *Python) Info() Info { return p.info }

// Pid is the predictor's process id.
func (p *Python) Pid() int { return p.pid }

// Done is closed when the predictor process has exited.
func (p *Python) Done() <-chan struct{} { return p.proc.done }

func (p *Python) died() *DiedError {
	return &DiedError{Pid: p.pid, Reason: p.proc.reason()}
}

// Call sends one request and waits for its reply. A failure of the model is a
// *ModelError; a predictor that exits meanwhile gives *DiedError; a passed deadline gives
// *TimeoutError (and the predictor is killed); a cancelled context returns ctx.Err()
// wrapped, leaving the predictor running.
func (p *Python) Call(ctx context.Context, req *Request) (*Result, error) {
	p.callMu.Lock()
	defer p.callMu.Unlock()
	if p.proc.exited() {
		return nil, p.died()
	}
	if err := ctx.Err(); err != nil {
		// Nothing was sent: the predictor is as healthy as before.
		return nil, fmt.Errorf("predictor call not sent: %w", err)
	}
	data := req.Payload
	var tm *tableMeta
	if req.Table != nil {
		raw := req.Payload
		if req.OmitPayload {
			raw = nil
		}
		tm, data = encodeTable(req.Table, raw)
	}
	meta, err := json.Marshal(requestMeta{
		Table:          tm,
		Op:             req.Op,
		MimeType:       req.MimeType,
		NoMimeType:     req.NoMimeType,
		Charset:        req.Charset,
		Format:         req.Format,
		SparseColNames: req.SparseColNames,
		ScoreOutput:    req.ScoreOutput,
		Y:              req.Y,
		Query:          req.Query,
		Headers:        req.Headers,
		Batch:          req.Batch,
		Partials:       req.OnPartial != nil,
		TraceParent:    req.TraceParent,
		TraceState:     req.TraceState,
	})
	if err != nil {
		return nil, fmt.Errorf("encode predictor request: %w", err)
	}
	id := p.nextID.Add(1)
	ch := make(chan callResult, 1)
	p.mu.Lock()
	p.pending[id] = ch
	if req.OnPartial != nil {
		p.partials[id] = req.OnPartial
	}
	p.mu.Unlock()

	// The write may block while the bridge is still busy with an abandoned call and the
	// payload exceeds the pipe buffer, so it runs aside and the wait below covers it.
	sent := make(chan error, 1)
	go func() { sent <- p.w.Write(ipc.KindRequest, id, meta, data) }()
	writing := true
	for {
		select {
		case err := <-sent:
			writing = false
			sent = nil
			if err != nil {
				p.forget(id)
				p.proc.kill() // half a frame may be in the pipe: the stream is unusable
				<-p.proc.done
				return nil, p.died()
			}
		case r := <-ch:
			return r.res, r.err
		case <-p.proc.done:
			p.waitReader()
			select { // the reply may have arrived just before the exit
			case r := <-ch:
				return r.res, r.err
			default:
			}
			p.forget(id)
			return nil, p.died()
		case <-ctx.Done():
			p.forget(id)
			if writing && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				// Abandoning a half-written frame would corrupt the stream.
				p.proc.kill()
				return nil, fmt.Errorf("predictor call %d abandoned while sending its payload (predictor %d killed): %w",
					id, p.pid, ctx.Err())
			}
			return nil, p.abandon(id, ctx.Err())
		}
	}
}

// abandon turns a finished context into the call's error; a deadline kills the predictor.
func (p *Python) abandon(id uint64, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		p.log.Warn("predictor call timed out; killing the predictor", "id", id)
		p.proc.kill()
		return &TimeoutError{Pid: p.pid, ID: id, Err: err}
	}
	return fmt.Errorf("predictor call %d abandoned: %w", id, err)
}

func (p *Python) forget(id uint64) {
	p.mu.Lock()
	delete(p.pending, id)
	delete(p.partials, id)
	p.mu.Unlock()
}

// Close asks the bridge to exit, waits up to 5 s, then kills it. It returns an error only
// when the predictor had to be killed. Safe to call more than once and concurrently with
// a Call (which then fails with *DiedError).
func (p *Python) Close() error {
	p.closeOnce.Do(func() {
		if p.proc.exited() {
			return
		}
		// Shutdown, then EOF: either makes an idle bridge exit. The write runs aside in
		// case the pipe is full.
		go func() {
			_ = p.w.Write(ipc.KindShutdown, 0, nil, nil)
			p.reqW.Close()
		}()
		select {
		case <-p.proc.done:
		case <-time.After(closeTimeout):
			p.log.Warn("predictor did not exit after shutdown; killing it")
			p.proc.kill()
			<-p.proc.done
			p.closeErr = fmt.Errorf("predictor process %d did not exit within %s; killed", p.pid, closeTimeout)
		}
		p.drainLogs()
	})
	return p.closeErr
}
