package predictor

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakePython writes an executable that behaves like an interpreter missing module (or a
// working one when module is "").
func fakePython(t *testing.T, name, module string) string {
	t.Helper()
	script := "#!/bin/sh\necho drum-python-ok\n"
	if module != "" {
		script = "#!/bin/sh\necho 'Traceback (most recent call last):' >&2\n" +
			"echo '  File \"<string>\", line 1, in <module>' >&2\n" +
			"echo \"ModuleNotFoundError: No module named '" + module + "'\" >&2\nexit 1\n"
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// lookIn resolves names through a fixed table, like a PATH holding only those files.
func lookIn(table map[string]string) func(string) (string, error) {
	return func(name string) (string, error) {
		if p, ok := table[name]; ok {
			return p, nil
		}
		return "", &exec.Error{Name: name, Err: exec.ErrNotFound}
	}
}

func TestFindPythonExplicitWithoutPandas(t *testing.T) {
	t.Setenv(PythonEnv, "")
	fake := fakePython(t, "python3-nopandas", "pandas")
	_, err := FindPython(fake)
	if err == nil || !strings.Contains(err.Error(), fake) || !strings.Contains(err.Error(), "No module named 'pandas'") {
		t.Fatalf("got %v", err)
	}
	// An explicit choice is never replaced by a working default.
	good := fakePython(t, "python3", "")
	if _, err := FindPython(fake, lookIn(map[string]string{"python3": good, fake: fake})); err == nil {
		t.Fatal("explicit interpreter without pandas was accepted")
	}
}

// The first python3 on this machine's PATH (pyenv) has no pandas; naming it must fail.
func TestFindPythonExplicitPyenv(t *testing.T) {
	t.Setenv(PythonEnv, "")
	path, err := exec.LookPath("python3")
	if err != nil || exec.Command(path, "-c", "import pandas").Run() == nil {
		t.Skip("python3 on PATH is missing or has pandas")
	}
	_, err = FindPython(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "No module named") {
		t.Fatalf("got %v", err)
	}
}

// A program that exits 0 without running the probe (here /bin/true) is no interpreter.
func TestFindPythonNotAnInterpreter(t *testing.T) {
	t.Setenv(PythonEnv, "")
	if _, err := os.Stat("/bin/true"); err != nil {
		t.Skip("no /bin/true")
	}
	_, err := FindPython("/bin/true")
	if err == nil || !strings.Contains(err.Error(), "/bin/true") || !strings.Contains(err.Error(), "not a Python interpreter") {
		t.Fatalf("got %v", err)
	}
}

func TestFindPythonNoneUsable(t *testing.T) {
	t.Setenv(PythonEnv, "")
	first := fakePython(t, "python3", "pandas")
	second := fakePython(t, "python3.11", "numpy")
	_, err := FindPython("", lookIn(map[string]string{"python3": first, "/usr/bin/python3": second}))
	if err == nil {
		t.Fatal("no error")
	}
	want := "no usable Python interpreter (set DRUM_PYTHON to one with pandas and numpy): " +
		first + ": No module named 'pandas'; " + second + ": No module named 'numpy'"
	if err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}

	_, err = FindPython("", lookIn(nil))
	if err == nil || !strings.Contains(err.Error(), "python3: not found; /usr/bin/python3: not found") {
		t.Errorf("got %v", err)
	}
}

func TestFindPythonOrder(t *testing.T) {
	t.Setenv(PythonEnv, "")
	bad := fakePython(t, "python3", "pandas")
	good := fakePython(t, "python3.11", "")
	got, err := FindPython("", lookIn(map[string]string{"python3": bad, "/usr/bin/python3": good}))
	if err != nil || got != good {
		t.Fatalf("got %q, %v; want %q", got, err, good)
	}
	got, err = FindPython("", lookIn(map[string]string{"python3": good, "/usr/bin/python3": bad}))
	if err != nil || got != good {
		t.Fatalf("got %q, %v; want the first usable one %q", got, err, good)
	}
}

func TestFindPythonEnv(t *testing.T) {
	fake := fakePython(t, "envpython", "pandas")
	t.Setenv(PythonEnv, fake)
	_, err := FindPython("")
	if err == nil || !strings.Contains(err.Error(), fake) {
		t.Fatalf("DRUM_PYTHON ignored: %v", err)
	}
	var execErr *exec.Error
	if _, err := FindPython("no-such-python-drum"); !errors.As(err, &execErr) {
		t.Errorf("missing explicit interpreter: %v", err)
	}
}
