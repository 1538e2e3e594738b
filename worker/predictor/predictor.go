// Package predictor runs the user's model. The only implementation today is Python: a
// child process running the embedded bridge script (bridge/bridge.py) under the
// configured interpreter, which loads custom.py or a drop-in artifact the way DRUM does.
//
// The worker talks to a predictor through the ipc frame format over two dedicated pipes
// (fd 3: requests to the predictor, fd 4: replies from it). The predictor's stdout and
// stderr carry only user prints and its own log lines, which are re-logged by the worker.
package predictor

import (
	"context"
	"fmt"
	"time"

	"github.com/drum-go/drum/worker/table"
	"github.com/hashicorp/go-hclog"
)

// Config says which model to load and how.
type Config struct {
	Python             string // interpreter path; see FindPython
	CodeDir            string // absolute, symlink-resolved model folder
	TargetType         string // regression, binary, multiclass, ...
	PositiveClassLabel string // binary only
	NegativeClassLabel string // binary only
	ClassLabels        []string
	Env                []string      // extra environment for the child (KEY=VALUE)
	LoadTimeout        time.Duration // budget for interpreter start + model load
	Logger             hclog.Logger  // receives the child's output, re-logged with its pid
}

// Request is one call into the predictor.
type Request struct {
	// Op is "predict" (server: float-cast prediction table) or "score" (drum score:
	// CSV as pandas to_csv writes it, or the DataFrame text rendering).
	Op       string
	MimeType string // resolved MIME type ("" means CSV)
	// NoMimeType says DRUM would pass mimetype=None to the hooks: a multipart file part
	// whose filename does not end in .mtx (a raw body without Content-Type gives "").
	NoMimeType     bool
	Charset        string
	Format         string // "csv" or "mtx"
	Payload        []byte
	SparseColNames []string
	// Table, when set (Op "predict"), is the payload already parsed exactly as pandas
	// read_csv would: the bridge builds the DataFrame from these columns instead of
	// parsing Payload. Payload is sent too, as hooks see it as binary_data, unless
	// OmitPayload says none does (then binary_data is empty).
	Table       *table.Table
	OmitPayload bool
	// ScoreOutput is "csv" or "text" for Op "score".
	ScoreOutput string

	// Op "transform": the optional y file part (CSV), nil without one.
	Y []byte
	// Ops "unstructured" and "chat": the query string pairs in order and the request
	// headers as DRUM hands them to hooks (Title-Case names, values joined by ",").
	Query   [][2]string
	Headers [][2]string
	// Op "unstructured": Payload is the raw body; MimeType/Charset as sent ("" for none).

	// Batch marks a `drum score` call of op "unstructured" or "transform": no headers
	// kwarg, a None return written as DRUM's text, the transformed frame as plain CSV
	// (ScoreOutput "csv") or its DataFrame text ("text").
	Batch bool

	// TraceParent and TraceState are the W3C trace context of the call ("" when the
	// request is not traced): the predictor makes it current around the hook calls.
	TraceParent, TraceState string

	// OnPartial, when set, asks for a streamed answer (op "chat") in pieces: it is called
	// with each piece, in order, from the predictor's reader goroutine, before Call
	// returns the final Result (whose Body is then only what follows the pieces). It
	// must not block for long. Predictors that cannot stream ignore it.
	OnPartial func(piece []byte)
}

// Result is a successful answer.
type Result struct {
	Columns []string  // output column names, in the model's order
	Rows    int       // number of rows
	Values  []float64 // Rows*len(Columns) values, row-major (Op "predict")
	Body    []byte    // Op "score": the rendered output
	// JSON is set instead of Values for targets DRUM does not cast to float
	// (textgeneration, geopoint, vectordatabase, agenticworkflow): the "predictions"
	// array exactly as DRUM serialises it (pandas to_json, orient "records").
	JSON []byte
	// ExtraModelOutput is the score hook's extra columns as DRUM serialises them
	// (pandas to_json, orient "split"), or nil when there are none (Op "predict").
	ExtraModelOutput []byte
	// ContentType is the answer's Content-Type for ops whose answer is a whole HTTP body
	// ("transform", "unstructured", "chat", "models"), carried in Body.
	ContentType string
	// Stream says Body is a text/event-stream answer (op "chat"); StreamError is set when
	// the hook's iterator failed after Body: the answer must then be cut off.
	Stream      bool
	StreamError string
}

// Info is what the predictor reported once the model was loaded.
type Info struct {
	Predictor     string   // built-in predictor name ("scikit-learn", ...) or "" when a hook scores
	Hooks         []string // hooks found in custom.py
	PythonVersion string
	PandasVersion string
}

// HasHook reports whether custom.py defines the named hook.
func (i Info) HasHook(name string) bool {
	for _, h := range i.Hooks {
		if h == name {
			return true
		}
	}
	return false
}

// ModelError is a failure raised by the model code or DRUM's validation of its output;
// the predictor is still healthy. Status and Message are what DRUM would answer.
type ModelError struct {
	Status    int    // HTTP status DRUM uses (500, or a CustomHTTPError's status)
	Message   string // full message, including DRUM's "ERROR: " prefix where DRUM adds it
	UserError bool   // raised as datarobot_drum CustomHTTPError: adds X-Drum-User-Http-Error
}

func (e *ModelError) Error() string { return e.Message }

// DiedError means the predictor process exited or its channel broke while a call was in
// flight. The predictor must be replaced.
type DiedError struct {
	Pid    int
	Reason string // e.g. "exit status 1", "signal: killed"
}

func (e *DiedError) Error() string {
	return fmt.Sprintf("predictor process %d died: %s", e.Pid, e.Reason)
}

// Predictor is a loaded model that answers calls. Implementations are safe for use by
// one goroutine at a time per call; callers serialise or pool them.
type Predictor interface {
	Info() Info
	Pid() int
	Call(ctx context.Context, req *Request) (*Result, error)
	// Done is closed when the predictor process has exited.
	Done() <-chan struct{}
	// Close asks the predictor to exit and waits (bounded) for it; it kills on timeout.
	Close() error
}
