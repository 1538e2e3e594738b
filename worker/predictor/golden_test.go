package predictor

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/drum-go/drum/internal/goldentest"
)

var goldenModelNames = []string{"regression", "binary", "multiclass", "custom"}

// TestGoldenPredict compares predictions with what real DRUM answered for the same files.
func TestGoldenPredict(t *testing.T) {
	for _, model := range goldenModelNames {
		for _, size := range []string{"5", "1"} {
			t.Run(model+"/X_"+size, func(t *testing.T) {
				t.Parallel()
				p := sharedPredictor(t, model)
				c := loadGolden(t, model, "predict_csv_"+size)
				res, err := p.Call(context.Background(), &Request{Op: "predict", MimeType: "text/csv", Format: "csv", Payload: c.payload(t)})
				if err != nil {
					t.Fatal(err)
				}
				wantCols, want := goldenPredictions(t, c.Response.Body)
				checkResult(t, res, wantCols, want)
			})
		}
	}
}

func checkResult(t *testing.T, res *Result, wantCols []string, want []float64) {
	t.Helper()
	if !slices.Equal(res.Columns, wantCols) {
		t.Errorf("columns %q, want %q", res.Columns, wantCols)
	}
	if res.Rows*len(res.Columns) != len(res.Values) {
		t.Fatalf("%d rows × %d columns but %d values", res.Rows, len(res.Columns), len(res.Values))
	}
	if len(res.Values) != len(want) {
		t.Fatalf("%d values, want %d", len(res.Values), len(want))
	}
	for i := range want {
		if math.IsNaN(want[i]) != math.IsNaN(res.Values[i]) || math.Abs(res.Values[i]-want[i]) > 1e-9 {
			t.Errorf("value %d = %.12g, want %.12g", i, res.Values[i], want[i])
		}
	}
}

// TestGoldenErrors replays DRUM's recorded failures: same status, same message, byte for byte.
func TestGoldenErrors(t *testing.T) {
	cases := []string{
		"err_missing_column", "err_non_numeric", "err_missing_value", "err_extra_column",
		"err_reordered_columns", "err_header_only", "err_unterminated_quote",
		"err_malformed_csv", "err_not_csv_binary", "err_non_utf8", "err_multipart_empty_file",
	}
	for _, model := range goldenModelNames {
		for _, name := range cases {
			if _, err := os.Stat(filepath.Join(goldenDir, model, name+".json")); err != nil {
				continue // not recorded for this model
			}
			t.Run(model+"/"+name, func(t *testing.T) {
				t.Parallel()
				p := sharedPredictor(t, model)
				c := loadGolden(t, model, name)
				req := &Request{Op: "predict", MimeType: "text/csv", Format: "csv", Payload: c.payload(t)}
				if name == "err_multipart_empty_file" {
					// multipart part X, filename X.csv, no bytes: DRUM passes mimetype None
					req = &Request{Op: "predict", NoMimeType: true, Format: "csv", Payload: []byte{}}
				}
				res, err := p.Call(context.Background(), req)
				if c.Response.Status == 200 { // the custom model picks its columns itself
					if err != nil {
						t.Fatalf("want success like DRUM, got %v", err)
					}
					wantCols, want := goldenPredictions(t, c.Response.Body)
					checkResult(t, res, wantCols, want)
					return
				}
				var me *ModelError
				if !errors.As(err, &me) {
					t.Fatalf("want *ModelError, got %v (%+v)", err, res)
				}
				if me.Status != c.Response.Status || me.UserError {
					t.Errorf("status %d user %v, want %d", me.Status, me.UserError, c.Response.Status)
				}
				if want := goldenMessage(t, c.Response.Body); me.Message != want {
					t.Errorf("message\n got %q\nwant %q", me.Message, want)
				}
			})
		}
	}
}

// TestGoldenScore compares the `drum score` renderings with DRUM's own files.
func TestGoldenScore(t *testing.T) {
	for _, model := range goldenModelNames {
		t.Run(model, func(t *testing.T) {
			t.Parallel()
			p := sharedPredictor(t, model)
			in, err := os.ReadFile(filepath.Join(goldenDir, "models", model, "requests", "X_100.csv"))
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join(goldenDir, "score", model+".X_100.out.csv"))
			if err != nil {
				t.Fatal(err)
			}
			res, err := p.Call(context.Background(), &Request{Op: "score", Format: "csv", ScoreOutput: "csv", Payload: in})
			if err != nil {
				t.Fatal(err)
			}
			if err := goldentest.SameCSV(res.Body, want, 1e-12); err != nil {
				t.Errorf("score CSV differs from DRUM's: %v", err)
			}
		})
	}
	t.Run("regression/text", func(t *testing.T) {
		t.Parallel()
		p := sharedPredictor(t, "regression")
		in, err := os.ReadFile(filepath.Join(goldenDir, "models", "regression", "requests", "X_5.csv"))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(goldenDir, "score", "regression.X_5.stdout.txt"))
		if err != nil {
			t.Fatal(err)
		}
		res, err := p.Call(context.Background(), &Request{Op: "score", Format: "csv", ScoreOutput: "text", Payload: in})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(res.Body, want) {
			t.Errorf("score text differs from DRUM's stdout:\n got %q\nwant %q", res.Body, want)
		}
	})
}

// TestLargePayload pushes a multi-megabyte request and a reply far past the pipe buffer.
func TestLargePayload(t *testing.T) {
	t.Parallel()
	p := sharedPredictor(t, "regression")
	in, err := os.ReadFile(filepath.Join(goldenDir, "models", "regression", "requests", "X_1000.csv"))
	if err != nil {
		t.Fatal(err)
	}
	header, rows, _ := bytes.Cut(in, []byte("\n"))
	payload := append(append([]byte{}, header...), '\n')
	for range 40 {
		payload = append(payload, rows...)
	}
	res, err := p.Call(context.Background(), &Request{Op: "predict", Format: "csv", Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 40000 || len(res.Values) != 40000 {
		t.Fatalf("%d rows, %d values for a %d-byte payload", res.Rows, len(res.Values), len(payload))
	}
	small, err := p.Call(context.Background(), &Request{Op: "predict", Format: "csv", Payload: in})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range small.Values {
		if res.Values[i] != v {
			t.Fatalf("row %d: %v in the large call, %v alone", i, res.Values[i], v)
		}
	}
}
