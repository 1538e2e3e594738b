package supervisor

import (
	"os"

	"github.com/drum-go/drum/config"
	"github.com/drum-go/drum/worker/predictor"
)

// forkFD is the fd of the zygote's fork socket in a worker, when there is one.
const forkFD = 5

// startZygote starts this generation's zygote when predictors are to be forked
// (DRUM_PREDICTOR_START=fork, the default). Each generation has its own, so an upgrade
// forks from an interpreter that has never seen the old code. Without one (spawn asked
// for, or it could not start) workers spawn their predictors; the log says why.
func (m *master) startZygote() {
	cfg := m.opts.Config
	if cfg.PredictorStart != config.StartFork {
		m.log.Info("predictors start as fresh interpreters", "predictor_start", config.StartSpawn,
			"why", "DRUM_PREDICTOR_START="+cfg.PredictorStart)
		return
	}
	z, err := predictor.StartZygote(cfg.Python, cfg.CodeDir, workerEnv(os.Environ()), m.log.Named("zygote"))
	if err != nil {
		m.log.Warn("predictors start as fresh interpreters: the zygote did not start", "predictor_start", config.StartSpawn,
			"error", err)
		return
	}
	m.zygote = z
	m.log.Info("predictors fork from a shared zygote", "predictor_start", config.StartFork, "zygote_pid", z.Pid())
	go func() {
		<-z.Done()
		m.events <- event{kind: evZygoteExit, zygote: z}
	}()
}

// zygoteExited drops a zygote that died: workers already running fall back to spawning
// on their next fork request (it fails), new workers are not given a fork socket.
func (m *master) zygoteExited(z *predictor.Zygote) {
	if m.zygote != z {
		return
	}
	m.zygote = nil
	z.Stop()
	if !m.stopping {
		m.log.Error("the zygote exited; predictors start as fresh interpreters from now on",
			"zygote_pid", z.Pid(), "reason", z.Reason())
	}
}

// stopZygote ends the zygote when the master leaves; the predictors it forked end with
// their workers.
func (m *master) stopZygote() {
	if z := m.zygote; z != nil {
		m.zygote = nil
		z.Stop()
	}
}

// workerFiles are the fds a new worker inherits from fd 3 on, and whether it gets the
// fork socket.
func (m *master) workerFiles(control *os.File) ([]*os.File, bool) {
	files := []*os.File{m.lnFile, control} // listenerFD, controlFD
	if m.zygote == nil {
		return files, false
	}
	return append(files, m.zygote.WorkerSocket()), true // forkFD
}
