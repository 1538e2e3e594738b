package supervisor

import (
	"bufio"
	"encoding/json"
	"io"
	"math"
	"sort"

	"github.com/hashicorp/go-hclog"
)

// relog re-logs a child's output through the master's logger, like hashicorp/go-plugin:
// JSON lines written by the child's hclog keep their level, message and fields; any
// other line is logged as is.
func relog(r io.ReadCloser, log hclog.Logger) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		relogLine(sc.Bytes(), log)
	}
}

func relogLine(line []byte, log hclog.Logger) {
	if len(line) == 0 {
		return
	}
	var entry map[string]any
	if line[0] != '{' || json.Unmarshal(line, &entry) != nil {
		// Workers log JSON only; anything else is the Go runtime (a panic, a fatal error).
		log.Error(string(line))
		return
	}
	msg, _ := entry["@message"].(string)
	lvl, _ := entry["@level"].(string)
	delete(entry, "@message")
	delete(entry, "@level")
	delete(entry, "@timestamp")
	delete(entry, "@caller")
	module, _ := entry["@module"].(string)
	delete(entry, "@module")
	keys := make([]string, 0, len(entry))
	for k := range entry {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	args := make([]any, 0, 2*len(keys)+2)
	if module != "" {
		args = append(args, "module", module)
	}
	for _, k := range keys {
		v := entry[k]
		// JSON numbers decode as float64: print whole numbers as integers, not 1e+06.
		if f, ok := v.(float64); ok && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			v = int64(f)
		}
		switch k {
		case "worker":
			continue // the master's logger already names the worker
		case "pid":
			k = "child_pid" // the master's logger names the worker's pid
		}
		args = append(args, k, v)
	}
	level := hclog.LevelFromString(lvl)
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	log.Log(level, msg, args...)
}
