package predictor

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drum-go/drum/worker/predictor/bridge"
	"github.com/drum-go/drum/worker/table"
)

// tableProbe builds the frame with the bridge's build_table_frame and prints, as JSON,
// what the test checks: names, dtypes, index type, and each cell as type name + repr.
const tableProbe = `
import json, sys, types
mod = types.ModuleType("drum_bridge")
exec(compile(open(sys.argv[1]).read(), "<drum-bridge>", "exec"), mod.__dict__)
meta = json.loads(open(sys.argv[2]).read())
data = open(sys.argv[3], "rb").read()
df = mod.build_table_frame(meta, data)
df.iloc[0, 0] = df.iloc[0, 0]  # writable
cells = [[type(v).__name__ + ":" + repr(v) for v in df.iloc[:, i].tolist()] for i in range(df.shape[1])]
print(json.dumps({"names": list(df.columns), "dtypes": [str(d) for d in df.dtypes],
  "index": type(df.index).__name__, "cells": cells, "payload": data[meta["bytes"]:].decode()}))
`

func TestTableWireBuildsFrame(t *testing.T) {
	py := needPython(t)
	tb := &table.Table{Rows: 3, Columns: []table.Column{
		{Name: "i", Kind: table.Int64, Ints: []int64{1, -2, math.MaxInt64}},
		{Name: "f", Kind: table.Float64, Floats: []float64{0.1, math.NaN(), math.Copysign(0, -1)}},
		{Name: "b", Kind: table.Bool, Bools: []bool{true, false, true}},
		{Name: "o", Kind: table.Object, Objects: []table.Value{{S: "é"}, {Tag: table.NaN}, {Tag: table.True}}},
		{Name: "z", Kind: table.Object, Objects: []table.Value{{S: "a\x00b"}, {Tag: table.False}, {S: ""}}},
		{Name: "i", Kind: table.Object, Objects: []table.Value{{S: "x"}, {S: "y,z"}, {S: ""}}},
	}}
	m, data := encodeTable(tb, []byte("raw,csv\n"))
	dir := t.TempDir()
	metaJSON, _ := json.Marshal(m)
	files := map[string][]byte{"bridge.py": bridge.Source, "meta.json": metaJSON, "data": data}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(py, "-c", tableProbe, filepath.Join(dir, "bridge.py"),
		filepath.Join(dir, "meta.json"), filepath.Join(dir, "data")).CombinedOutput()
	if err != nil {
		t.Fatalf("probe: %v\n%s", err, out)
	}
	var got struct {
		Names, Dtypes []string
		Index         string
		Cells         [][]string
		Payload       string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("probe output %q: %v", out, err)
	}
	want := map[string]string{
		"names":   "i f b o z i",
		"dtypes":  "int64 float64 bool object object object",
		"index":   "RangeIndex",
		"payload": "raw,csv\n",
		"cells": strings.Join([]string{
			"int:1 int:-2 int:9223372036854775807",
			"float:0.1 float:nan float:-0.0",
			"bool:True bool:False bool:True",
			"str:'é' float:nan bool:True",
			"str:'a\\x00b' bool:False str:''",
			"str:'x' str:'y,z' str:''",
		}, "|"),
	}
	rows := make([]string, len(got.Cells))
	for i, c := range got.Cells {
		rows[i] = strings.Join(c, " ")
	}
	have := map[string]string{
		"names": strings.Join(got.Names, " "), "dtypes": strings.Join(got.Dtypes, " "),
		"index": got.Index, "payload": got.Payload, "cells": strings.Join(rows, "|"),
	}
	for k := range want {
		if have[k] != want[k] {
			t.Errorf("%s:\n got %s\nwant %s", k, have[k], want[k])
		}
	}
}
