package worker

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/drum-go/drum/config"
	"github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// OpenTelemetry tracing of a worker (configuration: tracing_config.go). Each worker
// process has its own SDK and batch span processor, flushed when the worker stops. A
// prediction request gets a server span named as DRUM names it, with children for the
// wait in the admission queue and for the predictor call; the predictor call's context
// goes to the Python predictor (Request.TraceParent), so spans the model makes join the
// client's trace. Without an endpoint nothing here runs: the handler is not wrapped and
// the child-span helpers find no span in the request context.

const tracerName = "github.com/drum-go/drum/worker"

// Span names of the children of a request's span.
const (
	spanQueueWait     = "drum.queue.wait"
	spanPredictorCall = "drum.predictor.call"
)

// spanNames are DRUM's span names (prediction_server.py) for the endpoints it traces;
// other routes (health checks, info, metrics) get no span, as in DRUM.
var spanNames = map[endpoint]string{
	epPredict:             "drum.invocations",
	epTransform:           "drum.transform",
	epPredictUnstructured: "drum.predictUnstructured",
	epChat:                "drum.chat.completions",
	epDirectAccess:        "drum.directAccess",
}

// tracing is a worker's tracer provider; shutdown flushes the spans not exported yet.
type tracing struct {
	provider *sdktrace.TracerProvider
}

// startTracing sets up tracing from the environment; it returns nil (and sets nothing
// up) when tracing is off.
func startTracing(ctx context.Context, env config.LookupEnv, workerID int, log hclog.Logger) (*tracing, error) {
	s, err := readTracingSettings(env)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	for _, w := range s.warnings {
		log.Warn("tracing: ignoring an invalid setting", "problem", w)
	}
	if !s.enabled {
		log.Debug("tracing off", "why", s.off)
		return nil, nil
	}
	exp, err := newSpanExporter(ctx, s.protocol)
	if err != nil {
		return nil, fmt.Errorf("tracing: create the OTLP %s exporter for %s: %w", s.protocol, s.endpoint, err)
	}
	res, err := tracingResource(ctx, workerID)
	if err != nil {
		// A partial resource (say, a malformed OTEL_RESOURCE_ATTRIBUTES) is still usable.
		log.Warn("tracing: resource attributes partly ignored", "error", err)
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("tracing: " + err.Error())
	}))
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(s.sampler),
	)
	log.Info("tracing on", "endpoint", s.endpoint, "protocol", s.protocol)
	return &tracing{provider: tp}, nil
}

func newSpanExporter(ctx context.Context, protocol string) (sdktrace.SpanExporter, error) {
	// Both exporters read OTEL_EXPORTER_OTLP_* themselves (endpoint, headers, timeout,
	// compression, TLS).
	if protocol == protocolGRPC {
		return otlptracegrpc.New(ctx)
	}
	return otlptracehttp.New(ctx)
}

// tracingResource describes this worker: service.name "drum" unless OTEL_SERVICE_NAME or
// OTEL_RESOURCE_ATTRIBUTES say otherwise (later sources win), drum's version, the
// process and the worker id.
func tracingResource(ctx context.Context, workerID int) (*resource.Resource, error) {
	return resource.New(ctx,
		resource.WithAttributes(
			semconv.ServiceName("drum"),
			semconv.ServiceVersion(config.Version),
			attribute.Int("drum.worker.id", workerID),
		),
		resource.WithProcessPID(),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(),
	)
}

// shutdown exports the spans still buffered, waiting at most timeout.
func (t *tracing) shutdown(timeout time.Duration, log hclog.Logger) {
	if t == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := t.provider.Shutdown(ctx); err != nil {
		log.Warn("tracing: spans not flushed at stop", "error", err)
	}
}

// wrap returns next with server spans for the routes DRUM traces.
func (t *tracing) wrap(next http.Handler, rt *router) http.Handler {
	if t == nil {
		return next
	}
	tw := &tracedRoutes{next: next, router: rt, handlers: map[*rule]http.Handler{}}
	propagators := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	inner := http.HandlerFunc(serveWithSpanAttributes(next))
	rt.eachRule(func(r *rule) {
		name, ok := spanNames[r.endpoint]
		if !ok {
			return
		}
		tw.handlers[r] = otelhttp.NewHandler(inner, name,
			otelhttp.WithTracerProvider(t.provider),
			otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()), // metrics are Prometheus' (metrics.go)
			otelhttp.WithPropagators(propagators),
			otelhttp.WithSpanNameFormatter(func(op string, _ *http.Request) string { return op }),
			otelhttp.WithSpanOptions(trace.WithAttributes(semconv.HTTPRoute(r.path))),
		)
	})
	return tw
}

// tracedRoutes sends requests for traced routes through their span-making handler.
type tracedRoutes struct {
	next     http.Handler
	router   *router
	handlers map[*rule]http.Handler
}

func (tw *tracedRoutes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodOptions {
		path := strings.ToValidUTF8(r.URL.Path, "\ufffd") // as handler.serve matches it
		if m := tw.router.match(path, strings.ToUpper(r.Method)); m.kind == routeMatched {
			if th, ok := tw.handlers[m.rule]; ok {
				th.ServeHTTP(w, r)
				return
			}
		}
	}
	tw.next.ServeHTTP(w, r)
}

// serveWithSpanAttributes runs next inside the request's span and adds what only drum
// knows: the request id it answers with and DataRobot's consumer headers (as DRUM's
// extract_request_headers does).
func serveWithSpanAttributes(next http.Handler) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		span := trace.SpanFromContext(r.Context())
		if v := r.Header.Get("X-DataRobot-Consumer-Id"); v != "" {
			span.SetAttributes(attribute.String("gen_ai.request.consumer_id", v))
		}
		if v := r.Header.Get("X-DataRobot-Consumer-Type"); v != "" {
			span.SetAttributes(attribute.String("gen_ai.request.consumer_type", v))
		}
		next.ServeHTTP(w, r)
		if id := w.Header()["X_Request_ID"]; len(id) > 0 { // handler.go's spelling
			span.SetAttributes(attribute.String("drum.request_id", id[0]))
		}
	}
}

// startChildSpan starts a span under the request's span. When the request is not
// traced it returns ctx and a nil span, costing one context lookup.
func startChildSpan(ctx context.Context, name string) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, nil
	}
	return parent.TracerProvider().Tracer(tracerName).Start(ctx, name, trace.WithSpanKind(trace.SpanKindInternal))
}

// endChildSpan ends a span from startChildSpan (nil: nothing), marking it failed by err.
func endChildSpan(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// traceContext is the W3C traceparent and tracestate of the span in ctx, or "" when
// there is none. Passed to the predictor so that its spans join the request's trace.
func traceContext(ctx context.Context) (traceparent, tracestate string) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return "", ""
	}
	return fmt.Sprintf("00-%s-%s-%s", sc.TraceID(), sc.SpanID(), sc.TraceFlags()), sc.TraceState().String()
}

// eachRule calls fn for every rule of the router's state machine.
func (rt *router) eachRule(fn func(*rule)) {
	var walk func(st *state)
	walk = func(st *state) {
		for _, r := range st.rules {
			fn(r)
		}
		for _, next := range st.static {
			walk(next)
		}
		if st.path != nil {
			walk(st.path)
		}
	}
	walk(rt.root)
}

// endQueueSpan ends the admission wait's span: whether the request had to queue, and
// why it was turned away.
func endQueueSpan(span trace.Span, queued bool, err error) {
	if span == nil {
		return
	}
	span.SetAttributes(attribute.Bool("drum.queued", queued))
	endChildSpan(span, err)
}

// endPredictorSpan ends the predictor call's span with the predictor's pid.
func endPredictorSpan(span trace.Span, pid int, err error) {
	if span == nil {
		return
	}
	span.SetAttributes(attribute.Int("drum.predictor.pid", pid))
	endChildSpan(span, err)
}
