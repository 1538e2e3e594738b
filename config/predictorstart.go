package config

import (
	"fmt"
	"strings"
)

// Predictor start modes (DRUM_PREDICTOR_START).
const (
	// StartFork: predictors are forked from one warm interpreter per master generation
	// (the zygote), sharing its imported libraries copy-on-write. Falls back to spawn,
	// with a log line saying why, when forking is not possible.
	StartFork = "fork"
	// StartSpawn: every predictor is a fresh interpreter.
	StartSpawn = "spawn"
)

// buildPredictorStart reads DRUM_PREDICTOR_START, a plain variable or a runtime parameter
// (drum server only; default fork). The
// single-process flask mode always spawns: it has no master to own a zygote.
func buildPredictorStart(cfg *Config, env LookupEnv) error {
	cfg.PredictorStart = StartFork
	v, ok := env("DRUM_PREDICTOR_START")
	if !ok { // also accepted as a runtime parameter, like DRUM's own settings
		p, set, err := GetRuntimeParam(env, "DRUM_PREDICTOR_START")
		if err != nil {
			return err
		}
		if set && p.Payload != nil {
			v, ok = p.String(), true
		}
	}
	if ok {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case StartFork, "":
		case StartSpawn:
			cfg.PredictorStart = StartSpawn
		default:
			return fmt.Errorf("DRUM_PREDICTOR_START: %q is not a start mode; accepted values are %s (default) and %s",
				v, StartFork, StartSpawn)
		}
	}
	if cfg.Mode() == ModeSingleProcess {
		cfg.PredictorStart = StartSpawn
	}
	return nil
}
