// Package config builds drum's one validated Config from command-line flags, plain
// environment variables, runtime parameters (MLOPS_RUNTIME_PARAM_*), model-metadata.yaml
// and built-in defaults, in that order of precedence (DESIGN.md §7).
package config

import (
	"net"
	"os"
	"path/filepath"
	"time"
)

// Version is the DRUM version drum is compatible with; it is sent as X-Drum-Version and
// reported by /info/ so clients that check it keep working.
const Version = "1.17.20.post1"

// Target types DRUM knows.
const (
	TargetBinary         = "binary"
	TargetRegression     = "regression"
	TargetAnomaly        = "anomaly"
	TargetUnstructured   = "unstructured"
	TargetMulticlass     = "multiclass"
	TargetTransform      = "transform"
	TargetTextGeneration = "textgeneration"
	TargetGeoPoint       = "geopoint"
	TargetVectorDatabase = "vectordatabase"
	TargetAgenticFlow    = "agenticworkflow"
	TargetMultilabel     = "multilabel"
)

// TargetTypes lists the accepted --target-type values in DRUM's order.
var TargetTypes = []string{
	TargetBinary, TargetRegression, TargetAnomaly, TargetUnstructured, TargetMulticlass,
	TargetTransform, TargetTextGeneration, TargetGeoPoint, TargetVectorDatabase,
	TargetAgenticFlow, TargetMultilabel,
}

// Config is everything a master, worker or predictor needs. It is built and validated
// once (in the master, or by `drum score`) and sent to workers over ipc as JSON.
type Config struct {
	CodeDir            string   `json:"code_dir"` // absolute, symlinks resolved
	TargetType         string   `json:"target_type"`
	Address            string   `json:"address"` // host:port
	PositiveClassLabel string   `json:"positive_class_label,omitempty"`
	NegativeClassLabel string   `json:"negative_class_label,omitempty"`
	ClassLabels        []string `json:"class_labels,omitempty"`
	Workers            int      `json:"workers"`
	Python             string   `json:"python"` // interpreter that imports pandas
	LogLevel           string   `json:"log_level"`
	LogJSON            bool     `json:"log_json"`
	PIDFile            string   `json:"pid_file,omitempty"`
	ControlSocket      string   `json:"control_socket,omitempty"` // unix socket for drum ctl; "" = none
	URLPrefix          string   `json:"url_prefix,omitempty"`     // URL_PREFIX: every route lives under it
	// WithErrorServer (--with-error-server / WITH_ERROR_SERVER): a worker whose model
	// fails to load serves DRUM's error server (513 answers) instead of failing.
	WithErrorServer bool `json:"with_error_server,omitempty"`

	// RequestTimeout is the per-request deadline (DRUM_CLIENT_REQUEST_TIMEOUT); 0 = none.
	RequestTimeout time.Duration `json:"request_timeout"`

	// DisableFastCSV (DRUM_FAST_CSV=false) makes every CSV prediction request go to
	// pandas.read_csv in the predictor instead of the worker's exact Go parser.
	DisableFastCSV bool `json:"disable_fast_csv,omitempty"`

	// Timeouts and budgets.
	ModelLoadTimeout  time.Duration `json:"model_load_timeout"`
	GracefulTimeout   time.Duration `json:"graceful_timeout"`
	HeartbeatInterval time.Duration `json:"heartbeat_interval"`
	HeartbeatTimeout  time.Duration `json:"heartbeat_timeout"`

	// Serving: server type, back-pressure, body and slow-client limits (serving.go).
	Serving

	// Operability: metrics, access log, auth, extra headers, CORS (operability.go).
	Operability

	// Recycling: a worker that has served MaxRequests (plus up to MaxRequestsJitter,
	// drawn per worker) is replaced; 0 = never.
	MaxRequests       int `json:"max_requests"`
	MaxRequestsJitter int `json:"max_requests_jitter"`

	// Inputs for `drum score`.
	Input  string `json:"input,omitempty"`
	Output string `json:"output,omitempty"`
	// Unstructured `drum score`: --content-type (default "text/plain; charset=utf8") and
	// --query ("a=1&b=2").
	ContentType string `json:"content_type,omitempty"`
	Query       string `json:"query,omitempty"`
	// SparseColumnFile is --sparse-column-file: column names of an .mtx --input.
	SparseColumnFile string `json:"sparse_column_file,omitempty"`
}

// IsClassification reports whether the target type produces per-class probabilities.
func (c *Config) IsClassification() bool {
	switch c.TargetType {
	case TargetBinary, TargetMulticlass, TargetMultilabel:
		return true
	}
	return false
}

// Labels returns the request labels in the order DRUM's server passes them: binary
// [positive, negative], multiclass/multilabel the configured order, else nil.
func (c *Config) Labels() []string {
	switch c.TargetType {
	case TargetBinary:
		return []string{c.PositiveClassLabel, c.NegativeClassLabel}
	case TargetMulticlass, TargetMultilabel:
		return c.ClassLabels
	}
	return nil
}

// DefaultControlSocket is where `drum server --address address` puts its control socket
// (drum ctl) unless told otherwise; one per port, so servers on one host do not clash.
func DefaultControlSocket(address string) string {
	_, port, _ := net.SplitHostPort(address)
	return filepath.Join(os.TempDir(), "drum-"+port+".sock")
}
