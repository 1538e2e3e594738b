package predictor

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drum-go/drum/worker/predictor/bridge"
)

// frameOfScript checks the bridge's _frame_of against pd.DataFrame(values, columns=...)
// (values, dtypes, index and column types, block count) for the label kinds models give.
const frameOfScript = `
import sys, types
import numpy as np, pandas as pd
mod = types.ModuleType("drum_bridge")
exec(compile(open(sys.argv[1]).read(), "<drum-bridge>", "exec"), mod.__dict__)
cases = [
    (np.array([[1.5], [2.5]]), ["Predictions"]),
    (np.array([[0.2, 0.8]]), ["a", "b"]),
    (np.array([[0.2, 0.8]]), [0, 1]),
    (np.array([[0.2, 0.8]]), [True, False]),
    (np.array([[0.2, 0.8]]), [1.5, "b"]),
    (np.array([[0.2, 0.8]]), ["1", "2"]),
    (np.array([[0.2, 0.8]]), [np.str_("a"), "b"]),
    (np.array([[0.2, 0.8]], dtype=np.float32), ["x", "y"]),
    (np.array([[1], [2]]), ["Predictions"]),
    (np.array([["a"], ["b"]], dtype=object), ["Predictions"]),
    (np.zeros((0, 1)), ["Predictions"]),
    (np.asfortranarray(np.array([[0.1, 0.9], [0.3, 0.7]])), ["n", "p"]),
]
for values, columns in cases:
    want, got = pd.DataFrame(values, columns=columns), mod._frame_of(values, columns)
    pd.testing.assert_frame_equal(want, got, check_exact=True)
    same = (type(want.columns) is type(got.columns) and want.columns.dtype == got.columns.dtype
            and want.columns.inferred_type == got.columns.inferred_type
            and type(want.index) is type(got.index) and want._mgr.nblocks == got._mgr.nblocks)
    if not same:
        sys.exit("differs for %r: %r vs %r" % (columns, want.columns, got.columns))
print("ok", len(cases))
`

func TestFrameOfMatchesTheConstructor(t *testing.T) {
	py := needPython(t)
	src := filepath.Join(t.TempDir(), "bridge.py")
	if err := os.WriteFile(src, bridge.Source, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, "-c", frameOfScript, src).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "ok ") {
		t.Fatalf("%v\n%s", err, out)
	}
}
