package worker

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/drum-go/drum/config"
	"github.com/drum-go/drum/worker/predictor"
	"github.com/drum-go/drum/worker/table"
)

// TestFastCSVPath checks when the worker hands the predictor a parsed table: CSV
// predictions only, not with DRUM_FAST_CSV=false, a read_input_data hook or input the
// parser leaves to pandas; and that both outcomes are counted.
func TestFastCSVPath(t *testing.T) {
	for _, tc := range []struct {
		name     string
		path, ct string
		body     string
		hooks    []string
		disable  bool
		target   string
		pandas   string
		table    bool
	}{
		{name: "CSV predict", path: "/predict/", ct: "text/csv", body: csv5, table: true},
		{name: "score hook sees the body", path: "/predict/", ct: "text/csv", body: csv5, hooks: []string{"score"}, table: true},
		{name: "no Content-Type", path: "/predictions/", body: csv5, table: true},
		{name: "invocations", path: "/invocations", ct: "text/csv", body: csv5, table: true},
		{name: "multipart X", path: "/predict/", ct: "multipart/form-data; boundary=bnd",
			body: mpBody(filePart("X", "x.csv", csv5)), table: true},
		{name: "switched off", path: "/predict/", ct: "text/csv", body: csv5, disable: true},
		{name: "read_input_data hook", path: "/predict/", ct: "text/csv", body: csv5, hooks: []string{"read_input_data"}},
		{name: "another pandas", path: "/predict/", ct: "text/csv", body: csv5, pandas: "2.2.3"},
		{name: "ragged rows", path: "/predict/", ct: "text/csv", body: "a,b\n1,2,3\n"},
		{name: "mtx", path: "/predict/", ct: "text/mtx", body: "%%MatrixMarket"},
		{name: "transform keeps raw bytes", path: "/transform/", ct: "text/csv", body: csv5, target: config.TargetTransform},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := config.TargetRegression
			if tc.target != "" {
				target = tc.target
			}
			p := newFake(predictor.Info{Hooks: tc.hooks, PandasVersion: tc.pandas})
			if target == config.TargetTransform {
				p.fn = func(context.Context, *fakePredictor, *predictor.Request) (*predictor.Result, error) {
					return &predictor.Result{Body: []byte("x"), ContentType: "text/plain"}, nil
				}
			}
			h := newTestHandler(config.Config{TargetType: target, DisableFastCSV: tc.disable}, p)
			r := httptest.NewRequest(http.MethodPost, tc.path, strings.NewReader(tc.body))
			if tc.ct != "" {
				r.Header.Set("Content-Type", tc.ct)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			req := p.lastRequest()
			if (req.Table != nil) != tc.table {
				t.Fatalf("table sent: %v, want %v", req.Table != nil, tc.table)
			}
			if tc.table {
				want, _ := table.ParseCSV([]byte(csv5))
				if !req.Table.SameSchema(want) || req.Table.Rows != 2 || req.Table.Columns[1].Ints[1] != 4 {
					t.Errorf("table %+v", req.Table)
				}
				if string(req.Payload) != csv5 {
					t.Errorf("payload %q: hooks still see the raw bytes as binary_data", req.Payload)
				}
				// Only a score hook sees binary_data: without one the bridge gets the columns alone.
				if scored := slices.Contains(tc.hooks, "score"); req.OmitPayload == scored {
					t.Errorf("OmitPayload %v with hooks %v", req.OmitPayload, tc.hooks)
				}
			}
			c := h.counters().snapshot()
			fast, slow := int64(0), int64(0)
			switch {
			case tc.table:
				fast = 1
			case target == config.TargetTransform || tc.ct == "text/mtx" || tc.disable:
			default:
				slow = 1
			}
			if c.FastCSV != fast || c.CSVFallback != slow {
				t.Errorf("counters fast %d fallback %d, want %d %d", c.FastCSV, c.CSVFallback, fast, slow)
			}
		})
	}
}
