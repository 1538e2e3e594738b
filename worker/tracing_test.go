package worker

import (
	"context"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drum-go/drum/internal/otlptest"
	"github.com/drum-go/drum/worker/predictor"
)

const (
	clientTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientSpanID  = "00f067aa0ba902b7"
)

// tracingEnv points the worker's exporter at a fresh OTLP/HTTP receiver.
func tracingEnv(t *testing.T) *otlptest.Receiver {
	return tracingEnvFor(t, otlptest.NewReceiver(t), "")
}

// tracingEnvFor points the worker's exporter at rc, speaking protocol ("" for the
// default), and sets an export header to check.
func tracingEnvFor(t *testing.T, rc *otlptest.Receiver, protocol string) *otlptest.Receiver {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rc.URL())
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-drum-test=yes")
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED", "OTEL_TRACES_SAMPLER",
		"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"} {
		t.Setenv(k, "")
	}
	return rc
}

// wantExportHeader checks every export carried OTEL_EXPORTER_OTLP_HEADERS.
func wantExportHeader(t *testing.T, rc *otlptest.Receiver) {
	t.Helper()
	hs := rc.Headers()
	if len(hs) == 0 {
		t.Fatal("no export arrived")
	}
	for _, h := range hs {
		if h.Get("X-Drum-Test") != "yes" {
			t.Errorf("export without the OTEL_EXPORTER_OTLP_HEADERS header: %v", h)
		}
	}
}

func postTraced(t *testing.T, addr, path, body string, hdr map[string]string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/csv")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// stopWorker stops w and waits for Run to return (its result stays for the cleanup).
func stopWorker(t *testing.T, w *runningWorker) {
	t.Helper()
	w.cancel()
	select {
	case err := <-w.errc:
		w.errc <- err
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func onlySpan(t *testing.T, spans []otlptest.Span, name string) otlptest.Span {
	t.Helper()
	got := otlptest.Named(spans, name)
	if len(got) != 1 {
		t.Fatalf("%d spans named %s, want 1; all: %+v", len(got), name, spans)
	}
	return got[0]
}

func wantAttrs(t *testing.T, what string, attrs, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if attrs[k] != v {
			t.Errorf("%s: attribute %s = %q, want %q (all: %v)", what, k, attrs[k], v, attrs)
		}
	}
}

// A traced prediction: a server span continuing the client's trace, children for the
// queue wait and the predictor call, the predictor handed the call's context, and
// every span exported by the time the worker has stopped (the batch is flushed at stop,
// long before the batch processor's own 5 s timer).
func TestTracingPrediction(t *testing.T) {
	rc := tracingEnv(t)
	f := &fakeFactory{fn: func(_ context.Context, p *fakePredictor, req *predictor.Request) (*predictor.Result, error) {
		if strings.Contains(string(req.Payload), "fail") {
			return nil, &predictor.ModelError{Status: 500, Message: "ERROR: boom"}
		}
		return &predictor.Result{Columns: []string{"Predictions"}, Rows: 1, Values: []float64{1}}, nil
	}}
	w := startWorker(t, regressionCfg, f, nil, nil)

	status := postTraced(t, w.addr, "/predict/", "a\n1\n", map[string]string{
		"Traceparent":             "00-" + clientTraceID + "-" + clientSpanID + "-01",
		"Tracestate":              "vendor=x",
		"X-Request-Id":            "req-1",
		"X-DataRobot-Consumer-Id": "c-7",
	})
	if status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	sent := f.predictors()[0].lastRequest()
	if code, _ := get(t, w.addr, "/ping/"); code != http.StatusOK {
		t.Fatalf("ping: %d", code)
	}
	if status := postTraced(t, w.addr, "/invocations", "a\nfail\n", nil); status != http.StatusInternalServerError {
		t.Fatalf("failing prediction: status %d", status)
	}
	if got := len(rc.Spans()); got != 0 {
		t.Fatalf("%d spans exported before the stop; the test needs them held in the batch", got)
	}
	stopWorker(t, w)
	spans := rc.Spans() // no waiting: the stop flushed them
	wantExportHeader(t, rc)

	if len(spans) != 6 {
		t.Fatalf("%d spans, want 3 per prediction and none for /ping/: %+v", len(spans), spans)
	}
	var server, queue, call otlptest.Span
	for _, s := range spans {
		if s.TraceID != clientTraceID {
			continue
		}
		switch s.Name {
		case "drum.invocations":
			server = s
		case spanQueueWait:
			queue = s
		case spanPredictorCall:
			call = s
		}
	}
	if server.ParentSpanID != clientSpanID || server.Kind != "SPAN_KIND_SERVER" {
		t.Errorf("server span %+v: want the client's span as parent, kind server", server)
	}
	wantAttrs(t, "server span", server.Attributes, map[string]string{
		"http.route": "/predict/", "http.request.method": "POST", "http.response.status_code": "200",
		"url.path": "/predict/", "drum.request_id": "req-1", "gen_ai.request.consumer_id": "c-7",
	})
	if server.Status == "STATUS_CODE_ERROR" {
		t.Errorf("a 200 marked failed")
	}
	wantAttrs(t, "resource", server.Resource, map[string]string{
		"service.name": "drum", "drum.worker.id": "1", "process.pid": strconv.Itoa(os.Getpid()),
	})
	if server.Resource["service.version"] == "" {
		t.Error("no service.version")
	}
	if queue.ParentSpanID != server.SpanID || call.ParentSpanID != server.SpanID || server.SpanID == "" {
		t.Errorf("queue %+v and call %+v are not children of the server span %s", queue, call, server.SpanID)
	}
	wantAttrs(t, "queue span", queue.Attributes, map[string]string{"drum.queued": "false"})
	wantAttrs(t, "call span", call.Attributes, map[string]string{"drum.predictor.pid": "1000"})
	if want := "00-" + clientTraceID + "-" + call.SpanID + "-01"; sent.TraceParent != want {
		t.Errorf("predictor got traceparent %q, want %q", sent.TraceParent, want)
	}
	if sent.TraceState != "vendor=x" {
		t.Errorf("predictor got tracestate %q", sent.TraceState)
	}

	// The failed prediction: a new trace (no client context), marked failed.
	failed := otlptest.Named(spans, "drum.invocations")
	var bad otlptest.Span
	for _, s := range failed {
		if s.TraceID != clientTraceID {
			bad = s
		}
	}
	if bad.ParentSpanID != "" || bad.Status != "STATUS_CODE_ERROR" || bad.Attributes["http.route"] != "/invocations" {
		t.Errorf("failed prediction's span %+v: want a root span marked failed", bad)
	}
	for _, s := range otlptest.Named(spans, spanPredictorCall) {
		if s.TraceID == bad.TraceID && s.Status != "STATUS_CODE_ERROR" {
			t.Errorf("the failed predictor call's span is not marked failed: %+v", s)
		}
	}
}

// A request that waits for the busy predictor says so on its queue span.
func TestTracingQueueWait(t *testing.T) {
	rc := tracingEnv(t)
	g := newGate()
	f := &fakeFactory{fn: g.fn}
	w := startWorker(t, regressionCfg, f, nil, nil)
	first := postAsync(t, w.addr, "/predict/", "a\n1\n")
	g.waitArrival(t)
	second := postAsync(t, w.addr, "/predict/", "a\n2\n")
	waitFor(t, "the second request to queue", func() bool { return counterOf(t, w.addr).Queued == 1 })
	close(g.release)
	await(t, first)
	await(t, second)
	stopWorker(t, w)
	queued := 0
	for _, s := range otlptest.Named(rc.Spans(), spanQueueWait) {
		if s.Attributes["drum.queued"] == "true" {
			queued++
		}
	}
	if queued != 1 {
		t.Errorf("%d queue spans say queued, want 1: %+v", queued, rc.Spans())
	}
}

// Without an endpoint nothing is traced: the predictor gets no trace context even when
// the client sends one.
func TestTracingOff(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	f := &fakeFactory{fn: constResult(1)}
	w := startWorker(t, regressionCfg, f, nil, nil)
	postTraced(t, w.addr, "/predict/", "a\n1\n", map[string]string{
		"Traceparent": "00-" + clientTraceID + "-" + clientSpanID + "-01"})
	if got := f.predictors()[0].lastRequest(); got.TraceParent != "" || got.TraceState != "" {
		t.Errorf("untraced predictor call carries %q %q", got.TraceParent, got.TraceState)
	}
}

// OTEL_EXPORTER_OTLP_PROTOCOL=grpc exports over gRPC instead.
func TestTracingGRPC(t *testing.T) {
	rc := tracingEnvFor(t, otlptest.NewGRPCReceiver(t), "grpc")
	f := &fakeFactory{fn: constResult(1)}
	w := startWorker(t, regressionCfg, f, nil, nil)
	postTraced(t, w.addr, "/predictions/", "a\n1\n", map[string]string{
		"Traceparent": "00-" + clientTraceID + "-" + clientSpanID + "-01"})
	stopWorker(t, w)
	spans := rc.Spans()
	server := onlySpan(t, spans, "drum.invocations")
	if server.TraceID != clientTraceID || server.Attributes["http.route"] != "/predictions/" || len(spans) != 3 {
		t.Errorf("spans over gRPC: %+v", spans)
	}
	wantExportHeader(t, rc)
}
