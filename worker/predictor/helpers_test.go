package predictor

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/drum-go/drum/internal/goldentest"
)

// goldenDir holds real DRUM exchanges and the models they were recorded with.
var goldenDir = func() string {
	if d := os.Getenv("DRUM_GOLDEN"); d != "" {
		return d
	}
	return "/work/shared/golden"
}()

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		runHelperParent() // never returns
	}
	code := m.Run()
	sharedMu.Lock()
	for _, p := range shared {
		p.Close()
	}
	sharedMu.Unlock()
	os.Exit(code)
}

var (
	pythonOnce sync.Once
	pythonPath string
	pythonErr  error
)

// needPython returns the interpreter, or skips loudly when this machine has none.
func needPython(t testing.TB) string {
	t.Helper()
	pythonOnce.Do(func() { pythonPath, pythonErr = FindPython("") })
	if pythonErr != nil {
		t.Skipf("NO PYTHON WITH PANDAS FOUND: %v", pythonErr)
	}
	return pythonPath
}

func needGolden(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(goldenDir, "models")); err != nil {
		goldentest.Missing(t, "golden data not found at %s (set DRUM_GOLDEN): %v", goldenDir, err)
	}
}

// testLogger sends predictor output to the test log.
func testLogger(t testing.TB) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:   "predictor",
		Level:  hclog.Debug,
		Output: testWriter{t},
	})
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Logf("%s", b)
	return len(b), nil
}

// goldenModel is how the golden recordings ran each model.
type goldenModel struct {
	target   string
	pos, neg string
	labels   []string
}

var goldenModels = map[string]goldenModel{
	"regression": {target: "regression"},
	"binary":     {target: "binary", pos: "Iris-versicolor", neg: "Iris-setosa"},
	"multiclass": {target: "multiclass", labels: []string{"class_0", "class_1", "class_2"}},
	"custom":     {target: "regression"},
}

func modelConfig(t testing.TB, codeDir string, gm goldenModel) Config {
	return Config{
		Python:             needPython(t),
		CodeDir:            codeDir,
		TargetType:         gm.target,
		PositiveClassLabel: gm.pos,
		NegativeClassLabel: gm.neg,
		ClassLabels:        gm.labels,
		Env:                goldenEnv(),
		LoadTimeout:        30 * time.Second,
		Logger:             hclog.NewNullLogger(),
	}
}

// goldenEnv keeps golden/ free of __pycache__. The BLAS kernel is left as the machine
// has it: numbers are compared within a tolerance (goldentest.SameCSV, 1e-9 for JSON).
func goldenEnv() []string {
	return []string{"PYTHONDONTWRITEBYTECODE=1"}
}

var (
	sharedMu sync.Mutex
	shared   = map[string]*Python{}
)

// sharedPredictor starts each golden model once for the whole test binary (start-up is
// most of the cost); TestMain closes them.
func sharedPredictor(t *testing.T, model string) *Python {
	t.Helper()
	needPython(t)
	needGolden(t)
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if p := shared[model]; p != nil {
		return p
	}
	gm, ok := goldenModels[model]
	if !ok {
		gm = moreGoldenModels[model]
	}
	cfg := modelConfig(t, filepath.Join(goldenDir, "models", model), gm)
	if model == "textgen" {
		cfg.Env = append(cfg.Env, "TARGET_NAME=completion") // DRUM refuses textgen without it
	}
	p, err := StartPython(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start %s: %v", model, err)
	}
	shared[model] = p
	return p
}

// startTemp starts a predictor owned by the test.
func startTemp(t *testing.T, cfg Config) (*Python, error) {
	t.Helper()
	p, err := StartPython(context.Background(), cfg)
	if err == nil {
		t.Cleanup(func() { p.Close() })
	}
	return p, err
}

// writeModel creates a code dir with the given files.
func writeModel(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// goldenCase is the part of a golden exchange these tests use.
type goldenCase struct {
	Case    string `json:"case"`
	Request struct {
		Body       *string `json:"body"`
		BodyBase64 *string `json:"body_base64"`
		BodyFile   *string `json:"body_file"`
	} `json:"request"`
	Response struct {
		Status int    `json:"status"`
		Body   string `json:"body"`
	} `json:"response"`
}

func loadGolden(t *testing.T, model, name string) goldenCase {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(goldenDir, model, name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var c goldenCase
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatalf("%s/%s: %v", model, name, err)
	}
	return c
}

func (c goldenCase) payload(t *testing.T) []byte {
	t.Helper()
	switch {
	case c.Request.Body != nil:
		return []byte(*c.Request.Body)
	case c.Request.BodyBase64 != nil:
		b, err := base64.StdEncoding.DecodeString(*c.Request.BodyBase64)
		if err != nil {
			t.Fatal(err)
		}
		return b
	case c.Request.BodyFile != nil:
		b, err := os.ReadFile(filepath.Join(goldenDir, *c.Request.BodyFile))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return nil
}

// goldenPredictions decodes {"predictions":[...]} into columns and row-major values.
func goldenPredictions(t *testing.T, body string) (cols []string, values []float64) {
	t.Helper()
	var doc struct {
		Predictions []json.RawMessage `json:"predictions"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("golden body %q: %v", body, err)
	}
	for i, raw := range doc.Predictions {
		var v *float64
		if json.Unmarshal(raw, &v) == nil {
			if i == 0 {
				cols = []string{"Predictions"}
			}
			values = append(values, nanIfNull(v))
			continue
		}
		// Row objects keep DRUM's key order, which is the column order.
		dec := json.NewDecoder(bytesReader(raw))
		dec.Token() // {
		var row []string
		for dec.More() {
			tok, _ := dec.Token()
			var x *float64
			if err := dec.Decode(&x); err != nil {
				t.Fatalf("golden row %s: %v", raw, err)
			}
			row = append(row, fmt.Sprint(tok))
			values = append(values, nanIfNull(x))
		}
		if i == 0 {
			cols = row
		}
	}
	return cols, values
}

func goldenMessage(t *testing.T, body string) string {
	t.Helper()
	var doc struct {
		Message string `json:"message"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("golden body %q: %v", body, err)
	}
	return doc.Message
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// nanIfNull maps DRUM's JSON null (NaN, ±Inf) back to NaN.
func nanIfNull(v *float64) float64 {
	if v == nil {
		return math.NaN()
	}
	return *v
}

// readColnames reads an X.colnames file the way DRUM does: one name per line, stripped.
func readColnames(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.SplitAfter(string(raw), "\n") {
		if line != "" {
			names = append(names, strings.TrimSpace(line))
		}
	}
	return names
}

func sleepMs(n int) { time.Sleep(time.Duration(n) * time.Millisecond) }
