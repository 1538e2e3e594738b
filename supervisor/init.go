package supervisor

import (
	"errors"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/hashicorp/go-hclog"
)

// InitChildEnv marks the master started by the init role, so it does not become an
// init itself.
const InitChildEnv = "DRUM_INIT_CHILD"

// ShouldRunInit reports whether this process is a container's PID 1 and so must take
// the init role: as PID 1 the master could not survive a SIGHUP upgrade (tableflip
// replaces the master with a new process and the old one exits, which would end the
// container), and nobody would reap orphaned grandchildren.
func ShouldRunInit() bool {
	return os.Getpid() == 1 && os.Getenv(InitChildEnv) == "" && os.Getenv("DRUM_NO_INIT") == ""
}

// RunInit is the permanent PID 1: it starts the real master (this binary with the same
// arguments), forwards every control signal to whichever master is current, follows
// the master across upgrades through the PID file, reaps every orphan, and exits with
// the master's status once a master exits without a successor.
func RunInit(args []string, log hclog.Logger) int {
	exe, err := os.Executable()
	if err != nil {
		log.Error("init: cannot find own executable", "error", err)
		return 1
	}
	env := os.Environ()
	pidFile := pidFileArg(args)
	if pidFile == "" {
		pidFile = os.Getenv("DRUM_PID_FILE")
	}
	if pidFile == "" {
		pidFile = filepath.Join(os.TempDir(), "drum-master.pid")
		env = append(env, "DRUM_PID_FILE="+pidFile)
	}
	env = append(env, InitChildEnv+"=1")

	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, syscall.SIGCHLD, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT,
		syscall.SIGHUP, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGUSR1)

	proc, err := os.StartProcess(exe, args, &os.ProcAttr{Env: env, Files: []*os.File{os.Stdin, os.Stdout, os.Stderr}})
	if err != nil {
		log.Error("init: start master", "error", err)
		return 1
	}
	master := proc.Pid
	log.Info("init: running as PID 1; master started", "master_pid", master, "pid_file", pidFile)

	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			if cur := currentMaster(pidFile, master); cur > 0 {
				_ = syscall.Kill(cur, sig.(syscall.Signal))
			}
			continue
		}
		// One SIGCHLD may stand for several exits: reap until none is left.
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || errors.Is(err, syscall.ECHILD) {
				break
			}
			if pid != master {
				continue // an orphan, reaped
			}
			next := currentMaster(pidFile, master)
			if next > 0 && next != master {
				log.Info("init: master handed over after an upgrade; following the new one", "old_pid", master, "master_pid", next)
				master = next
				continue
			}
			code := ws.ExitStatus()
			if ws.Signaled() {
				code = 128 + int(ws.Signal())
			}
			log.Info("init: master exited; stopping", "master_pid", master, "code", code)
			return code
		}
	}
	return 0
}

// currentMaster is the pid in the PID file when that process is alive, else fallback.
func currentMaster(pidFile string, fallback int) int {
	if pid, err := readPIDFile(pidFile); err == nil && pid > 0 && syscall.Kill(pid, 0) == nil {
		return pid
	}
	if syscall.Kill(fallback, 0) == nil {
		return fallback
	}
	return 0
}

// pidFileArg finds --pid-file in a command line (a flag wins over DRUM_PID_FILE).
func pidFileArg(args []string) string {
	for i, a := range args {
		switch {
		case a == "--pid-file" || a == "-pid-file":
			if i+1 < len(args) {
				return args[i+1]
			}
		case strings.HasPrefix(a, "--pid-file="):
			return strings.TrimPrefix(a, "--pid-file=")
		}
	}
	return ""
}
