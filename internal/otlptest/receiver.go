// Package otlptest is an OTLP trace receiver for tests: a loopback HTTP server that
// decodes the protobuf ExportTraceServiceRequest bodies an OTLP exporter posts to
// /v1/traces (or a gRPC TraceService) and keeps the spans. Only tests import it.
package otlptest

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// Span is one received span, flattened for assertions.
type Span struct {
	Name         string
	TraceID      string // hex
	SpanID       string // hex
	ParentSpanID string // hex, "" for a root span
	Kind         string // SPAN_KIND_SERVER, ...
	Status       string // STATUS_CODE_UNSET, STATUS_CODE_ERROR, ...
	Attributes   map[string]string
	Resource     map[string]string // the resource attributes the span came with
	Duration     time.Duration
}

// Receiver collects the spans exported to it.
type Receiver struct {
	srv      *httptest.Server // OTLP/HTTP
	grpcAddr string           // OTLP/gRPC, instead

	mu      sync.Mutex
	spans   []Span
	headers []http.Header // of every export request
	errs    []string      // malformed exports
}

// NewReceiver starts a receiver on 127.0.0.1; it is closed when the test ends.
func NewReceiver(t testing.TB) *Receiver {
	t.Helper()
	rc := &Receiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

// URL is the base URL to put in OTEL_EXPORTER_OTLP_ENDPOINT.
func (rc *Receiver) URL() string {
	if rc.grpcAddr != "" {
		return "http://" + rc.grpcAddr
	}
	return rc.srv.URL
}

// NewGRPCReceiver is a receiver for OTLP over gRPC (OTEL_EXPORTER_OTLP_PROTOCOL=grpc)
// on 127.0.0.1; it is stopped when the test ends.
func NewGRPCReceiver(t testing.TB) *Receiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rc := &Receiver{grpcAddr: ln.Addr().String()}
	gs := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(gs, grpcTraces{rc: rc})
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)
	return rc
}

type grpcTraces struct {
	coltracepb.UnimplementedTraceServiceServer
	rc *Receiver
}

func (g grpcTraces) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	hdr := http.Header{}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		for k, vs := range md {
			hdr[http.CanonicalHeaderKey(k)] = vs
		}
	}
	g.rc.add(req, hdr)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (rc *Receiver) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
		rc.fail(w, fmt.Sprintf("unexpected %s %s", r.Method, r.URL.Path))
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			rc.fail(w, "gzip: "+err.Error())
			return
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		rc.fail(w, "read: "+err.Error())
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		rc.fail(w, "content type "+ct)
		return
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(raw, &req); err != nil {
		rc.fail(w, "decode: "+err.Error())
		return
	}
	rc.add(&req, r.Header.Clone())
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// add keeps the spans of one export.
func (rc *Receiver) add(req *coltracepb.ExportTraceServiceRequest, hdr http.Header) {
	var got []Span
	for _, rs := range req.GetResourceSpans() {
		res := attrMap(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				got = append(got, Span{
					Name:         s.GetName(),
					TraceID:      hex.EncodeToString(s.GetTraceId()),
					SpanID:       hex.EncodeToString(s.GetSpanId()),
					ParentSpanID: hex.EncodeToString(s.GetParentSpanId()),
					Kind:         s.GetKind().String(),
					Status:       s.GetStatus().GetCode().String(),
					Attributes:   attrMap(s.GetAttributes()),
					Resource:     res,
					Duration:     time.Duration(s.GetEndTimeUnixNano() - s.GetStartTimeUnixNano()),
				})
			}
		}
	}
	rc.mu.Lock()
	rc.spans = append(rc.spans, got...)
	rc.headers = append(rc.headers, hdr)
	rc.mu.Unlock()
}

func (rc *Receiver) fail(w http.ResponseWriter, msg string) {
	rc.mu.Lock()
	rc.errs = append(rc.errs, msg)
	rc.mu.Unlock()
	http.Error(w, msg, http.StatusBadRequest)
}

// attrMap renders attribute values as strings (ints in decimal, bools as true/false).
func attrMap(kvs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		v := kv.GetValue()
		switch v.GetValue().(type) {
		case *commonpb.AnyValue_IntValue:
			m[kv.GetKey()] = strconv.FormatInt(v.GetIntValue(), 10)
		case *commonpb.AnyValue_BoolValue:
			m[kv.GetKey()] = strconv.FormatBool(v.GetBoolValue())
		case *commonpb.AnyValue_DoubleValue:
			m[kv.GetKey()] = strconv.FormatFloat(v.GetDoubleValue(), 'g', -1, 64)
		default:
			m[kv.GetKey()] = v.GetStringValue()
		}
	}
	return m
}

// Spans is a copy of what has been received so far.
func (rc *Receiver) Spans() []Span {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]Span(nil), rc.spans...)
}

// Headers is a copy of the headers of every export request received so far.
func (rc *Receiver) Headers() []http.Header {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]http.Header(nil), rc.headers...)
}

// Errors are the exports the receiver could not decode.
func (rc *Receiver) Errors() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.errs...)
}

// WaitSpans waits up to 20 s until at least n spans have arrived and returns them all.
func (rc *Receiver) WaitSpans(t testing.TB, n int) []Span {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := rc.Spans()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("received %d spans, want %d: %+v (export errors: %v)", len(got), n, got, rc.Errors())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Named returns the spans called name.
func Named(spans []Span, name string) []Span {
	var out []Span
	for _, s := range spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// Tree renders the spans of one trace as an indented tree, children under their parent
// in arrival order; a span whose parent is not among them (the client's) is a root.
func Tree(spans []Span, traceID string) string {
	ids := map[string]bool{}
	kids := map[string][]Span{}
	for _, s := range spans {
		if s.TraceID == traceID {
			ids[s.SpanID] = true
		}
	}
	var roots []Span
	for _, s := range spans {
		switch {
		case s.TraceID != traceID:
		case ids[s.ParentSpanID]:
			kids[s.ParentSpanID] = append(kids[s.ParentSpanID], s)
		default:
			roots = append(roots, s)
		}
	}
	var b strings.Builder
	var walk func(s Span, depth int)
	walk = func(s Span, depth int) {
		fmt.Fprintf(&b, "%s%s [%s] %s span %s parent %s", strings.Repeat("  ", depth), s.Name,
			strings.TrimPrefix(s.Kind, "SPAN_KIND_"), s.Duration.Round(time.Microsecond), s.SpanID, s.ParentSpanID)
		if st := s.Attributes["http.response.status_code"]; st != "" {
			fmt.Fprintf(&b, " status %s", st)
		}
		b.WriteByte('\n')
		for _, k := range kids[s.SpanID] {
			walk(k, depth+1)
		}
	}
	for _, r := range roots {
		walk(r, 0)
	}
	return b.String()
}
