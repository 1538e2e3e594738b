package main

import (
	"context"

	"github.com/urfave/cli/v2"

	"github.com/drum-go/drum/config"
	"github.com/drum-go/drum/supervisor"
)

func serverCommand() *cli.Command {
	flags := append(modelFlags(),
		&cli.StringFlag{Name: "address", EnvVars: []string{"ADDRESS"}, Usage: "host:port to listen on"},
		&cli.IntFlag{Name: "max-workers", EnvVars: []string{"MAX_WORKERS"}, Usage: "number of worker processes (runtime parameter CUSTOM_MODEL_WORKERS wins)"},
		&cli.StringFlag{Name: "pid-file", EnvVars: []string{"DRUM_PID_FILE"}, Usage: "write the master's pid here (kept current across SIGHUP upgrades)"},
		&cli.StringFlag{Name: "log-file", EnvVars: []string{"DRUM_LOG_FILE"}, Usage: "write the log here instead of stderr; SIGUSR1 reopens it (for logrotate)"},
		&cli.StringFlag{Name: "control-socket", EnvVars: []string{"DRUM_CONTROL_SOCKET"}, Usage: "unix socket for drum ctl (default: drum-PORT.sock in the temp dir; none disables it)"},
		&cli.BoolFlag{Name: "with-error-server", Usage: "when the model fails to load, serve 513 answers with the error instead of exiting (WITH_ERROR_SERVER=1)"},
		&cli.BoolFlag{Name: "production", EnvVars: []string{"PRODUCTION"}, Usage: "accepted for DRUM compatibility (deprecated there too)"},
	)
	return &cli.Command{
		Name:   "server",
		Usage:  "serve the model over HTTP with a prefork master and N workers",
		Flags:  flags,
		Action: runServer,
	}
}

func runServer(c *cli.Context) error {
	cfg, err := buildConfig(c, config.CommandServer, func(f *config.Flags) {
		f.Address = c.String("address")
		f.MaxWorkers, f.MaxWorkersSet = c.Int("max-workers"), c.IsSet("max-workers")
		f.PIDFile = c.String("pid-file")
		f.ControlSocket = c.String("control-socket")
		f.WithErrorServer = c.Bool("with-error-server")
	})
	if err != nil {
		return err
	}
	log := newLogger("drum", cfg.LogLevel, cfg.LogJSON)
	// Server type (DRUM_SERVER_TYPE): flask is one worker in this process; every other
	// type (and unset) is the prefork master, whose workers size their predictor pools
	// from the Config.
	for _, note := range cfg.Notes {
		log.Warn(note)
	}
	log.Info("server type", "server_type", cfg.ServerTypeName(), "mode", cfg.Mode(),
		"predictors_per_worker", cfg.Concurrency(), "queue_per_worker", cfg.QueueSize)
	if cfg.Batching.Batching {
		log.Info("adaptive batching on", "max_rows", cfg.BatchMaxRows, "max_wait", cfg.BatchMaxWait)
	}
	if cfg.Mode() == config.ModeSingleProcess {
		return runSingleProcess(cfg, log)
	}
	opts := supervisor.Options{Config: *cfg, Logger: log}
	if path := c.String("log-file"); path != "" {
		lf, err := openLogFile(path)
		if err != nil {
			return err
		}
		opts.Logger = newLoggerTo(lf, "drum", cfg.LogLevel, cfg.LogJSON)
		opts.ReopenLogs = lf.Reopen
	}
	return supervisor.Run(context.Background(), opts)
}
