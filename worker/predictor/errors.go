package predictor

import (
	"fmt"
	"strings"
)

// LoadError is a model that failed to load: custom.py did not import, load_model failed,
// the artifact was missing or ambiguous, no framework could serve it, ...
type LoadError struct {
	Pid int
	// Message is DRUM's exact text (str() of its exception), newlines included; it is
	// what DRUM's error server answers with ("ERROR: " + Message, status 513).
	Message string
	// Type is the Python exception class when the failure was not one of DRUM's own
	// messages (an exception escaping custom.py's import or init hook), else "".
	Type      string
	Traceback string // Python traceback, for the logs
}

func (e *LoadError) Error() string {
	// DRUM's messages are laid out for a terminal ("\n\nRunning environment language: ...");
	// fold them onto one line for logs and Go error chains.
	var parts []string
	for _, line := range strings.Split(e.Message, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			parts = append(parts, line)
		}
	}
	msg := strings.Join(parts, " ")
	if e.Type != "" {
		msg = e.Type + ": " + msg
	}
	return "model failed to load: " + msg
}

// TimeoutError is a call whose deadline passed before the predictor answered. The
// predictor is presumed hung and has been killed: replace it. It unwraps to the context's
// error, so errors.Is(err, context.DeadlineExceeded) holds.
type TimeoutError struct {
	Pid int
	ID  uint64
	Err error
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("predictor process %d did not answer call %d in time (killed): %v", e.Pid, e.ID, e.Err)
}

func (e *TimeoutError) Unwrap() error { return e.Err }
