// Package supervisor is drum's master process: it owns the listening socket (through
// tableflip, so a SIGHUP can hand it to a new binary without dropping connections),
// starts N copies of its own executable in the hidden worker role, watches them over a
// control channel, replaces the ones that die, and stops them on a signal.
//
// Like gunicorn's arbiter, signal handlers only enqueue; one loop (loop.go) handles
// signals, worker events, heartbeat checks and the worker count, top to bottom.
package supervisor

import (
	"os"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/drum-go/drum/config"
)

// Options configure a master.
type Options struct {
	Config config.Config
	Logger hclog.Logger

	// Executable and WorkerArgs start one worker: Executable WorkerArgs... (the drum
	// binary and its hidden "worker" command). Defaults: os.Executable(), ["worker"].
	Executable string
	WorkerArgs []string

	// Signals delivers OS signals to the loop; nil means the real ones (signal.Notify).
	Signals chan os.Signal

	// MaxBootFailures is how many times in a row workers may fail to start before the
	// master gives up and exits with the last error (default 3).
	MaxBootFailures int

	// ReopenLogs reopens the log file on SIGUSR1 (nil: logs go to stderr, nothing to do).
	ReopenLogs func() error

	// Now is the clock seam (default time.Now).
	Now func() time.Time
}

func (o *Options) setDefaults() error {
	if o.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		o.Executable = exe
	}
	if o.WorkerArgs == nil {
		o.WorkerArgs = []string{"worker"}
	}
	if o.MaxBootFailures <= 0 {
		o.MaxBootFailures = 3
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	return nil
}
