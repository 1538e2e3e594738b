package config

import (
	"fmt"
	"strconv"
	"time"
)

// Adaptive batching defaults (DRUM_BATCH_MAX_ROWS, DRUM_BATCH_MAX_WAIT_MS).
const (
	DefaultBatchMaxRows = 256
	DefaultBatchMaxWait = 2 * time.Millisecond

	maxBatchRows   = 1_000_000
	maxBatchWaitMS = 1000
)

// Batching is drum's opt-in adaptive batching: concurrent structured predictions on one
// worker with the same columns share one predictor call. It is promoted into Config
// through Serving.
type Batching struct {
	// Batching (DRUM_BATCHING, default false) turns it on.
	Batching bool `json:"batching,omitempty"`
	// BatchMaxRows (DRUM_BATCH_MAX_ROWS) caps the rows of one combined call.
	BatchMaxRows int `json:"batch_max_rows,omitempty"`
	// BatchMaxWait (DRUM_BATCH_MAX_WAIT_MS) is the longest a batch that has its
	// predictor waits for more requests; 0 never waits.
	BatchMaxWait time.Duration `json:"batch_max_wait,omitempty"`
}

// BatchesTarget reports whether predictions of this target type are a per-row float
// table, the only kind batching combines and splits.
func BatchesTarget(targetType string) bool {
	switch targetType {
	case TargetRegression, TargetBinary, TargetMulticlass, TargetAnomaly:
		return true
	}
	return false
}

// buildBatching reads the batching settings (plain environment variables or runtime
// parameters) into cfg.
func buildBatching(cfg *Config, env LookupEnv) error {
	b := &cfg.Batching
	var err error
	if b.Batching, err = boolSetting(env, "DRUM_BATCHING", false); err != nil {
		return err
	}
	rows, err := intSetting(env, "DRUM_BATCH_MAX_ROWS", 1, maxBatchRows, DefaultBatchMaxRows)
	if err != nil {
		return err
	}
	waitMS, err := intSetting(env, "DRUM_BATCH_MAX_WAIT_MS", 0, maxBatchWaitMS, int(DefaultBatchMaxWait/time.Millisecond))
	if err != nil {
		return err
	}
	if !b.Batching {
		for _, name := range []string{"DRUM_BATCH_MAX_ROWS", "DRUM_BATCH_MAX_WAIT_MS"} {
			if _, ok, _ := plainOrParam(env, name); ok {
				cfg.Notes = append(cfg.Notes, name+" has no effect without DRUM_BATCHING=true")
			}
		}
		return nil
	}
	if !BatchesTarget(cfg.TargetType) {
		cfg.Notes = append(cfg.Notes, fmt.Sprintf("DRUM_BATCHING has no effect with target type %s: only regression, binary, multiclass and anomaly predictions are batched", cfg.TargetType))
		b.Batching = false
		return nil
	}
	b.BatchMaxRows, b.BatchMaxWait = rows, time.Duration(waitMS)*time.Millisecond
	return nil
}

// intSetting reads an integer as a plain environment variable or runtime parameter and
// checks it against [min, max].
func intSetting(env LookupEnv, name string, min, max, def int) (int, error) {
	v, ok, err := plainOrParam(env, name)
	if err != nil || !ok || v == "" {
		return def, err
	}
	n, perr := strconv.Atoi(v)
	if perr != nil || n < min || n > max {
		return 0, fmt.Errorf("%s=%q: want an integer from %d to %d", name, v, min, max)
	}
	return n, nil
}
