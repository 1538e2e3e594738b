package predictor

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/drum-go/drum/worker/table"
)

// BenchmarkPredictCSV is one prediction of the golden regression model (33 numeric
// columns) through the real bridge, with the payload parsed by pandas.read_csv in the
// predictor ("read_csv") or by the worker's table.ParseCSV ("table": the parse is inside
// the timed loop, as it is on the request path).
func BenchmarkPredictCSV(b *testing.B) {
	needPython(b)
	needGolden(b)
	dir := filepath.Join(goldenDir, "models", "regression")
	p, err := StartPython(context.Background(), modelConfig(b, dir, goldenModels["regression"]))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	for _, rows := range []string{"1", "100", "1000"} {
		body, err := os.ReadFile(filepath.Join(dir, "requests", "X_"+rows+".csv"))
		if err != nil {
			b.Fatal(err)
		}
		for _, fast := range []bool{false, true} {
			name := rows + "rows/read_csv"
			if fast {
				name = rows + "rows/table"
			}
			b.Run(name, func(b *testing.B) {
				for b.Loop() {
					req := &Request{Op: "predict", Format: "csv", Payload: body}
					if fast {
						if req.Table, _ = table.ParseCSV(body); req.Table == nil {
							b.Fatal("the fast path does not take the request body")
						}
					}
					if _, err := p.Call(context.Background(), req); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkParseCSV is the Go parser alone.
func BenchmarkParseCSV(b *testing.B) {
	needGolden(b)
	for _, rows := range []string{"1", "1000"} {
		body, err := os.ReadFile(filepath.Join(goldenDir, "models", "regression", "requests", "X_"+rows+".csv"))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(rows+"rows", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if t, _ := table.ParseCSV(body); t == nil {
					b.Fatal("not handled")
				}
			}
		})
	}
}
