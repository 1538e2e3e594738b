package predictor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// The second golden set: anomaly (IsolationForest.predict), multilabel (score hook, NaN
// allowed, no sum check), textgeneration (no float cast, extra model output) and sparse
// Matrix Market input.
var moreGoldenModels = map[string]goldenModel{
	"anomaly":    {target: "anomaly"},
	"multilabel": {target: "multilabel", labels: []string{"class_0", "class_1", "class_2"}},
	"textgen":    {target: "textgeneration"},
	"sparse":     {target: "regression"},
}

func TestGoldenMoreTargets(t *testing.T) {
	sparseReq := filepath.Join(goldenDir, "models", "sparse", "requests")
	mtx := func(file, colnames string) func(t *testing.T) *Request {
		return func(t *testing.T) *Request {
			body, err := os.ReadFile(filepath.Join(sparseReq, file))
			if err != nil {
				t.Fatal(err)
			}
			req := &Request{Op: "predict", MimeType: "text/mtx", Format: "mtx", Payload: body}
			if colnames != "" {
				req.SparseColNames = readColnames(t, filepath.Join(sparseReq, colnames))
			}
			return req
		}
	}
	cases := []struct {
		model, name string
		req         func(t *testing.T) *Request // nil: the recorded body as text/csv
	}{
		{"anomaly", "predict_csv_5", nil},
		{"anomaly", "predict_csv_mixed_5", nil},
		{"anomaly", "err_missing_column", nil},
		{"multilabel", "predict_csv_5", nil},
		{"multilabel", "predict_missing_value_5", nil},
		{"multilabel", "predict_extra_column_5", nil},
		{"multilabel", "err_probability_above_one", nil},
		{"multilabel", "err_missing_column", nil},
		{"textgen", "predict_csv_5", nil},
		{"textgen", "predict_csv_1", nil},
		{"textgen", "err_missing_prompt_column", nil},
		{"sparse", "predict_mtx_raw_5", mtx("X_5.mtx", "")},
		{"sparse", "predict_mtx_raw_1", mtx("X_1.mtx", "")},
		{"sparse", "predict_mtx_colnames_5", mtx("X_5.mtx", "X.colnames")},
		{"sparse", "err_mtx_wrong_colnames", mtx("X_5.mtx", "X_wrongnames.colnames")},
		{"sparse", "err_mtx_wrong_width", mtx("X_5_wide.mtx", "")},
	}
	for _, tc := range cases {
		t.Run(tc.model+"/"+tc.name, func(t *testing.T) {
			t.Parallel()
			p := sharedPredictor(t, tc.model)
			c := loadGolden(t, tc.model, tc.name)
			req := &Request{Op: "predict", MimeType: "text/csv", Format: "csv", Payload: c.payload(t)}
			if tc.req != nil {
				req = tc.req(t)
			}
			res, err := p.Call(context.Background(), req)
			if c.Response.Status != 200 {
				var me *ModelError
				if !errors.As(err, &me) {
					t.Fatalf("want *ModelError, got %v", err)
				}
				if want := goldenMessage(t, c.Response.Body); me.Status != c.Response.Status || me.Message != want {
					t.Errorf("got %d %q\nwant %d %q", me.Status, me.Message, c.Response.Status, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.JSON != nil { // text-like target: compose DRUM's body and compare bytes
				body := `{"predictions":` + string(res.JSON)
				if res.ExtraModelOutput != nil {
					body += `,"extraModelOutput":` + string(res.ExtraModelOutput)
				}
				body += "}"
				if body != c.Response.Body {
					t.Errorf("body\n got %s\nwant %s", body, c.Response.Body)
				}
				return
			}
			wantCols, want := goldenPredictions(t, c.Response.Body)
			checkResult(t, res, wantCols, want)
		})
	}
}
