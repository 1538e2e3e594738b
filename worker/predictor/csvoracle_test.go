package predictor

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/drum-go/drum/worker/predictor/bridge"
	"github.com/drum-go/drum/worker/table"
)

// oracleScript compares, case by case, the frame the bridge reads from a CSV body
// (read_structured_input, i.e. pandas.read_csv) with the one it builds from the Go
// parser's table (build_table_frame): names and their types, dtypes, the RangeIndex,
// numeric values by bits, object cells by type and value. It answers one JSON line per
// case: {"diff": ""} when equal.
const oracleScript = `
import json, math, struct, sys, types
mod = types.ModuleType("drum_bridge")
exec(compile(open(sys.argv[1]).read(), "<drum-bridge>", "exec"), mod.__dict__)
import pandas as pd

def same_cell(x, y):
    if type(x) is not type(y):
        return False
    if isinstance(x, float):
        return struct.pack("<d", x) == struct.pack("<d", y)
    return x == y

def diff(ref, got):
    if list(ref.columns) != list(got.columns):
        return "names %r != %r" % (list(ref.columns), list(got.columns))
    if [type(c) for c in ref.columns] != [type(c) for c in got.columns] or ref.columns.dtype != got.columns.dtype:
        return "column name types differ"
    rd, gd = [str(d) for d in ref.dtypes], [str(d) for d in got.dtypes]
    if rd != gd:
        return "dtypes %r != %r" % (rd, gd)
    if type(ref.index) is not pd.RangeIndex or type(got.index) is not pd.RangeIndex or not ref.index.equals(got.index):
        return "index %r != %r" % (ref.index, got.index)
    rb = [(str(b.dtype), list(b.mgr_locs.as_array), b.values.flags.c_contiguous) for b in ref._mgr.blocks]
    gb = [(str(b.dtype), list(b.mgr_locs.as_array), b.values.flags.c_contiguous) for b in got._mgr.blocks]
    if rb != gb:
        return "blocks %r != %r" % (rb, gb)
    if not all(b.values.flags.writeable for b in got._mgr.blocks):
        return "read-only block"
    for i in range(ref.shape[1]):
        a, b = ref.iloc[:, i].to_numpy(), got.iloc[:, i].to_numpy()
        if a.dtype == object:
            for r, (x, y) in enumerate(zip(a, b)):
                if not same_cell(x, y):
                    return "column %d row %d: %r (%s) != %r (%s)" % (i, r, x, type(x).__name__, y, type(y).__name__)
        elif a.tobytes() != b.tobytes():
            for r, (x, y) in enumerate(zip(a.tolist(), b.tolist())):
                if not same_cell(x, y):
                    return "column %d row %d: %r != %r" % (i, r, x, y)
            return "column %d bytes differ" % i
    return ""

inp = sys.stdin.buffer
while True:
    head = inp.read(12)
    if len(head) < 12:
        break
    nb, nm, nd = struct.unpack("<III", head)
    body, meta, data = inp.read(nb), json.loads(inp.read(nm)), inp.read(nd)
    try:
        ref = mod.read_structured_input(body, "", None)
        res = diff(ref, mod.build_table_frame(meta, data))
    except Exception as exc:
        res = "%s: %s" % (type(exc).__name__, exc)
    sys.stdout.write(json.dumps({"diff": res}) + "\n")
    sys.stdout.flush()
`

// pandasOracle is one Python process answering comparisons for many cases.
type pandasOracle struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func startOracle(t testing.TB) *pandasOracle {
	t.Helper()
	py := needPython(t)
	src := filepath.Join(t.TempDir(), "bridge.py")
	if err := os.WriteFile(src, bridge.Source, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", oracleScript, src)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start pandas oracle: %v", err)
	}
	o := &pandasOracle{cmd: cmd, in: in, out: bufio.NewReader(out)}
	t.Cleanup(func() {
		in.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("pandas oracle (pid %d): %v", cmd.Process.Pid, err)
		}
	})
	return o
}

// compare returns "" when pandas reads body into the frame tb describes, else what differs.
func (o *pandasOracle) compare(body []byte, tb *table.Table) (string, error) {
	m, data := encodeTable(tb, nil)
	meta, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	var head [12]byte
	binary.LittleEndian.PutUint32(head[0:], uint32(len(body)))
	binary.LittleEndian.PutUint32(head[4:], uint32(len(meta)))
	binary.LittleEndian.PutUint32(head[8:], uint32(len(data)))
	for _, b := range [][]byte{head[:], body, meta, data} {
		if _, err := o.in.Write(b); err != nil {
			return "", fmt.Errorf("write to pandas oracle: %w", err)
		}
	}
	line, err := o.out.ReadBytes('\n')
	if err != nil {
		return "", fmt.Errorf("read from pandas oracle: %w", err)
	}
	var res struct{ Diff string }
	if err := json.Unmarshal(line, &res); err != nil {
		return "", fmt.Errorf("pandas oracle answered %q: %w", line, err)
	}
	return res.Diff, nil
}

// checkCases parses every case and compares each handled one with pandas; it returns
// how many were handled and the fallback reasons with their counts.
func checkCases(t *testing.T, o *pandasOracle, cases []csvCase) (handled int, reasons map[string]int) {
	t.Helper()
	reasons = map[string]int{}
	for _, c := range cases {
		tb, why := table.ParseCSV(c.body)
		if tb == nil {
			reasons[why]++
			continue
		}
		handled++
		d, err := o.compare(c.body, tb)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if d != "" {
			t.Errorf("%s: fast path differs from pandas: %s\nbody: %q", c.name, d, excerpt(c.body))
		}
	}
	return handled, reasons
}

func excerpt(b []byte) []byte {
	if len(b) > 400 {
		return b[:400]
	}
	return b
}
