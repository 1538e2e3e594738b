package predictor

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/drum-go/drum/ipc"
	"github.com/drum-go/drum/worker/predictor/bridge"
)

// poolVars are the thread-pool sizes the zygote caps at one thread so that it stays
// single-threaded, hence safe to fork; each forked predictor restores the user's values.
// Keep in step with _POOL_VARS in bridge/zygote.py.
var poolVars = []string{"OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"}

// Zygote is a warm interpreter, one per master generation, that has imported numpy,
// pandas and scikit-learn and forks predictors on request (bridge/zygote.py). Workers
// reach it through WorkerSocket, inherited like the listener; see ForkServer.
type Zygote struct {
	proc   *process
	bootW  *os.File // the boot pipe: its EOF tells the zygote that the master is gone
	worker *os.File // the workers' end of the fork socket
}

// StartZygote starts the zygote under python with env (the master's environment as
// workers get it); codeDir is the model folder, whose drop-in pickle (if it has no
// custom.py) the zygote preloads. It does not wait for the imports: fork requests queue
// meanwhile.
func StartZygote(python, codeDir string, env []string, log hclog.Logger) (*Zygote, error) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("start zygote: socketpair: %w", err)
	}
	ours := os.NewFile(uintptr(pair[0]), "fork-socket")
	theirs := os.NewFile(uintptr(pair[1]), "fork-socket-zygote")
	defer theirs.Close()
	bootR, bootW, err := os.Pipe()
	if err != nil {
		ours.Close()
		return nil, fmt.Errorf("start zygote: boot pipe: %w", err)
	}
	defer bootR.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		ours.Close()
		bootW.Close()
		return nil, fmt.Errorf("start zygote: output pipe: %w", err)
	}
	defer outW.Close()

	cmd := exec.Command(python, "-c", bridge.ZygoteBootstrap)
	cmd.Env = zygoteEnv(env)
	cmd.Stdout, cmd.Stderr = outW, outW
	cmd.ExtraFiles = []*os.File{bootR, theirs} // fd 3, fd 4
	// Own process group, like the workers: a terminal's Ctrl+C goes to the master only.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	proc, err := startPinned(cmd) // dies with the master (parent-death signal)
	if err != nil {
		ours.Close()
		bootW.Close()
		outR.Close()
		return nil, fmt.Errorf("start zygote: exec %s: %w", python, err)
	}
	zlog := log.With("zygote_pid", proc.pid)
	go func() {
		forwardLines(outR, relogStderr(zlog, &outputTail{}))
		outR.Close()
	}()
	z := &Zygote{proc: proc, bootW: bootW, worker: ours}
	meta, err := zygoteMeta(codeDir, env, bridgeLogLevel(log))
	if err == nil {
		src := append(append(append([]byte{}, bridge.Source...), '\n'), bridge.ZygoteSource...)
		err = ipc.NewWriter(bootW).Write(ipc.KindRequest, 0, meta, src)
	}
	if err != nil {
		z.Stop()
		return nil, fmt.Errorf("start zygote: send its source: %w", err)
	}
	return z, nil
}

// zygoteEnv caps the thread pools the zygote's imports would start.
func zygoteEnv(env []string) []string {
	out := make([]string, 0, len(env)+len(poolVars)+1)
	for _, kv := range env {
		if !isPoolVar(kv) {
			out = append(out, kv)
		}
	}
	for _, v := range poolVars {
		out = append(out, v+"=1")
	}
	return append(out, "PYTHONUNBUFFERED=1")
}

func isPoolVar(kv string) bool {
	for _, v := range poolVars {
		if strings.HasPrefix(kv, v+"=") {
			return true
		}
	}
	return false
}

// zygoteMeta is the zygote's boot configuration: the model folder, its log level and the
// user's own pool sizes (null: unset), which forked predictors restore.
func zygoteMeta(codeDir string, env []string, logLevel string) ([]byte, error) {
	pools := map[string]*string{}
	for _, v := range poolVars {
		pools[v] = nil
	}
	for _, kv := range env {
		if isPoolVar(kv) {
			k, val, _ := strings.Cut(kv, "=")
			pools[k] = &val
		}
	}
	return json.Marshal(map[string]any{"log_level": logLevel, "pool_env": pools, "code_dir": codeDir})
}

// Pid is the zygote's process id.
func (z *Zygote) Pid() int { return z.proc.pid }

// WorkerSocket is the fork socket end every worker inherits.
func (z *Zygote) WorkerSocket() *os.File { return z.worker }

// Done is closed when the zygote has exited.
func (z *Zygote) Done() <-chan struct{} { return z.proc.done }

// Reason says how the zygote ended; valid after Done.
func (z *Zygote) Reason() string { return z.proc.reason() }

// Stop tells the zygote to exit (EOF on its boot pipe), kills it if it has not within
// closeTimeout, and releases the fork socket. Predictors it forked live on until their
// workers stop. Safe to call more than once.
func (z *Zygote) Stop() {
	z.bootW.Close()
	z.worker.Close()
	select {
	case <-z.proc.done:
	case <-time.After(closeTimeout):
		z.proc.kill()
		<-z.proc.done
	}
}
