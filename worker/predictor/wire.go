package predictor

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"unsafe"
)

// Meta of the frames exchanged with bridge.py (see bridge/bridge.py).

// bootConfig is the meta of the first frame, which also carries the bridge source.
type bootConfig struct {
	CodeDir            string   `json:"code_dir"`
	TargetType         string   `json:"target_type"`
	PositiveClassLabel string   `json:"positive_class_label,omitempty"`
	NegativeClassLabel string   `json:"negative_class_label,omitempty"`
	ClassLabels        []string `json:"class_labels,omitempty"`
	LogLevel           string   `json:"log_level"`
}

// helloMeta is the predictor's first frame: loaded, or why not.
type helloMeta struct {
	OK        bool     `json:"ok"`
	Predictor *string  `json:"predictor"`
	Hooks     []string `json:"hooks"`
	Python    string   `json:"python"`
	Pandas    string   `json:"pandas"`
	Error     string   `json:"error"`
	ErrorType string   `json:"error_type"`
	Traceback string   `json:"traceback"`
}

// requestMeta describes one call; the payload travels as frame data.
type requestMeta struct {
	Op             string      `json:"op"`
	MimeType       string      `json:"mimetype"`
	NoMimeType     bool        `json:"mimetype_none,omitempty"`
	Charset        string      `json:"charset,omitempty"`
	Format         string      `json:"format,omitempty"`
	SparseColNames []string    `json:"sparse_colnames,omitempty"`
	ScoreOutput    string      `json:"score_output,omitempty"`
	Y              []byte      `json:"y,omitempty"`
	Query          [][2]string `json:"query,omitempty"`
	Headers        [][2]string `json:"headers,omitempty"`
	Batch          bool        `json:"batch,omitempty"`
	Partials       bool        `json:"partials,omitempty"` // the caller takes a streamed answer in pieces
	// Table, when set, says the frame data starts with the encoded table (see tablewire.go)
	// the bridge builds the input DataFrame from; the raw payload follows it.
	Table *tableMeta `json:"table,omitempty"`
}

// partialMeta starts the meta of a reply frame that is one piece of a streamed answer
// (the bridge writes exactly {"partial":true}); the call's final reply follows.
var partialMeta = []byte(`{"partial":true`)

// replyMeta is the answer; data is a float64 matrix ("f8"), JSON ("json") or text
// ("csv", "text").
type replyMeta struct {
	OK          bool     `json:"ok"`
	Columns     []string `json:"columns"`
	Rows        int      `json:"rows"`
	DType       string   `json:"dtype"`
	ExtraJSON   *string  `json:"extra_json"`
	Status      int      `json:"status"`
	Message     string   `json:"message"`
	UserError   bool     `json:"user_error"`
	ContentType string   `json:"content_type"`
	Stream      bool     `json:"stream"`
	StreamError string   `json:"stream_error"`
}

// decodeReply turns a reply frame into a Result or a *ModelError. meta and data alias the
// frame reader's buffer, so everything kept is copied here.
func decodeReply(meta, data []byte) (*Result, error) {
	var m replyMeta
	if err := json.Unmarshal(meta, &m); err != nil {
		return nil, fmt.Errorf("decode predictor reply: %w", err)
	}
	if !m.OK {
		status := m.Status
		if status == 0 {
			status = 500
		}
		return nil, &ModelError{Status: status, Message: m.Message, UserError: m.UserError}
	}
	res := &Result{Columns: m.Columns, Rows: m.Rows, ContentType: m.ContentType,
		Stream: m.Stream, StreamError: m.StreamError}
	if m.ExtraJSON != nil {
		res.ExtraModelOutput = []byte(*m.ExtraJSON)
	}
	switch m.DType {
	case "f8":
		want := m.Rows * len(m.Columns) * 8
		if m.Rows < 0 || len(data) != want {
			return nil, fmt.Errorf("decode predictor reply: %d×%d float64 matrix needs %d bytes, got %d",
				m.Rows, len(m.Columns), want, len(data))
		}
		res.Values = decodeFloat64s(data)
	case "json":
		res.JSON = append([]byte(nil), data...)
	default:
		res.Body = append([]byte(nil), data...)
	}
	return res, nil
}

// littleEndian is true on every platform drum ships for (amd64, arm64).
var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// decodeFloat64s copies little-endian float64s into one new slice: a single memmove on
// little-endian hosts, no per-value allocation anywhere.
func decodeFloat64s(b []byte) []float64 {
	n := len(b) / 8
	out := make([]float64, n)
	if n == 0 {
		return out
	}
	if littleEndian {
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), n*8), b)
		return out
	}
	for i := range out {
		out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[i*8:]))
	}
	return out
}
