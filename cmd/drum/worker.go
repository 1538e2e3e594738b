package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/urfave/cli/v2"

	"github.com/drum-go/drum/config"
	"github.com/drum-go/drum/supervisor"
	"github.com/drum-go/drum/worker"
	"github.com/drum-go/drum/worker/predictor"
)

// workerCommand is the hidden role the master re-executes the binary in.
func workerCommand() *cli.Command {
	return &cli.Command{
		Name:   "worker",
		Usage:  "internal: one worker process, started by drum server",
		Hidden: true,
		Action: runWorker,
	}
}

func runWorker(c *cli.Context) error {
	inh, err := supervisor.Inherit()
	if err != nil {
		return err
	}
	cfg := inh.Config
	log := newLogger("worker", cfg.LogLevel, true)

	// SIGTERM drains (in-flight requests finish); SIGQUIT/SIGINT stop at once — the
	// predictor dies with this process: a spawned one through its parent-death signal, a
	// forked one (the zygote's child) by watching this process's pidfd.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGINT)
	go func() {
		for sig := range sigs {
			if sig == syscall.SIGTERM {
				cancel()
				continue
			}
			log.Info("fast stop", "signal", sig.String())
			os.Exit(0)
		}
	}()

	return worker.Run(ctx, worker.Options{
		Config:            cfg,
		Listener:          inh.Listener,
		Control:           inh.Control,
		WorkerID:          inh.ID,
		Logger:            log,
		HeartbeatInterval: cfg.HeartbeatInterval,
		GracefulTimeout:   cfg.GracefulTimeout,
		RequestTimeout:    cfg.RequestTimeout,
		URLPrefix:         cfg.URLPrefix,
		NewPredictor: func(ctx context.Context) (predictor.Predictor, error) {
			// Forked from the generation's zygote when there is one (DRUM_PREDICTOR_START).
			p, err := inh.Fork.StartOrSpawn(ctx, predictorConfig(&cfg, log.Named("predictor")))
			if err != nil {
				return nil, err // a nil interface, not a nil *Python in one
			}
			return p, nil
		},
	})
}

func predictorConfig(cfg *config.Config, log hclog.Logger) predictor.Config {
	return predictor.Config{
		Python:             cfg.Python,
		CodeDir:            cfg.CodeDir,
		TargetType:         cfg.TargetType,
		PositiveClassLabel: cfg.PositiveClassLabel,
		NegativeClassLabel: cfg.NegativeClassLabel,
		ClassLabels:        cfg.ClassLabels,
		LoadTimeout:        cfg.ModelLoadTimeout,
		Logger:             log,
	}
}

// startPredictor starts a Python predictor. It returns a nil interface on error: a nil
// *Python inside a non-nil Predictor would pass a `p != nil` check.
func startPredictor(ctx context.Context, cfg *config.Config, log hclog.Logger) (predictor.Predictor, error) {
	p, err := predictor.StartPython(ctx, predictorConfig(cfg, log))
	if err != nil {
		return nil, err
	}
	return p, nil
}
