package predictor

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// pickledDict is {'a': 1} in pickle protocol 0: loadable without scikit-learn, but no
// built-in predictor can serve it.
const pickledDict = "(dp0\nVa\np1\nI1\ns."

func TestLoadFailures(t *testing.T) {
	cases := []struct {
		name    string
		files   map[string]string
		env     []string
		timeout time.Duration
		want    string // exact LoadError.Message when exact, else a substring of err.Error()
		exact   bool
		errType string
	}{
		{
			name:  "two artifacts",
			files: map[string]string{"a.pkl": pickledDict, "b.PKL": pickledDict},
			want: "An error occurred when loading your artifact: \n\nRunning environment language: Python.\n" +
				"Multiple serialized model files found. Remove extra artifacts or overwrite custom.load_model()\n" +
				"List of retrieved files are: a.pkl | b.PKL",
			exact: true,
		},
		{
			name:  "no artifact",
			files: map[string]string{"README.md": "hi", "sub/model.pkl": pickledDict},
			want:  "Could not find model artifact file in:",
		},
		{
			name:  "unusable artifact",
			files: map[string]string{"model.pkl": pickledDict},
			want: "An error occurred when loading your artifact: \n\nRunning environment language: Python.\n" +
				"Could not find any framework to handle loaded model and a score hook is not provided",
			exact: true,
		},
		{
			name:  "keras artifact without keras",
			files: map[string]string{"model.h5": "not really hdf5"},
			want: "An error occurred when loading your artifact: \nThe following frameworks support this model artifact\n" +
				"but could not load the model. Check if requirements are missing\n" +
				"Framework: keras, requirements: ['scipy', 'numpy', 'h5py', 'tensorflow>=2.2.1']",
			exact: true,
		},
		{
			name:  "import error",
			files: map[string]string{"custom.py": "import no_such_module_for_drum\n"},
			want:  "Failed loading hooks from [",
		},
		{
			name:    "import raises",
			files:   map[string]string{"custom.py": "raise ValueError('broken at import')\n"},
			want:    "broken at import",
			exact:   true,
			errType: "ValueError",
		},
		{
			name:  "too many custom.py",
			files: map[string]string{"custom.py": "", "nested/custom.py": ""},
			want:  "Found too many custom hook files: [PosixPath(",
		},
		{
			name:  "load_model returns None",
			files: map[string]string{"custom.py": "def load_model(code_dir):\n    return None\n"},
			want: "An error occurred when loading your artifact: " +
				"'load_model' hook failed to load model, None is returned.",
			exact: true,
		},
		{
			name:  "load_model raises",
			files: map[string]string{"custom.py": "def load_model(code_dir):\n    raise RuntimeError('no weights')\n"},
			want: "An error occurred when loading your artifact: " +
				"'load_model' hook failed to load the model. Exception: RuntimeError('no weights')",
			exact: true,
		},
		{
			name: "dies without hello",
			files: map[string]string{"custom.py": "import os, sys\n" +
				"print('about to vanish', file=sys.stderr, flush=True)\nos._exit(7)\n"},
			want: "exited before loading the model: exit status 7; last output:",
		},
		{
			name:    "load timeout",
			files:   map[string]string{"custom.py": "import time\ndef load_model(code_dir):\n    time.sleep(60)\n"},
			timeout: 1500 * time.Millisecond,
			want:    "did not load the model in time: context deadline exceeded",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := modelConfig(t, writeModel(t, tc.files), goldenModel{target: "regression"})
			if tc.timeout > 0 {
				cfg.LoadTimeout = tc.timeout
			}
			start := time.Now()
			p, err := startTemp(t, cfg)
			if err == nil {
				t.Fatalf("model loaded (%+v), want failure %q", p.Info(), tc.want)
			}
			if !strings.HasPrefix(err.Error(), "start predictor: ") {
				t.Errorf("error %q does not say what failed", err)
			}
			var le *LoadError
			if tc.exact || tc.errType != "" {
				if !errors.As(err, &le) {
					t.Fatalf("want *LoadError, got %v", err)
				}
				if le.Message != tc.want {
					t.Errorf("message\n got %q\nwant %q", le.Message, tc.want)
				}
				if le.Type != tc.errType {
					t.Errorf("type %q, want %q", le.Type, tc.errType)
				}
				return
			}
			if !strings.Contains(err.Error(), tc.want) || tc.name == "dies without hello" && !strings.HasSuffix(err.Error(), "\nabout to vanish") {
				t.Errorf("error\n%v\ndoes not contain %q", err, tc.want)
			}
			if tc.timeout > 0 && time.Since(start) > tc.timeout+5*time.Second {
				t.Errorf("load timeout took %s", time.Since(start))
			}
		})
	}
}
