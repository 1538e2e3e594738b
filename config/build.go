package config

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Command is the sub-command a Config is built for.
type Command string

const (
	CommandServer Command = "server"
	CommandScore  Command = "score"
)

// Flags are the values given on the command line or through their plain environment
// variables (the CLI layer resolves flag > env). A zero value means "not given".
type Flags struct {
	Command            Command
	CodeDir            string
	TargetType         string
	Address            string
	PositiveClassLabel string
	NegativeClassLabel string
	ClassLabels        []string
	ClassLabelsFile    string
	MaxWorkers         int
	MaxWorkersSet      bool
	Python             string
	LogLevel           string
	PIDFile            string
	ControlSocket      string // "" = the default for the address, "none" = no control socket
	WithErrorServer    bool   // --with-error-server (WITH_ERROR_SERVER is read by Build)
	Input              string
	Output             string
	ContentType        string // drum score --content-type (unstructured only)
	Query              string // drum score --query (unstructured only)
	SparseColumnFile   string // drum score --sparse-column-file
}

// UsageError is a problem with the arguments: the CLI prints it with usage and exits 2.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usagef(format string, a ...any) error { return &UsageError{Msg: fmt.Sprintf(format, a...)} }

// Build validates flags, runtime parameters and model-metadata.yaml into one Config.
// Every error names the flag or parameter at fault and what to do about it.
func Build(f Flags, env LookupEnv) (*Config, error) {
	if env == nil {
		env = os.LookupEnv
	}
	seen := &lookups{env: env, names: map[string]bool{}}
	env = seen.lookup
	cfg := &Config{
		LogLevel:          "info",
		ModelLoadTimeout:  600 * time.Second,
		GracefulTimeout:   30 * time.Second,
		HeartbeatInterval: 2 * time.Second,
		HeartbeatTimeout:  30 * time.Second,
		PIDFile:           f.PIDFile,
	}

	if f.CodeDir == "" {
		return nil, usagef("the --code-dir flag (or CODE_DIR) is required: pass the folder that holds custom.py or the model artifact")
	}
	dir, err := resolveCodeDir(f.CodeDir)
	if err != nil {
		return nil, err
	}
	cfg.CodeDir = dir

	meta, err := readMetadata(dir)
	if err != nil {
		return nil, err
	}
	if err := resolveTargetType(cfg, f, meta); err != nil {
		return nil, err
	}
	if err := resolveLabels(cfg, f, meta); err != nil {
		return nil, err
	}
	if err := checkCodeDir(cfg.CodeDir); err != nil {
		return nil, err
	}

	switch f.Command {
	case CommandServer:
		if f.Address == "" {
			return nil, usagef("the --address flag (or ADDRESS) is required: pass host:port, e.g. --address 0.0.0.0:8080")
		}
		if err := checkAddress(f.Address); err != nil {
			return nil, err
		}
		cfg.Address = f.Address
		switch f.ControlSocket {
		case "":
			cfg.ControlSocket = DefaultControlSocket(f.Address)
		case "none", "off":
		default:
			cfg.ControlSocket = f.ControlSocket
		}
		if cfg.Workers, err = resolveWorkers(f, env); err != nil {
			return nil, err
		}
		if cfg.HeartbeatTimeout, err = secondsParam(env, "DRUM_WORKER_HEARTBEAT_TIMEOUT", 1, 3600, 30); err != nil {
			return nil, err
		}
		// Heartbeats come often enough that one lost beat never looks like a dead worker.
		cfg.HeartbeatInterval = min(2*time.Second, cfg.HeartbeatTimeout/3)
		if cfg.MaxRequests, err = intParam(env, "DRUM_GUNICORN_MAX_REQUESTS", 0, 10000, 0); err != nil {
			return nil, err
		}
		if cfg.MaxRequestsJitter, err = intParam(env, "DRUM_GUNICORN_MAX_REQUESTS_JITTER", 0, 10000, 0); err != nil {
			return nil, err
		}
		if cfg.GracefulTimeout, err = secondsParam(env, "DRUM_GUNICORN_GRACEFUL_TIMEOUT", 1, 3600, 30); err != nil {
			return nil, err
		}
		if cfg.ModelLoadTimeout, err = secondsParam(env, "DRUM_MODEL_LOAD_TIMEOUT", 1, 86400, 600); err != nil {
			return nil, err
		}
		if cfg.RequestTimeout, err = secondsParam(env, "DRUM_CLIENT_REQUEST_TIMEOUT", 0, 3600, 0); err != nil {
			return nil, err
		}
		fastCSV, err := boolSetting(env, "DRUM_FAST_CSV", true)
		if err != nil {
			return nil, err
		}
		cfg.DisableFastCSV = !fastCSV
		if err := buildServing(cfg, env); err != nil { // serving.go
			return nil, err
		}
		if err := buildPredictorStart(cfg, env); err != nil { // predictorstart.go
			return nil, err
		}
		cfg.WithErrorServer = f.WithErrorServer
		if v, ok := env("WITH_ERROR_SERVER"); ok && !cfg.WithErrorServer {
			switch strings.ToLower(strings.TrimSpace(v)) {
			case "1", "true", "yes", "on":
				cfg.WithErrorServer = true
			case "", "0", "false", "no", "off":
			default:
				return nil, fmt.Errorf("WITH_ERROR_SERVER %q: use 1/true or 0/false", v)
			}
		}
		if prefix, ok := env("URL_PREFIX"); ok && prefix != "" {
			// Werkzeug refuses a rule that does not start with "/", so DRUM fails to start.
			if !strings.HasPrefix(prefix, "/") {
				return nil, fmt.Errorf("URL_PREFIX %q must start with \"/\" (e.g. /model/v1)", prefix)
			}
			cfg.URLPrefix = prefix
		}
	case CommandScore:
		if f.Input == "" {
			return nil, usagef("the --input flag is required: pass the CSV (or .mtx) file to score")
		}
		if st, err := os.Stat(f.Input); err != nil || st.IsDir() {
			return nil, usagef("--input %s: not a readable file", f.Input)
		}
		cfg.Input, cfg.Output = f.Input, f.Output
		cfg.Workers = 1
		if cfg.TargetType == TargetUnstructured {
			cfg.ContentType, cfg.Query = f.ContentType, f.Query
			if cfg.ContentType == "" {
				cfg.ContentType = "text/plain; charset=utf8"
			}
		} else if f.Query != "" || f.ContentType != "" {
			return nil, usagef("--query and --content-type are only for --target-type unstructured")
		}
		if f.SparseColumnFile != "" {
			if st, err := os.Stat(f.SparseColumnFile); err != nil || st.IsDir() {
				return nil, usagef("--sparse-column-file %s: not a readable file", f.SparseColumnFile)
			}
			cfg.SparseColumnFile = f.SparseColumnFile
		}
	default:
		return nil, fmt.Errorf("config: unknown command %q", f.Command)
	}

	if f.LogLevel != "" {
		lvl, err := normaliseLevel(f.LogLevel)
		if err != nil {
			return nil, err
		}
		cfg.LogLevel = lvl
	} else if p, ok, err := GetRuntimeParam(env, "DRUM_GUNICORN_LOG_LEVEL"); err != nil {
		return nil, err
	} else if ok && p.Payload != nil {
		if cfg.LogLevel, err = normaliseLevel(p.String()); err != nil {
			return nil, fmt.Errorf("runtime parameter DRUM_GUNICORN_LOG_LEVEL: %w", err)
		}
	}
	if err := buildOperability(cfg, f.Command, env); err != nil { // operability.go
		return nil, err
	}
	cfg.Python = f.Python
	cfg.Notes = append(cfg.Notes, seen.plainOnly()...)
	return cfg, nil
}

// lookups records the variables Build reads, so that a setting drum (like DRUM) reads
// only as a runtime parameter, but which was set as a plain variable, is pointed out
// instead of silently ignored.
type lookups struct {
	env   LookupEnv
	names map[string]bool
}

func (l *lookups) lookup(name string) (string, bool) {
	l.names[name] = true
	return l.env(name)
}

// plainOnly names each runtime parameter read (MLOPS_RUNTIME_PARAM_X unset) whose plain
// variable X is set but never read.
func (l *lookups) plainOnly() []string {
	var notes []string
	for name := range l.names {
		param, ok := strings.CutPrefix(name, RuntimeParamPrefix)
		if !ok || l.names[param] {
			continue
		}
		if _, set := l.env(name); set {
			continue
		}
		if _, set := l.env(param); set {
			notes = append(notes, fmt.Sprintf("%s is set as a plain environment variable, which is not read: "+
				"like DRUM, drum reads it only as the runtime parameter %s", param, name))
		}
	}
	sort.Strings(notes)
	return notes
}

func resolveCodeDir(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", usagef("--code-dir %s: %v", path, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", usagef("--code-dir %s: the folder does not exist; pass the model folder (it holds custom.py or the model artifact)", path)
	}
	st, err := os.Stat(real)
	if err != nil || !st.IsDir() {
		return "", usagef("--code-dir %s: not a directory; pass the model folder", path)
	}
	return real, nil
}

func resolveTargetType(cfg *Config, f Flags, meta *metadata) error {
	tt := strings.TrimSpace(f.TargetType)
	mt := ""
	if meta != nil {
		mt = meta.TargetType
	}
	switch {
	case tt == "" && mt == "":
		return usagef("Target type is missing. It must be provided in --target-type argument, TARGET_TYPE env var or model config file.")
	case tt != "" && mt != "" && tt != mt:
		return usagef("Target type provided in --target-type argument doesn't match target type from model config file. Use either one of them or make them match.")
	case tt == "":
		tt = mt
	}
	for _, known := range TargetTypes {
		if tt == known {
			cfg.TargetType = tt
			return nil
		}
	}
	return usagef("--target-type %q is not a target type; use one of: %s", tt, strings.Join(TargetTypes, ", "))
}

func resolveWorkers(f Flags, env LookupEnv) (int, error) {
	if f.MaxWorkersSet && f.MaxWorkers <= 0 {
		return 0, usagef("--max-workers: must be > 0 (got %d)", f.MaxWorkers)
	}
	// As in DRUM, the runtime parameter wins over the flag: DataRobot sets it per deployment.
	p, ok, err := GetRuntimeParam(env, "CUSTOM_MODEL_WORKERS")
	if err != nil {
		return 0, err
	}
	if ok && p.Payload != nil {
		n, err := p.Int()
		if err != nil {
			return 0, err
		}
		if n < 1 || n > 199 {
			return 0, fmt.Errorf("runtime parameter CUSTOM_MODEL_WORKERS: %d is out of range; accepted values are 1 to 199", n)
		}
		return n, nil
	}
	if f.MaxWorkersSet {
		return f.MaxWorkers, nil
	}
	return 1, nil
}

func checkAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return usagef("--address %q: %v; use host:port, e.g. 0.0.0.0:8080", addr, err)
	}
	_ = host
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return usagef("--address %q: port %q is not a number from 0 to 65535", addr, port)
	}
	return nil
}

func secondsParam(env LookupEnv, name string, min, max, def int) (time.Duration, error) {
	n, err := intParam(env, name, min, max, def)
	if err != nil {
		return 0, err
	}
	return time.Duration(n) * time.Second, nil
}

var levels = map[string]string{
	"all": "trace", "trace": "trace", "debug": "debug", "info": "info", "warn": "warn",
	"warning": "warn", "error": "error", "critical": "error", "fatal": "error",
}

func normaliseLevel(s string) (string, error) {
	if l, ok := levels[strings.ToLower(strings.TrimSpace(s))]; ok {
		return l, nil
	}
	return "", usagef("--logging-level %q: use one of all, debug, info, warn, warning, error, critical, fatal", s)
}
