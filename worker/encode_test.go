package worker

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/drum-go/drum/worker/predictor"
)

func TestPandasFloatAppendixB(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{
		// Appendix B's examples.
		{1e17, "1e+17"},
		{1.23456789e16, "1.23456789e+16"},
		{1e-16, "1e-16"},
		{1, "1.0"},
		{2.5, "2.5"},
		{1.0 / 3, "0.3333333333"},
		{0.0001234568, "0.0001234568"},
		{0.00012345678, "0.0001234568"},
		{123456.123456789, "123456.123456789"},
		{1e-11, "0.0"},
		{5e-11, "0.0000000001"},
		{1.5e-5, "0.000015"},
		{1e16, "10000000000000000.0"},
		{math.Copysign(0, -1), "0.0"},
		{math.NaN(), "null"},
		{math.Inf(1), "null"},
		{math.Inf(-1), "null"},
		// The thresholds and the rounding rule, checked against pandas 1.5.3.
		{1e16 + 2, "1e+16"},
		{9999999999999998, "9999999999999998.0"},
		{1e-15, "0.0"},
		{9.99e-16, "9.99e-16"},
		{-1e-11, "-0.0"},
		{0, "0.0"},
		{1.5e-10, "0.0000000002"}, // tie, odd: up
		{2.5e-10, "0.0000000002"}, // tie, even: stays
		{0.99999999995, "1.0"},    // carry into the integer part
		{-2.5e-10, "-0.0000000002"},
		{4.35e-10, "0.0000000004"},
		{0.1 + 0.2, "0.3"},
		{2.675, "2.675"},
		{5e-324, "4.940656458e-324"},
		{math.MaxFloat64, "1.797693135e+308"},
		{-1e17, "-1e+17"},
		{-123.5, "-123.5"},
		{21.2861205133, "21.2861205133"},
		{0.0007272727272727, "0.0007272727"},
	} {
		if got := string(appendPandasFloat(nil, tc.v)); got != tc.want {
			t.Errorf("%v: got %s, want %s", tc.v, got, tc.want)
		}
	}
}

func TestPandasStringEscapes(t *testing.T) {
	for in, want := range map[string]string{
		"class_0":         `"class_0"`,
		"a/b":             `"a\/b"`,
		`q"\`:             `"q\"\\"`,
		"é😀":              `"\u00e9\ud83d\ude00"`,
		"\x01\x1f\b\t\n":  `"\u0001\u001f\b\t\n"`,
		"a\x7fb":          `"ab"`, // ujson drops DEL
		"<>&\u2028\ufeff": `"<>&\u2028\ufeff"`,
		"bad\xffutf8":     `"bad\ufffdutf8"`,
	} {
		if got := string(appendPandasString(nil, in)); got != want {
			t.Errorf("%q: got %s, want %s", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"OK":            `{"message":"OK"}` + "\n",
		"a/b\x7f é":     `{"message":"a/b\u007f \u00e9"}` + "\n",
		"it's \"x\"\\n": `{"message":"it's \"x\"\\n"}` + "\n",
		"😀\r":           `{"message":"\ud83d\ude00\r"}` + "\n",
	} {
		if got := string(flaskJSON("message", in)); got != want {
			t.Errorf("%q: got %s, want %s", in, got, want)
		}
	}
}

func TestPredictionsShape(t *testing.T) {
	for _, tc := range []struct {
		res  predictor.Result
		want string
	}{
		{predictor.Result{Columns: []string{"Predictions"}, Rows: 3, Values: []float64{12.5, 7, 1.0 / 3}},
			`{"predictions":[12.5,7.0,0.3333333333]}`},
		{predictor.Result{Columns: []string{"no", "yes"}, Rows: 2, Values: []float64{0.83, 0.17, 0.25, 0.75}},
			`{"predictions":[{"no":0.83,"yes":0.17},{"no":0.25,"yes":0.75}]}`},
		{predictor.Result{Columns: []string{"b/1", "a"}, Rows: 1, Values: []float64{math.NaN(), 1}},
			`{"predictions":[{"b\/1":null,"a":1.0}]}`},
		{predictor.Result{Columns: []string{"x"}, Rows: 0}, `{"predictions":[]}`},
		{predictor.Result{Columns: nil, Rows: 2}, `{"predictions":[{},{}]}`},
	} {
		got, err := appendPredictions(nil, &tc.res)
		if err != nil || string(got) != tc.want {
			t.Errorf("%+v: got %s (%v), want %s", tc.res, got, err, tc.want)
		}
	}
	if _, err := appendPredictions(nil, &predictor.Result{Columns: []string{"a", "b"}, Rows: 2, Values: []float64{1}}); err == nil {
		t.Error("a short Values slice was accepted")
	}
}

// TestGoldenPredictionBodies re-encodes the values of every recorded prediction body
// and expects DRUM's exact bytes back.
func TestGoldenPredictionBodies(t *testing.T) {
	n := 0
	for _, model := range []string{"regression", "binary", "multiclass", "custom", "anomaly", "multilabel", "sparse"} {
		for _, c := range loadGolden(t, model) {
			if c.Response.Status != 200 || c.Response.Body == nil {
				continue
			}
			body := []byte(*c.Response.Body)
			if len(body) < 15 || string(body[:15]) != `{"predictions":` {
				continue
			}
			res := parsePredictions(t, body)
			got, err := appendPredictions(nil, res)
			if err != nil || string(got) != string(body) {
				t.Errorf("%s/%s:\n got %s\nwant %s", model, c.Case, got, body)
			}
			n++
		}
	}
	if n < 50 {
		t.Errorf("only %d prediction bodies found", n)
	}
}

// TestGoldenBigBodyNumbers checks each complete number of the truncated 10 MB answers.
func TestGoldenBigBodyNumbers(t *testing.T) {
	num := regexp.MustCompile(`:(-?[0-9][0-9.e+-]*)[,}]`)
	for _, model := range []string{"binary", "multiclass"} {
		for _, c := range loadGolden(t, model) {
			if c.Case != "big_10mb" {
				continue
			}
			count := 0
			for _, part := range []string{c.Response.BodyHead, c.Response.BodyTail} {
				for _, m := range num.FindAllStringSubmatch(part, -1) {
					v, err := strconv.ParseFloat(m[1], 64)
					if err != nil {
						continue
					}
					if got := string(appendPandasFloat(nil, v)); got != m[1] {
						t.Errorf("%s: %s re-encodes as %s", model, m[1], got)
					}
					count++
				}
			}
			if count == 0 {
				t.Errorf("%s: no numbers found", model)
			}
		}
	}
}

func FuzzFormatFloat(f *testing.F) {
	for _, v := range []float64{0, 1, -1, 0.5, 1.5e-10, 2.5e-10, 1e16, 1e16 + 2, 1e-15, 9.99e-16, 123456.123456789,
		0.99999999995, 6170.70617283945, math.MaxFloat64, 5e-324, math.NaN(), math.Inf(1)} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v float64) {
		out := appendPandasFloat(nil, v)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			if string(out) != "null" {
				t.Fatalf("%v: %s", v, out)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("%v: %s is not a JSON number", v, out)
		}
		if math.Abs(v) >= 1e15 {
			return // %.10g: only 10 significant digits, as in DRUM
		}
		back, err := strconv.ParseFloat(string(out), 64)
		if err != nil {
			t.Fatalf("%v: %s: %v", v, out, err)
		}
		// Rounding to 10 decimals costs at most 5e-11 in decimal arithmetic; the doubles
		// on both sides add up to an ulp each.
		ulp := math.Nextafter(math.Abs(v), math.Inf(1)) - math.Abs(v)
		if d := math.Abs(back - v); d > 5e-11+2*ulp+1e-15 {
			t.Fatalf("%v: %s parses back as %v (off by %g)", v, out, back, d)
		}
	})
}

// TestPandasFloatVectors compares against doubles pandas 1.5.3 wrote
// (testdata/pandas_floats.txt).
func TestPandasFloatVectors(t *testing.T) {
	data, err := os.ReadFile("testdata/pandas_floats.txt")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		h, want, _ := strings.Cut(line, " ")
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != 8 {
			t.Fatalf("bad line %q", line)
		}
		v := math.Float64frombits(binary.LittleEndian.Uint64(b))
		if got := string(appendPandasFloat(nil, v)); got != want {
			t.Errorf("%v (%s): got %s, want %s", v, h, got, want)
		}
		n++
	}
	if n < 1000 {
		t.Fatalf("only %d vectors", n)
	}
}
