package main

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drum-go/drum/internal/otlptest"
	"github.com/drum-go/drum/internal/testnet"
)

const (
	e2eTraceID = "0af7651916cd43dd8448eb211c80319c"
	e2eSpanID  = "b7ad6b7169203331"
)

// traceHeaderModel answers with the traceparent its hook finds in the headers kwarg.
const traceHeaderModel = `def load_model(code_dir):
    return "m"

def score_unstructured(model, data, **kwargs):
    return kwargs["headers"].get("traceparent", "none")
`

// startTracedServer runs drum server with its OTLP exporter pointed at rc.
func startTracedServer(t *testing.T, rc *otlptest.Receiver, codeDir string, args ...string) *server {
	t.Helper()
	addr := testnet.FreeAddr(t)
	full := append([]string{"server", "--code-dir", codeDir, "--address", addr, "--max-workers", "2"}, args...)
	cmd := exec.Command(drumBin, full...)
	cmd.Env = append(os.Environ(), "OTEL_EXPORTER_OTLP_ENDPOINT="+rc.URL(), "OTEL_SERVICE_NAME=drum-e2e",
		"OTEL_SDK_DISABLED=", "OTEL_TRACES_SAMPLER=", "OTEL_EXPORTER_OTLP_PROTOCOL=", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=")
	s := adoptServer(t, cmd, addr)
	s.waitReady(60 * time.Second)
	return s
}

func (s *server) postTraced(path, contentType string, body []byte) (int, []byte) {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.url(path), bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Traceparent", "00-"+e2eTraceID+"-"+e2eSpanID+"-01")
	status, _, out := s.do(req)
	return status, out
}

// stopFlushed stops the server with SIGTERM: every worker flushes its spans on the way out.
func (s *server) stopFlushed() {
	s.t.Helper()
	if !s.stop(syscall.SIGTERM, 30*time.Second) {
		s.t.Fatal("server did not stop on SIGTERM")
	}
}

// The client's trace reaches the receiver through the real binary and the real Python
// predictor: DRUM's span name, the queue and predictor children, the client's trace id,
// and the model's hook handed the predictor call's context. Spans are checked right after
// SIGTERM, so they must have been flushed at the stop.
func TestTracingEndToEnd(t *testing.T) {
	needPython(t)
	rc := otlptest.NewReceiver(t)

	reg := startTracedServer(t, rc, goldenModel("regression"), modelArgs["regression"]...)
	g := loadGolden(t, "regression", "predict_csv_5")
	if status, out := reg.postTraced("/predict/", "text/csv", g.body(t)); status != http.StatusOK {
		t.Fatalf("predict: %d %s", status, out)
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "custom.py"), []byte(traceHeaderModel), 0o644); err != nil {
		t.Fatal(err)
	}
	unstr := startTracedServer(t, rc, dir, "--target-type", "unstructured")
	status, seen := unstr.postTraced("/predictUnstructured/", "text/plain", []byte("hi"))
	if status != http.StatusOK {
		t.Fatalf("predictUnstructured: %d %s", status, seen)
	}
	reg.stopFlushed()
	unstr.stopFlushed()

	spans := rc.Spans()
	if errs := rc.Errors(); len(errs) > 0 {
		t.Fatalf("malformed exports: %v", errs)
	}
	t.Logf("trace %s as received:\n%s", e2eTraceID, otlptest.Tree(spans, e2eTraceID))
	byName := map[string][]otlptest.Span{}
	for _, s := range spans {
		if s.TraceID == e2eTraceID {
			byName[s.Name] = append(byName[s.Name], s)
		}
	}
	for _, name := range []string{"drum.invocations", "drum.predictUnstructured"} {
		servers := byName[name]
		if len(servers) != 1 {
			t.Fatalf("%d %s spans in the client's trace, want 1; all spans: %+v", len(servers), name, spans)
		}
		srv := servers[0]
		if srv.ParentSpanID != e2eSpanID || srv.Kind != "SPAN_KIND_SERVER" || srv.Attributes["http.response.status_code"] != "200" {
			t.Errorf("%s span %+v: want a server span under the client's, status 200", name, srv)
		}
		if srv.Resource["service.name"] != "drum-e2e" || srv.Resource["drum.worker.id"] == "" {
			t.Errorf("%s span resource %v: want OTEL_SERVICE_NAME and the worker id", name, srv.Resource)
		}
		children := map[string]otlptest.Span{}
		for _, childName := range []string{"drum.queue.wait", "drum.predictor.call"} {
			for _, c := range byName[childName] {
				if c.ParentSpanID == srv.SpanID {
					children[childName] = c
				}
			}
			if _, ok := children[childName]; !ok {
				t.Errorf("no %s span under %s; all spans: %+v", childName, name, spans)
			}
		}
		if name == "drum.predictUnstructured" {
			call := children["drum.predictor.call"]
			if want := "00-" + e2eTraceID + "-" + call.SpanID + "-01"; string(seen) != want {
				t.Errorf("the hook saw traceparent %q, want the predictor call's %q", seen, want)
			}
		}
	}
	if !strings.HasPrefix(string(seen), "00-"+e2eTraceID+"-") {
		t.Errorf("the hook saw %q, not the client's trace", seen)
	}
}
