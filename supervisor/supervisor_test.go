package supervisor

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func TestWorkerEnvStripsTableflip(t *testing.T) {
	in := []string{"PATH=/bin", "TABLEFLIP_HAS_PARENT_7DIU3=yes", "CODE_DIR=/m", "TABLEFLIP_OTHER=1", "NOTIFY_SOCKET=/run/x"}
	got := strings.Join(workerEnv(in), " ")
	if got != "PATH=/bin CODE_DIR=/m" {
		t.Fatalf("workerEnv = %q", got)
	}
}

func TestBackoff(t *testing.T) {
	want := []time.Duration{0, 0, 250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second}
	for i, w := range want {
		if got := backoff(i); got != w {
			t.Errorf("backoff(%d) = %s, want %s", i, got, w)
		}
	}
	if got := backoff(40); got != 10*time.Second {
		t.Errorf("backoff(40) = %s, want the 10s cap", got)
	}
}

func TestRelogLine(t *testing.T) {
	var buf bytes.Buffer
	log := hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Trace, JSONFormat: true}).With("worker", 2, "pid", 99)
	relogLine([]byte(`{"@level":"error","@message":"model failed","@timestamp":"x","@module":"worker.predictor","code":7,"worker":2,"pid":1234,"bytes":3144109}`), log)
	relogLine([]byte(`plain user print`), log)
	relogLine([]byte(`{not json`), log)
	out := buf.String()
	if strings.Count(strings.Split(out, "\n")[0], `"worker"`) != 1 {
		t.Errorf("worker named twice in one line:\n%s", out)
	}
	for _, want := range []string{
		`"@level":"error"`, `"@message":"model failed"`, `"code":7`, `"module":"worker.predictor"`, `"worker":2`, `"pid":99`,
		`"@level":"error","@message":"plain user print"`, `"@message":"{not json"`, `"child_pid":1234`, `"bytes":3144109`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("relogged output lacks %s:\n%s", want, out)
		}
	}
}

func TestExitReasonClass(t *testing.T) {
	for reason, class := range map[string]string{
		"crash (exit code 1)": "crash", "exit (code 0)": "exit", "signal killed": "signal", "timeout": "timeout", "scale-down": "scale-down",
	} {
		if got := reasonClass(reason); got != class {
			t.Errorf("reasonClass(%q) = %q, want %q", reason, got, class)
		}
	}
}
