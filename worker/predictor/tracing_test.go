package predictor

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"
)

// traceEchoModel answers with what a hook can see of the trace context: the trace
// headers of its headers kwarg and the current OpenTelemetry context, if importable.
const traceEchoModel = `import json

def load_model(code_dir):
    return "m"

def score_unstructured(model, data, **kwargs):
    out = {"headers": {k: v for k, v in kwargs["headers"].items() if k.lower().startswith("trace")}}
    try:
        from opentelemetry import context
        out["otel"] = context.get_current()
    except ImportError:
        out["otel"] = None
    return json.dumps(out, sort_keys=True)
`

// fakeOpenTelemetry is the part of the opentelemetry API the bridge uses: a context stack
// and a propagator whose "context" records the carrier it extracted.
var fakeOpenTelemetry = map[string]string{
	"opentelemetry/__init__.py":                   "",
	"opentelemetry/trace/__init__.py":             "",
	"opentelemetry/trace/propagation/__init__.py": "",
	"opentelemetry/context.py": `_stack = [{}]

def attach(ctx):
    _stack.append(ctx)
    return len(_stack) - 1

def detach(token):
    del _stack[token:]

def get_current():
    return _stack[-1]
`,
	"opentelemetry/trace/propagation/tracecontext.py": `class TraceContextTextMapPropagator:
    def extract(self, carrier):
        return {"extracted": dict(carrier)}
`,
}

const (
	testTraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	testTraceState  = "vendor=x"
)

type traceEcho struct {
	Headers map[string]string `json:"headers"`
	Otel    map[string]any    `json:"otel"`
}

func callTraceEcho(t *testing.T, p *Python, traceparent, tracestate string) traceEcho {
	t.Helper()
	res, err := p.Call(context.Background(), &Request{
		Op: "unstructured", MimeType: "text/plain", Payload: []byte("x"),
		Headers:     [][2]string{{"Host", "h"}, {"Traceparent", "from-the-client"}},
		TraceParent: traceparent, TraceState: tracestate,
	})
	if err != nil {
		t.Fatal(err)
	}
	var echo traceEcho
	if err := json.Unmarshal(res.Body, &echo); err != nil {
		t.Fatalf("%v: %s", err, res.Body)
	}
	return echo
}

func startTraceEcho(t *testing.T, pythonPath string) *Python {
	t.Helper()
	cfg := modelConfig(t, writeModel(t, map[string]string{"custom.py": traceEchoModel}), goldenModel{target: "unstructured"})
	if pythonPath != "" {
		cfg.Env = append(cfg.Env, "PYTHONPATH="+pythonPath)
	}
	p, err := startTemp(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Without opentelemetry in the model's environment, hooks find the call's trace context
// in their headers (beside whatever the client sent), and only for a traced call.
func TestTraceContextInHeaders(t *testing.T) {
	p := startTraceEcho(t, "")
	got := callTraceEcho(t, p, testTraceParent, testTraceState)
	want := map[string]string{"Traceparent": "from-the-client", "traceparent": testTraceParent, "tracestate": testTraceState}
	if !reflect.DeepEqual(got.Headers, want) || got.Otel != nil {
		t.Errorf("traced call: hook saw %+v, want headers %v and no opentelemetry", got, want)
	}
	got = callTraceEcho(t, p, "", "")
	if want := map[string]string{"Traceparent": "from-the-client"}; !reflect.DeepEqual(got.Headers, want) {
		t.Errorf("untraced call: headers %v, want %v", got.Headers, want)
	}
}

// With opentelemetry importable, the call's trace context is the current context while
// the hook runs (and no longer after it), and the headers are left as the client sent them.
func TestTraceContextMadeCurrent(t *testing.T) {
	pkg := writeModel(t, fakeOpenTelemetry)
	p := startTraceEcho(t, filepath.Clean(pkg))
	got := callTraceEcho(t, p, testTraceParent, testTraceState)
	wantOtel := map[string]any{"extracted": map[string]any{"traceparent": testTraceParent, "tracestate": testTraceState}}
	if !reflect.DeepEqual(got.Otel, wantOtel) {
		t.Errorf("current context during the hook: %v, want %v", got.Otel, wantOtel)
	}
	if want := map[string]string{"Traceparent": "from-the-client"}; !reflect.DeepEqual(got.Headers, want) {
		t.Errorf("headers %v, want %v", got.Headers, want)
	}
	got = callTraceEcho(t, p, "", "")
	if len(got.Otel) != 0 {
		t.Errorf("the previous call's context is still current: %v", got.Otel)
	}
}
