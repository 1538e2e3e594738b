package worker

import (
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

func TestReadTracingSettings(t *testing.T) {
	const ep = "http://127.0.0.1:4318"
	defaultSampler := sdktrace.ParentBased(sdktrace.AlwaysSample()).Description()
	tests := []struct {
		name     string
		env      map[string]string
		enabled  bool
		protocol string
		sampler  string // Description(); "" for the default
		warning  string // a substring of the only warning; "" for none
		err      string // a substring of the error
	}{
		{name: "no endpoint: off", env: map[string]string{"OTEL_SERVICE_NAME": "x"}},
		{name: "blank endpoint: off", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}},
		{name: "endpoint: on", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ep},
			enabled: true, protocol: "http/protobuf"},
		{name: "traces endpoint alone: on", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": ep + "/v1/traces"},
			enabled: true, protocol: "http/protobuf"},
		{name: "sdk disabled", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ep, "OTEL_SDK_DISABLED": "TRUE"}},
		{name: "sdk disabled=false", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ep, "OTEL_SDK_DISABLED": "false"},
			enabled: true, protocol: "http/protobuf"},
		{name: "sdk disabled=yes is not true", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ep, "OTEL_SDK_DISABLED": "yes"},
			enabled: true, protocol: "http/protobuf", warning: "OTEL_SDK_DISABLED"},
		{name: "runtime parameter disables", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ep,
			"MLOPS_RUNTIME_PARAM_OTEL_SDK_DISABLED": `{"type":"boolean","payload":true}`}},
		{name: "runtime parameter false", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ep,
			"MLOPS_RUNTIME_PARAM_OTEL_SDK_DISABLED": `{"type":"boolean","payload":false}`},
			enabled: true, protocol: "http/protobuf"},
		{name: "malformed runtime parameter", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ep,
			"MLOPS_RUNTIME_PARAM_OTEL_SDK_DISABLED": `{"type":"boolean"}`}, err: "OTEL_SDK_DISABLED"},
		{name: "grpc", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ep, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
			enabled: true, protocol: "grpc"},
		{name: "traces protocol wins", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ep,
			"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"},
			enabled: true, protocol: "http/json"},
		{name: "unknown protocol", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ep, "OTEL_EXPORTER_OTLP_PROTOCOL": "thrift"},
			enabled: true, protocol: "http/protobuf", warning: "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{name: "always_off", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ep, "OTEL_TRACES_SAMPLER": "always_off"},
			enabled: true, protocol: "http/protobuf", sampler: sdktrace.NeverSample().Description()},
		{name: "ratio", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ep,
			"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"},
			enabled: true, protocol: "http/protobuf",
			sampler: sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.25)).Description()},
		{name: "unknown sampler", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ep, "OTEL_TRACES_SAMPLER": "sometimes"},
			enabled: true, protocol: "http/protobuf", warning: `OTEL_TRACES_SAMPLER="sometimes"`},
		{name: "bad ratio", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ep,
			"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1.5"},
			enabled: true, protocol: "http/protobuf", sampler: sdktrace.TraceIDRatioBased(1).Description(),
			warning: "OTEL_TRACES_SAMPLER_ARG"},
		{name: "ratio not a number", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ep,
			"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "half"},
			enabled: true, protocol: "http/protobuf", sampler: sdktrace.TraceIDRatioBased(1).Description(),
			warning: "OTEL_TRACES_SAMPLER_ARG"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			s, err := readTracingSettings(env)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one naming %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.enabled != tc.enabled {
				t.Fatalf("enabled %v, want %v (off: %s)", s.enabled, tc.enabled, s.off)
			}
			if !s.enabled && s.off == "" {
				t.Error("off without a reason")
			}
			if s.protocol != tc.protocol {
				t.Errorf("protocol %q, want %q", s.protocol, tc.protocol)
			}
			if s.enabled {
				want := tc.sampler
				if want == "" {
					want = defaultSampler
				}
				if got := s.sampler.Description(); got != want {
					t.Errorf("sampler %s, want %s", got, want)
				}
			}
			switch {
			case tc.warning == "" && len(s.warnings) > 0:
				t.Errorf("unexpected warnings %q", s.warnings)
			case tc.warning != "" && (len(s.warnings) != 1 || !strings.Contains(s.warnings[0], tc.warning)):
				t.Errorf("warnings %q, want one naming %s", s.warnings, tc.warning)
			}
		})
	}
}

func TestPythonTruthy(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want bool
	}{
		{nil, false}, {false, false}, {true, true}, {0.0, false}, {2.0, true}, {"", false}, {"no", true},
		{[]any{}, false}, {map[string]any{"a": 1.0}, true},
	} {
		if got := pythonTruthy(tc.v); got != tc.want {
			t.Errorf("pythonTruthy(%#v) = %v, want %v", tc.v, got, tc.want)
		}
	}
}
