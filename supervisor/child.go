package supervisor

import (
	"fmt"
	"net"
	"os"

	"github.com/drum-go/drum/config"
	"github.com/drum-go/drum/ipc"
	"github.com/drum-go/drum/worker/predictor"
)

// The file descriptors a worker inherits (exec.Cmd.ExtraFiles starts at 3).
const (
	listenerFD = 3 // the shared listening socket
	controlFD  = 4 // this worker's end of the control socketpair
	// forkFD (5, zygote.go): the zygote's fork socket, when WorkerConfig.Fork says so
)

// WorkerConfig is the first control message a worker receives.
type WorkerConfig struct {
	ID     int           `json:"id"`
	Config config.Config `json:"config"`
	Fork   bool          `json:"fork,omitempty"` // the zygote's fork socket is on forkFD
}

// Inherited is what a worker process gets from its master.
type Inherited struct {
	ID       int
	Config   config.Config
	Listener net.Listener
	Control  *ipc.Conn
	// Fork asks the generation's zygote for predictors; nil: spawn them.
	Fork *predictor.ForkServer
}

// Inherit is called by the worker role at start-up: it takes the listener and control
// channel from their fds and reads the configuration the master sent.
func Inherit() (*Inherited, error) {
	ctrlFile := os.NewFile(controlFD, "control")
	if ctrlFile == nil {
		return nil, fmt.Errorf("worker: no control channel on fd %d (the worker role is started by drum server)", controlFD)
	}
	ctrl := ipc.NewConn(ctrlFile)
	f, err := ctrl.Read()
	if err != nil {
		return nil, fmt.Errorf("worker: read config from master: %w", err)
	}
	if f.Kind != ipc.KindConfig {
		return nil, fmt.Errorf("worker: expected config from master, got message kind %d", f.Kind)
	}
	var wc WorkerConfig
	if err := ipc.Decode(f, &wc); err != nil {
		return nil, err
	}
	lnFile := os.NewFile(listenerFD, "listener")
	ln, err := net.FileListener(lnFile)
	if err != nil {
		return nil, fmt.Errorf("worker %d: inherit listener on fd %d: %w", wc.ID, listenerFD, err)
	}
	lnFile.Close() // FileListener dup'ed it
	inh := &Inherited{ID: wc.ID, Config: wc.Config, Listener: ln, Control: ctrl}
	if wc.Fork {
		if inh.Fork, err = predictor.NewForkServer(os.NewFile(forkFD, "fork")); err != nil {
			return nil, fmt.Errorf("worker %d: inherit the zygote's socket on fd %d: %w", wc.ID, forkFD, err)
		}
	}
	return inh, nil
}
