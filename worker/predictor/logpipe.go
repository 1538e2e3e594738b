package predictor

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// maxLogLine bounds one re-logged line; longer output is split into several records so a
// user printing a huge frame cannot make the worker buffer it whole.
const maxLogLine = 64 << 10

// tailLines is how many recent stderr lines are kept to explain a predictor that died.
const tailLines = 20

// outputTail keeps the last lines a predictor wrote to stderr.
type outputTail struct {
	mu    sync.Mutex
	lines []string
}

func (t *outputTail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == tailLines {
		copy(t.lines, t.lines[1:])
		t.lines = t.lines[:tailLines-1]
	}
	t.lines = append(t.lines, line)
}

func (t *outputTail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}

// forwardLines calls emit for every line of r (without its newline) until EOF.
func forwardLines(r io.Reader, emit func(line []byte)) {
	br := bufio.NewReaderSize(r, maxLogLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			emit(bytes.TrimRight(line, "\r\n"))
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

// relogStdout logs the user's prints at info.
func relogStdout(log hclog.Logger) func([]byte) {
	return func(line []byte) {
		log.Info(string(line), "stream", "stdout")
	}
}

// relogStderr logs the bridge's JSON records at their own level and anything else
// (tracebacks, warnings, user prints to stderr) at warn, and keeps a tail of it all.
func relogStderr(log hclog.Logger, tail *outputTail) func([]byte) {
	return func(line []byte) {
		if level, msg, args, ok := parseBridgeRecord(line); ok {
			tail.add(msg)
			log.Log(level, msg, args...)
			return
		}
		tail.add(string(line))
		log.Warn(string(line), "stream", "stderr")
	}
}

// parseBridgeRecord decodes {"@level":"info","@message":"...",...} written by bridge.py.
func parseBridgeRecord(line []byte) (hclog.Level, string, []any, bool) {
	if !bytes.HasPrefix(line, []byte(`{"@level"`)) {
		return 0, "", nil, false
	}
	var rec map[string]any
	if err := json.Unmarshal(line, &rec); err != nil {
		return 0, "", nil, false
	}
	levelName, _ := rec["@level"].(string)
	msg, _ := rec["@message"].(string)
	delete(rec, "@level")
	delete(rec, "@message")
	keys := make([]string, 0, len(rec))
	for k := range rec {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	args := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		args = append(args, k, rec[k])
	}
	level := hclog.LevelFromString(levelName)
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	return level, msg, args, true
}
