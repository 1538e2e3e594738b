package predictor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// PythonEnv names the environment variable that selects the interpreter explicitly.
const PythonEnv = "DRUM_PYTHON"

// defaultCandidates are tried in order when no interpreter is named. The first python3 on
// PATH may be a pyenv or venv build without pandas; Debian's own has the apt packages.
var defaultCandidates = []string{"python3", "/usr/bin/python3"}

// probeTimeout bounds one interpreter probe; importing pandas cold can take a few seconds.
const probeTimeout = 20 * time.Second

// probeScript fails with the import error when a module the bridge needs is missing.
// It prints a marker so that a program that exits 0 without running Python (say
// /bin/true) is not taken for an interpreter.
const probeScript = "import pandas, numpy; print('drum-python-ok')"

// FindPython returns the interpreter predictors run under.
//
// explicit (the --python flag, or $DRUM_PYTHON when the flag is empty) is used alone: it
// must import pandas and numpy or FindPython fails. Otherwise python3 on PATH and then
// /usr/bin/python3 are probed and the first that imports both wins. The error names every
// interpreter tried and why it was rejected.
//
// lookPath resolves a candidate to a path (default exec.LookPath); tests inject it. Paths are
// not symlink-resolved: a virtualenv's python only finds its packages through its own path.
func FindPython(explicit string, lookPath ...func(string) (string, error)) (string, error) {
	look := exec.LookPath
	if len(lookPath) > 0 && lookPath[0] != nil {
		look = lookPath[0]
	}
	if explicit == "" {
		explicit = os.Getenv(PythonEnv)
	}
	if explicit != "" {
		path, err := look(explicit)
		if err != nil {
			return "", fmt.Errorf("python interpreter %q: %w", explicit, err)
		}
		if err := probePython(path); err != nil {
			return "", fmt.Errorf("python interpreter %s cannot serve models: %w", path, err)
		}
		return path, nil
	}
	var tried []string
	seen := map[string]bool{}
	for _, name := range defaultCandidates {
		path, err := look(name)
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s: not found", name))
			continue
		}
		if seen[path] {
			continue
		}
		seen[path] = true
		if err := probePython(path); err != nil {
			tried = append(tried, fmt.Sprintf("%s: %v", path, err))
			continue
		}
		return path, nil
	}
	return "", fmt.Errorf("no usable Python interpreter (set %s to one with pandas and numpy): %s",
		PythonEnv, strings.Join(tried, "; "))
}

// probePython runs `python -c "import pandas, numpy"` and turns a failure into the
// interpreter's own last stderr line, e.g. "No module named 'pandas'".
func probePython(path string) error {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, "-c", probeScript)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err == nil {
		if !strings.Contains(stdout.String(), "drum-python-ok") {
			return errors.New("not a Python interpreter (it did not run the probe script)")
		}
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("probe timed out after %s", probeTimeout)
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		return err
	}
	return errors.New(lastErrorLine(stderr.String(), err.Error()))
}

// lastErrorLine picks the exception line of a traceback ("ModuleNotFoundError: No module
// named 'x'" → "No module named 'x'").
func lastErrorLine(stderr, fallback string) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	if last == "" {
		return fallback
	}
	for _, prefix := range []string{"ModuleNotFoundError: ", "ImportError: "} {
		if rest, ok := strings.CutPrefix(last, prefix); ok {
			return rest
		}
	}
	return last
}
