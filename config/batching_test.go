package config

import (
	"strings"
	"testing"
	"time"
)

func TestBatchingSettings(t *testing.T) {
	for _, tc := range []struct {
		name    string
		target  string
		env     map[string]string
		on      bool
		rows    int
		wait    time.Duration
		note    string
		wantErr string
	}{
		{name: "off by default", target: "regression"},
		{name: "on with defaults", target: "regression", env: map[string]string{"DRUM_BATCHING": "true"},
			on: true, rows: 256, wait: 2 * time.Millisecond},
		{name: "runtime parameters", target: "binary", env: map[string]string{
			"MLOPS_RUNTIME_PARAM_DRUM_BATCHING":          `{"type":"boolean","payload":true}`,
			"MLOPS_RUNTIME_PARAM_DRUM_BATCH_MAX_ROWS":    `{"type":"numeric","payload":64}`,
			"MLOPS_RUNTIME_PARAM_DRUM_BATCH_MAX_WAIT_MS": "0"},
			on: true, rows: 64, wait: 0},
		{name: "plain env wins", target: "multiclass", env: map[string]string{"DRUM_BATCHING": "1",
			"DRUM_BATCH_MAX_ROWS": "1000", "MLOPS_RUNTIME_PARAM_DRUM_BATCH_MAX_ROWS": "5", "DRUM_BATCH_MAX_WAIT_MS": " 10 "},
			on: true, rows: 1000, wait: 10 * time.Millisecond},
		{name: "anomaly", target: "anomaly", env: map[string]string{"DRUM_BATCHING": "true"}, on: true, rows: 256, wait: 2 * time.Millisecond},
		{name: "target not batched", target: "textgeneration", env: map[string]string{"DRUM_BATCHING": "true"},
			note: "DRUM_BATCHING has no effect with target type textgeneration"},
		{name: "knob without batching", target: "regression", env: map[string]string{"DRUM_BATCH_MAX_ROWS": "8"},
			note: "DRUM_BATCH_MAX_ROWS has no effect without DRUM_BATCHING=true"},
		{name: "bad bool", target: "regression", env: map[string]string{"DRUM_BATCHING": "yes please"},
			wantErr: `DRUM_BATCHING="yes please": want true or false`},
		{name: "rows zero", target: "regression", env: map[string]string{"DRUM_BATCHING": "true", "DRUM_BATCH_MAX_ROWS": "0"},
			wantErr: `DRUM_BATCH_MAX_ROWS="0": want an integer from 1 to 1000000`},
		{name: "rows not a number", target: "regression", env: map[string]string{"DRUM_BATCHING": "true", "DRUM_BATCH_MAX_ROWS": "lots"},
			wantErr: `DRUM_BATCH_MAX_ROWS="lots": want an integer from 1 to 1000000`},
		{name: "wait too long", target: "regression", env: map[string]string{"DRUM_BATCHING": "true", "DRUM_BATCH_MAX_WAIT_MS": "5000"},
			wantErr: `DRUM_BATCH_MAX_WAIT_MS="5000": want an integer from 0 to 1000`},
		{name: "wait negative", target: "regression", env: map[string]string{"DRUM_BATCH_MAX_WAIT_MS": "-1"},
			wantErr: `DRUM_BATCH_MAX_WAIT_MS="-1": want an integer from 0 to 1000`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := Flags{Command: CommandServer, CodeDir: modelDir(t, "model.pkl"), TargetType: tc.target, Address: "127.0.0.1:0"}
			switch tc.target {
			case "binary":
				f.PositiveClassLabel, f.NegativeClassLabel = "yes", "no"
			case "multiclass":
				f.ClassLabels = []string{"a", "b", "c"}
			}
			cfg, err := Build(f, envMap(tc.env))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Batching.Batching != tc.on || cfg.BatchMaxRows != tc.rows || cfg.BatchMaxWait != tc.wait {
				t.Errorf("got %+v", cfg.Batching)
			}
			if notes := strings.Join(cfg.Notes, "\n"); !strings.Contains(notes, tc.note) || (tc.note == "" && notes != "") {
				t.Errorf("notes %q, want %q", notes, tc.note)
			}
		})
	}
}
