package worker

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/drum-go/drum/config"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Tracing is configured by the standard OTEL_* environment variables, as DRUM's otel.py
// is: it is on only when an OTLP endpoint is set and OTEL_SDK_DISABLED does not say
// otherwise. The exporter itself reads the rest of OTEL_EXPORTER_OTLP_* (headers,
// timeout, compression, certificates) and OTEL_BSP_* tunes the batch processor.
//
// Invalid values follow the OpenTelemetry configuration spec rather than failing the
// start: an unknown sampler, sampler argument or protocol is logged as a warning naming
// the variable and the default is used, so a typo in an observability setting never takes
// the model down. Only a malformed DataRobot runtime-parameter envelope is an error, as it
// is for every runtime parameter.

// OTLP protocols (OTEL_EXPORTER_OTLP_PROTOCOL).
const (
	protocolHTTPProtobuf = "http/protobuf"
	protocolHTTPJSON     = "http/json"
	protocolGRPC         = "grpc"
)

// tracingSettings is what the environment asks of tracing.
type tracingSettings struct {
	enabled  bool
	off      string // why tracing is off, for the start-up log
	endpoint string // the endpoint variable's value, for the log
	protocol string
	sampler  sdktrace.Sampler
	warnings []string // invalid values that were ignored, each naming its variable
}

// readTracingSettings reads the OTEL_* variables that decide whether and how drum traces.
func readTracingSettings(env config.LookupEnv) (tracingSettings, error) {
	var s tracingSettings
	disabled, err := sdkDisabled(env, &s.warnings)
	if err != nil {
		return s, err
	}
	if disabled {
		s.off = "OTEL_SDK_DISABLED is set"
		return s, nil
	}
	s.endpoint = firstEnv(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
	if s.endpoint == "" {
		s.off = "no OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
		return s, nil
	}
	s.enabled = true
	s.protocol = otlpProtocol(env, &s.warnings)
	s.sampler = tracesSampler(env, &s.warnings)
	return s, nil
}

// firstEnv is the first of the variables set to a non-blank value.
func firstEnv(env config.LookupEnv, names ...string) string {
	for _, n := range names {
		if v, ok := env(n); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// sdkDisabled is OTEL_SDK_DISABLED, as the environment variable (the spec: only "true",
// any case, disables) or as DataRobot's runtime parameter (DRUM: a truthy payload).
func sdkDisabled(env config.LookupEnv, warnings *[]string) (bool, error) {
	p, ok, err := config.GetRuntimeParam(env, "OTEL_SDK_DISABLED")
	if err != nil {
		return false, err
	}
	if ok && pythonTruthy(p.Payload) {
		return true, nil
	}
	v, ok := env("OTEL_SDK_DISABLED")
	v = strings.ToLower(strings.TrimSpace(v))
	switch {
	case !ok || v == "" || v == "false":
		return false, nil
	case v == "true":
		return true, nil
	}
	*warnings = append(*warnings, fmt.Sprintf("OTEL_SDK_DISABLED=%q is neither true nor false; tracing stays enabled", v))
	return false, nil
}

// pythonTruthy is bool(payload) in Python, which DRUM applies to the runtime parameter.
func pythonTruthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case float64:
		return x != 0
	case string:
		return x != ""
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}

// otlpProtocol is OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL,
// else http/protobuf (the spec's default).
func otlpProtocol(env config.LookupEnv, warnings *[]string) string {
	for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		v, ok := env(name)
		v = strings.TrimSpace(v)
		if !ok || v == "" {
			continue
		}
		switch v {
		case protocolHTTPProtobuf, protocolHTTPJSON, protocolGRPC:
			return v
		}
		*warnings = append(*warnings, fmt.Sprintf("%s=%q is not one of grpc, http/protobuf, http/json; using http/protobuf", name, v))
		return protocolHTTPProtobuf
	}
	return protocolHTTPProtobuf
}

// tracesSampler is OTEL_TRACES_SAMPLER with OTEL_TRACES_SAMPLER_ARG; the default, and
// the fallback for invalid values, is parentbased_always_on.
func tracesSampler(env config.LookupEnv, warnings *[]string) sdktrace.Sampler {
	def := sdktrace.ParentBased(sdktrace.AlwaysSample())
	name, _ := env("OTEL_TRACES_SAMPLER")
	name = strings.ToLower(strings.TrimSpace(name))
	switch name {
	case "", "parentbased_always_on":
		return def
	case "always_on":
		return sdktrace.AlwaysSample()
	case "always_off":
		return sdktrace.NeverSample()
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample())
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(samplerRatio(env, warnings))
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(samplerRatio(env, warnings)))
	}
	*warnings = append(*warnings, fmt.Sprintf("OTEL_TRACES_SAMPLER=%q is not supported (always_on, always_off, "+
		"traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio); "+
		"using parentbased_always_on", name))
	return def
}

// samplerRatio is OTEL_TRACES_SAMPLER_ARG for the ratio samplers: a probability in
// [0, 1], 1 when unset or invalid.
func samplerRatio(env config.LookupEnv, warnings *[]string) float64 {
	arg, ok := env("OTEL_TRACES_SAMPLER_ARG")
	arg = strings.TrimSpace(arg)
	if !ok || arg == "" {
		return 1
	}
	r, err := strconv.ParseFloat(arg, 64)
	if err != nil || !(r >= 0 && r <= 1) {
		*warnings = append(*warnings, fmt.Sprintf("OTEL_TRACES_SAMPLER_ARG=%q is not a ratio between 0 and 1; using 1", arg))
		return 1
	}
	return r
}
