package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func envMap(m map[string]string) LookupEnv {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// modelDir makes a code dir holding the given files.
func modelDir(t *testing.T, files ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range files {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestBuildErrors(t *testing.T) {
	pkl := modelDir(t, "model.pkl")
	two := modelDir(t, "a.pkl", "b.pkl")
	none := modelDir(t, "README.md")
	rModel := modelDir(t, "model.rds")
	custom := modelDir(t, "custom.py", "a.pkl", "b.pkl")
	server := func(f Flags) Flags {
		f.Command = CommandServer
		if f.Address == "" {
			f.Address = "127.0.0.1:8080"
		}
		return f
	}
	cases := []struct {
		name  string
		flags Flags
		env   map[string]string
		want  string // substring of the error
		usage bool   // an argument error (exit 2)
	}{
		{"no code dir", server(Flags{TargetType: "regression"}), nil, "--code-dir", true},
		{"missing code dir", server(Flags{CodeDir: "/nonexistent/model", TargetType: "regression"}), nil, "does not exist", true},
		{"unknown target type", server(Flags{CodeDir: pkl, TargetType: "regresion"}), nil, `--target-type "regresion" is not a target type; use one of: binary, regression`, true},
		{"no target type", server(Flags{CodeDir: pkl}), nil, "Target type is missing", true},
		{"binary without labels", server(Flags{CodeDir: pkl, TargetType: "binary"}), nil, "Positive/negative class labels are missing", true},
		{"binary half labels", server(Flags{CodeDir: pkl, TargetType: "binary", PositiveClassLabel: "yes"}), nil, "must be given together", true},
		{"multiclass without labels", server(Flags{CodeDir: pkl, TargetType: "multiclass"}), nil, "Class labels are missing", true},
		{"multiclass one label", server(Flags{CodeDir: pkl, TargetType: "multiclass", ClassLabels: []string{"a"}}), nil, "at least 2 class labels", true},
		{"two artifacts", server(Flags{CodeDir: two, TargetType: "regression"}), nil, "Multiple serialized model files found", false},
		{"no artifact", server(Flags{CodeDir: none, TargetType: "regression"}), nil, "Can not detect language", false},
		{"R model", server(Flags{CodeDir: rModel, TargetType: "regression"}), nil, "Python models only", false},
		{"no address", Flags{Command: CommandServer, CodeDir: pkl, TargetType: "regression"}, nil, "--address", true},
		{"bad address", server(Flags{CodeDir: pkl, TargetType: "regression", Address: "localhost"}), nil, "host:port", true},
		{"bad port", server(Flags{CodeDir: pkl, TargetType: "regression", Address: "localhost:http"}), nil, "port", true},
		{"max workers zero", server(Flags{CodeDir: pkl, TargetType: "regression", MaxWorkers: 0, MaxWorkersSet: true}), nil, "--max-workers: must be > 0", true},
		{"workers param not json envelope", server(Flags{CodeDir: pkl, TargetType: "regression"}),
			map[string]string{"MLOPS_RUNTIME_PARAM_CUSTOM_MODEL_WORKERS": `{"type":"numeric"}`}, "CUSTOM_MODEL_WORKERS: Invalid runtime parameter!", false},
		{"workers param out of range", server(Flags{CodeDir: pkl, TargetType: "regression"}),
			map[string]string{"MLOPS_RUNTIME_PARAM_CUSTOM_MODEL_WORKERS": `{"type":"numeric","payload":500}`}, "accepted values are 1 to 199", false},
		{"workers param not a number", server(Flags{CodeDir: pkl, TargetType: "regression"}),
			map[string]string{"MLOPS_RUNTIME_PARAM_CUSTOM_MODEL_WORKERS": `many`}, `"many" is not a number`, false},
		{"url prefix without slash", server(Flags{CodeDir: pkl, TargetType: "regression"}),
			map[string]string{"URL_PREFIX": "model/v1"}, `URL_PREFIX "model/v1" must start with "/"`, false},
		{"request timeout out of range", server(Flags{CodeDir: pkl, TargetType: "regression"}),
			map[string]string{"MLOPS_RUNTIME_PARAM_DRUM_CLIENT_REQUEST_TIMEOUT": `{"type":"numeric","payload":7200}`}, "DRUM_CLIENT_REQUEST_TIMEOUT: 7200 is out of range; accepted values are 0 to 3600", false},
		{"score without input", Flags{Command: CommandScore, CodeDir: pkl, TargetType: "regression"}, nil, "--input", true},
		{"bad log level", server(Flags{CodeDir: pkl, TargetType: "regression", LogLevel: "loud"}), nil, "--logging-level", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build(tc.flags, envMap(tc.env))
			if err == nil {
				t.Fatalf("Build succeeded; want error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
			var ue *UsageError
			if errors.As(err, &ue) != tc.usage {
				t.Fatalf("usage error = %v, want %v (%v)", !tc.usage, tc.usage, err)
			}
		})
	}
	// custom.py with several artifacts is left to load_model: not an error here.
	if _, err := Build(server(Flags{CodeDir: custom, TargetType: "regression"}), envMap(nil)); err != nil {
		t.Fatalf("custom.py with two artifacts: %v", err)
	}
}

func TestBuildWorkersPrecedence(t *testing.T) {
	pkl := modelDir(t, "model.pkl")
	base := Flags{Command: CommandServer, CodeDir: pkl, TargetType: "regression", Address: "127.0.0.1:0"}
	cases := []struct {
		name  string
		flag  int
		env   string
		wantN int
	}{
		{"default", 0, "", 1},
		{"flag", 3, "", 3},
		{"envelope wins over flag", 3, `{"type": "numeric", "payload": 2}`, 2},
		{"plain value", 0, "4", 4},
		{"numeric string payload truncated", 0, `{"type":"numeric","payload":"2.9"}`, 2},
		{"null payload means unset", 5, `{"type":"numeric","payload":null}`, 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := base
			if tc.flag > 0 {
				f.MaxWorkers, f.MaxWorkersSet = tc.flag, true
			}
			env := map[string]string{}
			if tc.env != "" {
				env["MLOPS_RUNTIME_PARAM_CUSTOM_MODEL_WORKERS"] = tc.env
			}
			cfg, err := Build(f, envMap(env))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Workers != tc.wantN {
				t.Fatalf("workers = %d, want %d", cfg.Workers, tc.wantN)
			}
		})
	}
}

func TestBuildLabelsFromMetadata(t *testing.T) {
	dir := modelDir(t, "model.pkl")
	yaml := "name: m\ntype: inference\ntargetType: binary\ninferenceModel:\n  positiveClassLabel: 1\n  negativeClassLabel: 0\n"
	if err := os.WriteFile(filepath.Join(dir, "model-metadata.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	f := Flags{Command: CommandServer, CodeDir: dir, Address: "127.0.0.1:0"}
	cfg, err := Build(f, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TargetType != "binary" || cfg.PositiveClassLabel != "1" || cfg.NegativeClassLabel != "0" {
		t.Fatalf("got %q %q/%q", cfg.TargetType, cfg.PositiveClassLabel, cfg.NegativeClassLabel)
	}
	f.PositiveClassLabel, f.NegativeClassLabel = "yes", "no"
	if _, err := Build(f, envMap(nil)); err == nil || !strings.Contains(err.Error(), "don't match values from model config file") {
		t.Fatalf("mismatching labels: %v", err)
	}
	f = Flags{Command: CommandServer, CodeDir: dir, Address: "127.0.0.1:0", TargetType: "regression"}
	if _, err := Build(f, envMap(nil)); err == nil || !strings.Contains(err.Error(), "doesn't match target type") {
		t.Fatalf("mismatching target type: %v", err)
	}
}

func TestBuildMulticlassLabels(t *testing.T) {
	dir := modelDir(t, "model.pkl")
	yaml := "name: m\ntype: inference\ntargetType: multiclass\ninferenceModel:\n  classLabels:\n    - a\n    - b\n    - c\n"
	if err := os.WriteFile(filepath.Join(dir, "model-metadata.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	labelsFile := filepath.Join(t.TempDir(), "labels.txt")
	if err := os.WriteFile(labelsFile, []byte("c\nb\n\na\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := Flags{Command: CommandServer, CodeDir: dir, Address: "127.0.0.1:0", ClassLabelsFile: labelsFile}
	cfg, err := Build(f, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	// Same set in another order is accepted, and the command line's order wins.
	if got := strings.Join(cfg.ClassLabels, " "); got != "c b a" {
		t.Fatalf("labels = %q", got)
	}
	f.ClassLabelsFile, f.ClassLabels = "", []string{"a", "b", "d"}
	if _, err := Build(f, envMap(nil)); err == nil || !strings.Contains(err.Error(), "Class labels provided with command arguments") {
		t.Fatalf("mismatching labels: %v", err)
	}
}

func TestRuntimeParamEnvelope(t *testing.T) {
	cases := []struct {
		raw     string
		wantErr string
		want    string
	}{
		{`{"type": "string", "payload": "gunicorn"}`, "", "gunicorn"},
		{`gunicorn`, "", "gunicorn"},
		{`"gunicorn"`, "", "gunicorn"},
		{`{"type": "string", "payload": ""}`, "non-empty string", ""},
		{`{"type": "boolean", "payload": "true"}`, "True or False", ""},
		{`{"type": "numeric", "payload": "abc"}`, "can't be converted to float", ""},
		{`{"type": "credential", "payload": {"user": "x"}}`, "credentialType", ""},
		{`{"type": "secret", "payload": "x"}`, "type must be one of", ""},
		{`{"type": "string", "payload": "x", "extra": 1}`, "exactly the keys", ""},
		{`{"type": "string",`, "Invalid runtime parameter json payload", ""},
	}
	for _, tc := range cases {
		p, ok, err := GetRuntimeParam(envMap(map[string]string{"MLOPS_RUNTIME_PARAM_X": tc.raw}), "X")
		if !ok {
			t.Fatalf("%s: not found", tc.raw)
		}
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "runtime parameter X") {
				t.Errorf("%s: err = %v, want it to name X and contain %q", tc.raw, err, tc.wantErr)
			}
			continue
		}
		if err != nil || p.String() != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.raw, p.String(), err, tc.want)
		}
	}
}
