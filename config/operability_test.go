package config

import (
	"fmt"
	"strings"
	"testing"
)

func buildOp(t *testing.T, dir string, env map[string]string) (*Config, error) {
	t.Helper()
	return Build(Flags{Command: CommandServer, CodeDir: dir, TargetType: TargetRegression, Address: "127.0.0.1:8080"}, envMap(env))
}

func TestOperabilityDefaults(t *testing.T) {
	cfg, err := buildOp(t, modelDir(t, "custom.py"), nil)
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.Operability
	if !o.AccessLog || o.AuthHeader != "" || o.MetricsAddress != "" || o.ExtensionsStrict || len(cfg.Notes) != 0 {
		t.Fatalf("defaults: %+v notes %v", o, cfg.Notes)
	}
}

func TestOperabilitySettings(t *testing.T) {
	cfg, err := buildOp(t, modelDir(t, "custom.py"), map[string]string{
		"DRUM_ACCESS_LOG":                     "false",
		"DRUM_METRICS_ADDRESS":                "127.0.0.1:9100",
		"DRUM_AUTH_HEADER":                    "X-Api-Key",
		"MLOPS_RUNTIME_PARAM_DRUM_AUTH_TOKEN": `{"type":"credential","payload":{"credentialType":"api_token","apiToken":"tok-123"}}`,
		"DRUM_EXTRA_HEADERS":                  `{"X-Team":"ml"}`,
		"DRUM_CORS_ORIGINS":                   "https://a.example, https://b.example/",
	})
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.Operability
	if o.AccessLog || o.MetricsAddress != "127.0.0.1:9100" || o.AuthHeader != "X-Api-Key" || string(o.AuthToken) != "tok-123" ||
		o.ExtraHeaders["X-Team"] != "ml" || strings.Join(o.CORSOrigins, " ") != "https://a.example https://b.example" {
		t.Fatalf("settings: %+v", o)
	}
	for _, s := range []string{fmt.Sprint(o.AuthToken), fmt.Sprintf("%v", o), fmt.Sprintf("%+v", o), fmt.Sprintf("%#v", o)} {
		if strings.Contains(s, "tok-123") {
			t.Errorf("the token is printed: %s", s)
		}
	}
}

func TestOperabilityErrors(t *testing.T) {
	dir := modelDir(t, "custom.py")
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"DRUM_AUTH_HEADER": "X-Api-Key"}, "DRUM_AUTH_TOKEN is not"},
		{map[string]string{"MLOPS_RUNTIME_PARAM_DRUM_AUTH_TOKEN": "tok-123"}, "DRUM_AUTH_HEADER is not"},
		{map[string]string{"DRUM_AUTH_HEADER": "X-Api-Key", "MLOPS_RUNTIME_PARAM_DRUM_AUTH_TOKEN": `{"type":"credential","payload":{"credentialType":"x"}}`}, "holds no token"},
		{map[string]string{"DRUM_AUTH_HEADER": "bad header", "MLOPS_RUNTIME_PARAM_DRUM_AUTH_TOKEN": "tok-123"}, "not a header name"},
		{map[string]string{"MLOPS_RUNTIME_PARAM_DRUM_AUTH_TOKEN": `{"type":"credential","payload":"tok-123`}, "malformed"},
		{map[string]string{"DRUM_EXTRA_HEADERS": `["x"]`}, "DRUM_EXTRA_HEADERS"},
		{map[string]string{"DRUM_EXTRA_HEADERS": `{"X-A":"a\nb"}`}, "line break"},
		{map[string]string{"DRUM_CORS_ORIGINS": "example.com"}, "not an origin"},
		{map[string]string{"DRUM_METRICS_ADDRESS": "9100"}, "host:port"},
		{map[string]string{"DRUM_ACCESS_LOG": "maybe"}, "DRUM_ACCESS_LOG"},
		{map[string]string{"DRUM_LOG_FORMAT": "xml"}, "DRUM_LOG_FORMAT"},
	} {
		_, err := buildOp(t, dir, c.env)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.env, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "tok-123") {
			t.Errorf("%v: the token is in the error: %v", c.env, err)
		}
	}
}

func TestExtensionsWarning(t *testing.T) {
	for _, name := range []string{"custom_flask.py", "custom_fastapi.py"} {
		dir := modelDir(t, "custom.py", name)
		cfg, err := buildOp(t, dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(cfg.Notes) != 1 || !strings.Contains(cfg.Notes[0], name) || !strings.Contains(cfg.Notes[0], "DRUM_AUTH_HEADER") ||
			!strings.Contains(cfg.Notes[0], "DRUM_CORS_ORIGINS") {
			t.Errorf("%s: notes %q", name, cfg.Notes)
		}
		_, err = buildOp(t, dir, map[string]string{"DRUM_EXTENSIONS_STRICT": "true"})
		if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "DRUM_EXTENSIONS_STRICT=true") {
			t.Errorf("%s strict: %v", name, err)
		}
	}
}

func TestLogFormat(t *testing.T) {
	defer func(a func() bool, b func(LookupEnv) bool) { stderrIsTerminal, inContainer = a, b }(stderrIsTerminal, inContainer)
	dir := modelDir(t, "custom.py")
	for _, c := range []struct {
		env            string
		tty, container bool
		want           bool
	}{
		{"", false, true, true},
		{"", true, true, false},
		{"", false, false, false},
		{"json", true, false, true},
		{"JSON", true, false, true},
		{"text", false, true, false},
	} {
		stderrIsTerminal = func() bool { return c.tty }
		inContainer = func(LookupEnv) bool { return c.container }
		env := map[string]string{}
		if c.env != "" {
			env["DRUM_LOG_FORMAT"] = c.env
		}
		cfg, err := buildOp(t, dir, env)
		if err != nil || cfg.LogJSON != c.want {
			t.Errorf("%+v: LogJSON %v (%v), want %v", c, cfg != nil && cfg.LogJSON, err, c.want)
		}
	}
}

func TestFastCSVSetting(t *testing.T) {
	for _, c := range []struct {
		value   string
		disable bool
		err     string
	}{
		{"", false, ""}, {"true", false, ""}, {"false", true, ""}, {"FALSE", true, ""}, {"0", true, ""},
		{"maybe", false, `DRUM_FAST_CSV="maybe": want true or false`},
	} {
		env := map[string]string{}
		if c.value != "" {
			env["DRUM_FAST_CSV"] = c.value
		}
		cfg, err := buildOp(t, modelDir(t, "custom.py"), env)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("DRUM_FAST_CSV=%q: error %v, want %q", c.value, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("DRUM_FAST_CSV=%q: %v", c.value, err)
		}
		if cfg.DisableFastCSV != c.disable {
			t.Errorf("DRUM_FAST_CSV=%q: DisableFastCSV %v, want %v", c.value, cfg.DisableFastCSV, c.disable)
		}
	}
}

// A runtime-parameter-only setting given as a plain variable is pointed out, not silently
// ignored; settings read both ways, and the parameter form, raise no note.
func TestPlainVariableForARuntimeParameter(t *testing.T) {
	cfg, err := buildOp(t, modelDir(t, "custom.py"), map[string]string{
		"DRUM_WORKER_QUEUE_SIZE":                   "abc",
		"DRUM_SERVER_TYPE":                         "tornado",
		"DRUM_ACCESS_LOG":                          "false", // read as a plain variable too
		"DRUM_OVERLOAD_STATUS":                     "500",
		"MLOPS_RUNTIME_PARAM_DRUM_OVERLOAD_STATUS": "429", // the parameter is set: no note
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"DRUM_SERVER_TYPE is set as a plain environment variable, which is not read: like DRUM, drum reads it only as the runtime parameter MLOPS_RUNTIME_PARAM_DRUM_SERVER_TYPE",
		"DRUM_WORKER_QUEUE_SIZE is set as a plain environment variable, which is not read: like DRUM, drum reads it only as the runtime parameter MLOPS_RUNTIME_PARAM_DRUM_WORKER_QUEUE_SIZE",
	}
	if strings.Join(cfg.Notes, "\n") != strings.Join(want, "\n") {
		t.Fatalf("notes:\n%s\nwant:\n%s", strings.Join(cfg.Notes, "\n"), strings.Join(want, "\n"))
	}
}
