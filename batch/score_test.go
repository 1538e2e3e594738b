package batch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drum-go/drum/config"
	"github.com/drum-go/drum/worker/predictor"
)

// scripted is a predictor that records the request and answers with body or err.
type scripted struct {
	got  *predictor.Request
	body []byte
	err  error
}

func (s *scripted) Info() predictor.Info  { return predictor.Info{} }
func (s *scripted) Pid() int              { return 1 }
func (s *scripted) Done() <-chan struct{} { return make(chan struct{}) }
func (s *scripted) Close() error          { return nil }
func (s *scripted) Call(_ context.Context, r *predictor.Request) (*predictor.Result, error) {
	s.got = r
	if s.err != nil {
		return nil, s.err
	}
	return &predictor.Result{Body: s.body}, nil
}

func starter(p *scripted, started *bool) Starter {
	return func(context.Context) (predictor.Predictor, error) {
		*started = true
		return p, nil
	}
}

func writeInput(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRunWritesOutputAtomically(t *testing.T) {
	in := writeInput(t, "X.csv", "a\n1\n")
	out := filepath.Join(t.TempDir(), "out.csv")
	p := &scripted{body: []byte("Predictions\n1.5\n")}
	var started bool
	cfg := &config.Config{TargetType: "regression", Input: in, Output: out}
	if err := Run(context.Background(), cfg, starter(p, &started), nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); string(b) != "Predictions\n1.5\n" {
		t.Fatalf("output %q", b)
	}
	if p.got.Op != "score" || p.got.Format != "csv" || p.got.ScoreOutput != "csv" || string(p.got.Payload) != "a\n1\n" {
		t.Fatalf("request %+v", p.got)
	}
	entries, _ := os.ReadDir(filepath.Dir(out))
	if len(entries) != 1 {
		t.Fatalf("temporary files left beside the output: %v", entries)
	}
}

func TestRunFailureLeavesNoFile(t *testing.T) {
	in := writeInput(t, "X.csv", "a\n1\n")
	out := filepath.Join(t.TempDir(), "out.csv")
	p := &scripted{err: errors.New("ERROR: Model 'score' hook failed")}
	var started bool
	err := Run(context.Background(), &config.Config{TargetType: "regression", Input: in, Output: out}, starter(p, &started), nil)
	if err == nil || !strings.Contains(err.Error(), "'score' hook failed") || !strings.Contains(err.Error(), in) {
		t.Fatalf("err = %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(out)); len(entries) != 0 {
		t.Fatalf("a failed run left %v", entries)
	}
}

func TestRunStdoutAndMtx(t *testing.T) {
	in := writeInput(t, "X.mtx", "%%MatrixMarket matrix coordinate real general\n1 1 1\n1 1 2.0\n")
	p := &scripted{body: []byte("   Predictions\n0          1.0\n")}
	var started bool
	var stdout strings.Builder
	if err := Run(context.Background(), &config.Config{TargetType: "regression", Input: in}, starter(p, &started), &stdout); err != nil {
		t.Fatal(err)
	}
	if stdout.String() != string(p.body) {
		t.Fatalf("stdout %q", stdout.String())
	}
	// DRUM prints the DataFrame without --output, and picks the format by extension.
	if p.got.ScoreOutput != "text" || p.got.Format != "mtx" || p.got.MimeType != "text/mtx" {
		t.Fatalf("request %+v", p.got)
	}
}

func TestRunChecksOutputBeforeLoading(t *testing.T) {
	in := writeInput(t, "X.csv", "a\n1\n")
	dir := t.TempDir()
	for _, tc := range []struct{ out, want string }{
		{filepath.Join(dir, "missing", "out.csv"), "does not exist"},
		{dir, "is a directory"},
	} {
		var started bool
		err := Run(context.Background(), &config.Config{TargetType: "regression", Input: in, Output: tc.out}, starter(&scripted{}, &started), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "--output") {
			t.Errorf("--output %s: err = %v, want it to name --output and say %q", tc.out, err, tc.want)
		}
		if started {
			t.Errorf("--output %s: the model was loaded before the output path was checked", tc.out)
		}
	}
}
