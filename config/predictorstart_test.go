package config

import (
	"strings"
	"testing"
)

func TestPredictorStart(t *testing.T) {
	for _, tc := range []struct {
		env     map[string]string
		want    string
		wantErr string
	}{
		{env: nil, want: StartFork},
		{env: map[string]string{"DRUM_PREDICTOR_START": "spawn"}, want: StartSpawn},
		{env: map[string]string{"DRUM_PREDICTOR_START": " Fork "}, want: StartFork},
		{env: map[string]string{"MLOPS_RUNTIME_PARAM_DRUM_PREDICTOR_START": `{"type":"string","payload":"spawn"}`}, want: StartSpawn},
		{env: map[string]string{"DRUM_PREDICTOR_START": ""}, want: StartFork},
		{env: map[string]string{"MLOPS_RUNTIME_PARAM_DRUM_SERVER_TYPE": "flask"}, want: StartSpawn},
		{env: map[string]string{"DRUM_PREDICTOR_START": "forkserver"}, wantErr: `DRUM_PREDICTOR_START: "forkserver" is not a start mode; accepted values are fork (default) and spawn`},
	} {
		cfg, err := buildServer(t, tc.env, 0)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%v: error %v, want %q", tc.env, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", tc.env, err)
			continue
		}
		if cfg.PredictorStart != tc.want {
			t.Errorf("%v: PredictorStart %q, want %q", tc.env, cfg.PredictorStart, tc.want)
		}
	}
}
