package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/drum-go/drum/config"
	"github.com/drum-go/drum/worker"
	"github.com/drum-go/drum/worker/predictor"
)

// flaskDeprecation is logged when DRUM_SERVER_TYPE=flask selects the single-process mode.
const flaskDeprecation = "DRUM_SERVER_TYPE=flask is deprecated: it runs a single process that serves one " +
	"request at a time (for debugging); use DRUM_SERVER_TYPE=gunicorn (or leave it unset) for the prefork " +
	"server, or fastapi for a pool of predictors per worker"

// runSingleProcess is DRUM_SERVER_TYPE=flask: one worker in this process, on a listener
// it opens itself, with no master. SIGTERM drains in-flight requests; SIGINT and SIGQUIT
// stop at once (the predictor dies with this process).
func runSingleProcess(cfg *config.Config, log hclog.Logger) error {
	log.Warn(flaskDeprecation)
	ln, err := worker.Listen(cfg.Address, cfg.Backlog)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Address, err)
	}
	if cfg.PIDFile != "" {
		if err := os.WriteFile(cfg.PIDFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			ln.Close()
			return fmt.Errorf("write pid file: %w", err)
		}
		defer os.Remove(cfg.PIDFile)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGINT)
	defer signal.Stop(sigs)
	go func() {
		for sig := range sigs {
			if sig == syscall.SIGTERM {
				log.Info("graceful stop", "signal", sig.String())
				cancel()
				continue
			}
			log.Info("fast stop", "signal", sig.String())
			if cfg.PIDFile != "" {
				os.Remove(cfg.PIDFile)
			}
			os.Exit(0)
		}
	}()

	wlog := log.Named("worker")
	return worker.Run(ctx, worker.Options{
		Config:         *cfg,
		Listener:       ln,
		WorkerID:       1,
		Logger:         wlog,
		RequestTimeout: cfg.RequestTimeout,
		URLPrefix:      cfg.URLPrefix,
		NewPredictor: func(ctx context.Context) (predictor.Predictor, error) {
			return startPredictor(ctx, cfg, wlog.Named("predictor"))
		},
		OnReady: func(pids []int) {
			log.Info(fmt.Sprintf("drum ready: listening on %s with 1 worker (single process, server type flask)", ln.Addr()),
				"predictor_pids", pids, "backlog", cfg.Backlog)
		},
	})
}
