package config

import (
	"fmt"
	"strings"
	"time"
)

// Server types (DRUM_SERVER_TYPE) and the modes drum runs them in (DESIGN.md §3).
const (
	ServerFlask    = "flask"    // single process: one worker in the master's process
	ServerGunicorn = "gunicorn" // prefork, one predictor per worker
	ServerFastAPI  = "fastapi"  // prefork, a pool of predictors per worker
	ServerUvicorn  = "uvicorn"  // same as fastapi

	ModeSingleProcess = "single-process"
	ModePrefork       = "prefork"
)

// ServerTypes lists the accepted DRUM_SERVER_TYPE values.
var ServerTypes = []string{ServerFlask, ServerGunicorn, ServerFastAPI, ServerUvicorn}

// Serving defaults.
const (
	DefaultQueueSize       = 16
	DefaultBacklog         = 2048
	DefaultMaxBodyBytes    = 1 << 30
	DefaultSpoolThreshold  = 8 << 20
	DefaultKeepAlive       = 5 * time.Second
	DefaultHeaderTimeout   = 10 * time.Second
	DefaultBodyTimeout     = 300 * time.Second
	DefaultMaxHeaderBytes  = 64 << 10
	DefaultOverloadStatus  = 503
	gunicornRequestTimeout = 120 * time.Second // DRUM's gunicorn.conf.py default

	// maxBodyLimit keeps a payload inside one ipc frame (ipc.MaxFrame, 2 GiB - 1).
	maxBodyLimit = 2_000_000_000
)

// Serving is how a server serves: its mode, back-pressure and the limits that protect it
// from overload and bad clients. Its fields are promoted into Config.
type Serving struct {
	// ServerType is DRUM_SERVER_TYPE lower-cased: flask, gunicorn, fastapi, uvicorn, or ""
	// when unset (prefork, the default).
	ServerType string `json:"server_type,omitempty"`
	// Executors is the number of predictors per worker (DRUM_FASTAPI_EXECUTOR_WORKERS;
	// fastapi and uvicorn only, else 1).
	Executors int `json:"executors"`
	// QueueSize is how many predictions may wait per worker for a predictor
	// (DRUM_WORKER_QUEUE_SIZE); beyond it requests get OverloadStatus at once.
	QueueSize int `json:"queue_size"`
	// OverloadStatus is the status of an overload answer: 503 or 429 (DRUM_OVERLOAD_STATUS).
	OverloadStatus int `json:"overload_status"`
	// Backlog is the listen backlog of the server socket (DRUM_WEBSERVER_BACKLOG).
	Backlog int `json:"backlog"`
	// MaxBodyBytes: larger request bodies get 413 (DRUM_MAX_REQUEST_BODY_BYTES).
	MaxBodyBytes int64 `json:"max_body_bytes"`
	// SpoolThreshold: bodies above it are spooled to a temporary file
	// (DRUM_SPOOL_THRESHOLD_BYTES).
	SpoolThreshold int64 `json:"spool_threshold"`
	// KeepAlive is how long an idle keep-alive connection stays open
	// (DRUM_GUNICORN_KEEP_ALIVE).
	KeepAlive time.Duration `json:"keep_alive"`
	// HeaderTimeout bounds reading a request's headers (DRUM_REQUEST_HEADER_TIMEOUT).
	HeaderTimeout time.Duration `json:"header_timeout"`
	// BodyTimeout bounds reading a request's body (DRUM_REQUEST_BODY_TIMEOUT).
	BodyTimeout time.Duration `json:"body_timeout"`
	// MaxHeaderBytes bounds a request's header block (DRUM_MAX_HEADER_BYTES).
	MaxHeaderBytes int `json:"max_header_bytes"`

	// Batching: opt-in adaptive batching of structured predictions (batching.go).
	Batching

	// Notes are start-up messages about accepted parameters that have no effect here;
	// the server logs them once.
	Notes []string `json:"-"`
}

// Mode is how the server type runs: ModeSingleProcess for flask, else ModePrefork.
func (s *Serving) Mode() string {
	if s.ServerType == ServerFlask {
		return ModeSingleProcess
	}
	return ModePrefork
}

// Concurrency is how many predictions one worker runs at once: its predictors.
func (s *Serving) Concurrency() int {
	if s.Executors < 1 {
		return 1
	}
	return s.Executors
}

// ServerTypeName is the server type for display: the configured one, or "default" for
// unset.
func (s *Serving) ServerTypeName() string {
	if s.ServerType == "" {
		return "default"
	}
	return s.ServerType
}

// buildServing reads the serving parameters into cfg (drum server only).
func buildServing(cfg *Config, env LookupEnv) error {
	s := &cfg.Serving
	p, ok, err := GetRuntimeParam(env, "DRUM_SERVER_TYPE")
	if err != nil {
		return err
	}
	if ok && p.Payload != nil {
		v := strings.ToLower(strings.TrimSpace(p.String()))
		known := false
		for _, t := range ServerTypes {
			known = known || v == t
		}
		if !known {
			return fmt.Errorf("runtime parameter DRUM_SERVER_TYPE: %q is not a server type; accepted values are %s (unset: prefork, the default)",
				p.String(), strings.Join(ServerTypes, ", "))
		}
		s.ServerType = v
	}

	executors, err := intParam(env, "DRUM_FASTAPI_EXECUTOR_WORKERS", 1, 64, 1)
	if err != nil {
		return err
	}
	s.Executors = 1
	if s.ServerType == ServerFastAPI || s.ServerType == ServerUvicorn {
		s.Executors = executors
	} else if isSet(env, "DRUM_FASTAPI_EXECUTOR_WORKERS") {
		s.Notes = append(s.Notes, fmt.Sprintf("DRUM_FASTAPI_EXECUTOR_WORKERS has no effect with server type %s: each worker runs one predictor (set DRUM_SERVER_TYPE=fastapi for a pool)", s.ServerTypeName()))
	}
	if p, ok, err := GetRuntimeParam(env, "DRUM_UVICORN_LOOP"); err != nil {
		return err
	} else if ok && p.Payload != nil {
		s.Notes = append(s.Notes, fmt.Sprintf("DRUM_UVICORN_LOOP=%s has no effect: drum's workers are Go, not uvicorn", p.String()))
	}
	if s.ServerType == ServerFlask && cfg.Workers > 1 {
		s.Notes = append(s.Notes, fmt.Sprintf("server type flask runs a single process; %d workers requested, 1 used (use DRUM_SERVER_TYPE=gunicorn for several)", cfg.Workers))
		cfg.Workers = 1
	}
	if s.ServerType == ServerFlask {
		cfg.Workers = 1
	}

	if s.QueueSize, err = intParam(env, "DRUM_WORKER_QUEUE_SIZE", 0, 10000, DefaultQueueSize); err != nil {
		return err
	}
	s.OverloadStatus = DefaultOverloadStatus
	if p, ok, err := GetRuntimeParam(env, "DRUM_OVERLOAD_STATUS"); err != nil {
		return err
	} else if ok && p.Payload != nil {
		n, err := p.Int()
		if err != nil || (n != 429 && n != 503) {
			return fmt.Errorf("runtime parameter DRUM_OVERLOAD_STATUS: %q is not accepted; accepted values are 429 and 503", p.String())
		}
		s.OverloadStatus = n
	}
	if s.Backlog, err = intParam(env, "DRUM_WEBSERVER_BACKLOG", 1, 10000, DefaultBacklog); err != nil {
		return err
	}
	n, err := intParam(env, "DRUM_MAX_REQUEST_BODY_BYTES", 1, maxBodyLimit, DefaultMaxBodyBytes)
	if err != nil {
		return err
	}
	s.MaxBodyBytes = int64(n)
	if n, err = intParam(env, "DRUM_SPOOL_THRESHOLD_BYTES", 1, maxBodyLimit, DefaultSpoolThreshold); err != nil {
		return err
	}
	s.SpoolThreshold = int64(n)
	if s.KeepAlive, err = secondsParam(env, "DRUM_GUNICORN_KEEP_ALIVE", 1, 3600, int(DefaultKeepAlive/time.Second)); err != nil {
		return err
	}
	if s.HeaderTimeout, err = secondsParam(env, "DRUM_REQUEST_HEADER_TIMEOUT", 1, 3600, int(DefaultHeaderTimeout/time.Second)); err != nil {
		return err
	}
	if s.BodyTimeout, err = secondsParam(env, "DRUM_REQUEST_BODY_TIMEOUT", 1, 86400, int(DefaultBodyTimeout/time.Second)); err != nil {
		return err
	}
	if s.MaxHeaderBytes, err = intParam(env, "DRUM_MAX_HEADER_BYTES", 1024, 1<<20, DefaultMaxHeaderBytes); err != nil {
		return err
	}

	if err := buildBatching(cfg, env); err != nil { // batching.go
		return err
	}

	// DRUM's gunicorn kills a request after 120 s unless told otherwise; the other server
	// types have no deadline by default.
	if s.ServerType == ServerGunicorn && !isSet(env, "DRUM_CLIENT_REQUEST_TIMEOUT") {
		cfg.RequestTimeout = gunicornRequestTimeout
	}
	return nil
}

// isSet reports whether a runtime parameter is present with a non-null payload.
func isSet(env LookupEnv, name string) bool {
	p, ok, err := GetRuntimeParam(env, name)
	return err == nil && ok && p.Payload != nil
}
