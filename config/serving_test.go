package config

import (
	"strings"
	"testing"
	"time"
)

func buildServer(t *testing.T, env map[string]string, workers int) (*Config, error) {
	t.Helper()
	f := Flags{Command: CommandServer, CodeDir: modelDir(t, "model.pkl"), TargetType: "regression", Address: "127.0.0.1:0"}
	if workers > 0 {
		f.MaxWorkers, f.MaxWorkersSet = workers, true
	}
	return Build(f, envMap(env))
}

func TestServingDefaults(t *testing.T) {
	cfg, err := buildServer(t, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Serving
	if s.ServerType != "" || cfg.Mode() != ModePrefork || cfg.Concurrency() != 1 || s.QueueSize != 16 || s.OverloadStatus != 503 ||
		s.Backlog != 2048 || s.MaxBodyBytes != 1<<30 || s.SpoolThreshold != 8<<20 || s.KeepAlive != 5*time.Second ||
		s.HeaderTimeout != 10*time.Second || s.BodyTimeout != 300*time.Second || s.MaxHeaderBytes != 64<<10 ||
		cfg.RequestTimeout != 0 || len(s.Notes) != 0 {
		t.Fatalf("defaults: %+v, request timeout %s", s, cfg.RequestTimeout)
	}
}

func TestServerTypes(t *testing.T) {
	for _, tc := range []struct {
		env         map[string]string
		workers     int
		typ, mode   string
		executors   int
		wantWorkers int
		timeout     time.Duration
		note        string
	}{
		{map[string]string{"MLOPS_RUNTIME_PARAM_DRUM_SERVER_TYPE": `{"type":"string","payload":"gunicorn"}`}, 3, "gunicorn", ModePrefork, 1, 3, 120 * time.Second, ""},
		{map[string]string{"MLOPS_RUNTIME_PARAM_DRUM_SERVER_TYPE": "gunicorn", "MLOPS_RUNTIME_PARAM_DRUM_CLIENT_REQUEST_TIMEOUT": "0"}, 1, "gunicorn", ModePrefork, 1, 1, 0, ""},
		{map[string]string{"MLOPS_RUNTIME_PARAM_DRUM_SERVER_TYPE": " FastAPI ", "MLOPS_RUNTIME_PARAM_DRUM_FASTAPI_EXECUTOR_WORKERS": `{"type":"numeric","payload":4}`}, 2, "fastapi", ModePrefork, 4, 2, 0, ""},
		{map[string]string{"MLOPS_RUNTIME_PARAM_DRUM_SERVER_TYPE": "uvicorn", "MLOPS_RUNTIME_PARAM_DRUM_UVICORN_LOOP": "uvloop"}, 0, "uvicorn", ModePrefork, 1, 1, 0, "DRUM_UVICORN_LOOP=uvloop has no effect"},
		{map[string]string{"MLOPS_RUNTIME_PARAM_DRUM_SERVER_TYPE": "flask"}, 4, "flask", ModeSingleProcess, 1, 1, 0, "server type flask runs a single process; 4 workers requested, 1 used"},
		{map[string]string{"MLOPS_RUNTIME_PARAM_DRUM_FASTAPI_EXECUTOR_WORKERS": "3"}, 0, "", ModePrefork, 1, 1, 0, "DRUM_FASTAPI_EXECUTOR_WORKERS has no effect with server type default"},
		{map[string]string{"MLOPS_RUNTIME_PARAM_DRUM_SERVER_TYPE": `{"type":"string","payload":null}`}, 0, "", ModePrefork, 1, 1, 0, ""},
	} {
		cfg, err := buildServer(t, tc.env, tc.workers)
		if err != nil {
			t.Fatalf("%v: %v", tc.env, err)
		}
		if cfg.ServerType != tc.typ || cfg.Mode() != tc.mode || cfg.Concurrency() != tc.executors || cfg.Workers != tc.wantWorkers ||
			cfg.RequestTimeout != tc.timeout {
			t.Errorf("%v: type %q mode %s executors %d workers %d timeout %s", tc.env, cfg.ServerType, cfg.Mode(), cfg.Concurrency(), cfg.Workers, cfg.RequestTimeout)
		}
		if notes := strings.Join(cfg.Notes, "\n"); !strings.Contains(notes, tc.note) || (tc.note == "" && notes != "") {
			t.Errorf("%v: notes %q, want %q", tc.env, notes, tc.note)
		}
	}
}

func TestServingErrors(t *testing.T) {
	for _, tc := range []struct {
		name, value, want string
	}{
		{"DRUM_SERVER_TYPE", "tornado", `runtime parameter DRUM_SERVER_TYPE: "tornado" is not a server type; accepted values are flask, gunicorn, fastapi, uvicorn`},
		{"DRUM_SERVER_TYPE", `{"type":"string","payload":""}`, "DRUM_SERVER_TYPE: Invalid runtime parameter!"},
		{"DRUM_FASTAPI_EXECUTOR_WORKERS", "0", "DRUM_FASTAPI_EXECUTOR_WORKERS: 0 is out of range; accepted values are 1 to 64"},
		{"DRUM_WORKER_QUEUE_SIZE", "-1", "DRUM_WORKER_QUEUE_SIZE: -1 is out of range; accepted values are 0 to 10000"},
		{"DRUM_WORKER_QUEUE_SIZE", "lots", `DRUM_WORKER_QUEUE_SIZE: "lots" is not a number`},
		{"DRUM_OVERLOAD_STATUS", "500", `DRUM_OVERLOAD_STATUS: "500" is not accepted; accepted values are 429 and 503`},
		{"DRUM_WEBSERVER_BACKLOG", `{"type":"numeric","payload":20000}`, "DRUM_WEBSERVER_BACKLOG: 20000 is out of range; accepted values are 1 to 10000"},
		{"DRUM_WEBSERVER_BACKLOG", "0", "DRUM_WEBSERVER_BACKLOG: 0 is out of range; accepted values are 1 to 10000"},
		{"DRUM_MAX_REQUEST_BODY_BYTES", "0", "DRUM_MAX_REQUEST_BODY_BYTES: 0 is out of range; accepted values are 1 to 2000000000"},
		{"DRUM_SPOOL_THRESHOLD_BYTES", "5000000000", "DRUM_SPOOL_THRESHOLD_BYTES"},
		{"DRUM_SPOOL_THRESHOLD_BYTES", "0", "DRUM_SPOOL_THRESHOLD_BYTES: 0 is out of range; accepted values are 1 to 2000000000"},
		{"DRUM_GUNICORN_KEEP_ALIVE", "0", "DRUM_GUNICORN_KEEP_ALIVE: 0 is out of range; accepted values are 1 to 3600"},
		{"DRUM_REQUEST_HEADER_TIMEOUT", "0", "DRUM_REQUEST_HEADER_TIMEOUT: 0 is out of range; accepted values are 1 to 3600"},
		{"DRUM_REQUEST_BODY_TIMEOUT", "100000", "DRUM_REQUEST_BODY_TIMEOUT: 100000 is out of range; accepted values are 1 to 86400"},
		{"DRUM_MAX_HEADER_BYTES", "100", "DRUM_MAX_HEADER_BYTES: 100 is out of range; accepted values are 1024 to 1048576"},
		{"DRUM_UVICORN_LOOP", `{"type":"string"}`, "DRUM_UVICORN_LOOP: Invalid runtime parameter!"},
	} {
		_, err := buildServer(t, map[string]string{"MLOPS_RUNTIME_PARAM_" + tc.name: tc.value}, 0)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s=%s: error %v, want %q", tc.name, tc.value, err, tc.want)
		}
	}
}

func TestServingValues(t *testing.T) {
	cfg, err := buildServer(t, map[string]string{
		"MLOPS_RUNTIME_PARAM_DRUM_WORKER_QUEUE_SIZE":      "0",
		"MLOPS_RUNTIME_PARAM_DRUM_OVERLOAD_STATUS":        `{"type":"numeric","payload":429}`,
		"MLOPS_RUNTIME_PARAM_DRUM_WEBSERVER_BACKLOG":      "77",
		"MLOPS_RUNTIME_PARAM_DRUM_MAX_REQUEST_BODY_BYTES": "1048576",
		"MLOPS_RUNTIME_PARAM_DRUM_SPOOL_THRESHOLD_BYTES":  "1",
		"MLOPS_RUNTIME_PARAM_DRUM_GUNICORN_KEEP_ALIVE":    "60",
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Serving
	if s.QueueSize != 0 || s.OverloadStatus != 429 || s.Backlog != 77 || s.MaxBodyBytes != 1<<20 || s.SpoolThreshold != 1 || s.KeepAlive != time.Minute {
		t.Fatalf("%+v", s)
	}
}
