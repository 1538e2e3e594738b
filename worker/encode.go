package worker

import (
	"fmt"
	"math"
	"strconv"
	"sync"

	"github.com/drum-go/drum/worker/predictor"
)

// DRUM writes two JSON dialects (spec §4.5): prediction bodies come from pandas'
// to_json (bundled ujson, double_precision=10) and everything else from Flask's jsonify
// (json.dumps, sorted keys, ASCII only, trailing newline). Both are reproduced byte for
// byte here, with append-style encoders into pooled buffers.

// bufPool holds response buffers. Buffers that grew past maxPooledBuf are dropped so one
// huge answer does not pin its memory forever.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

const maxPooledBuf = 16 << 20

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) > maxPooledBuf {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

// appendPredictions appends DRUM's structured prediction body for res
// (_build_drum_response_json_str): a flat array for one column, else one object per row
// with keys in column order, and the extra model output when the score hook gave some.
func appendPredictions(dst []byte, res *predictor.Result) ([]byte, error) {
	dst = append(dst, `{"predictions":`...)
	if res.JSON != nil {
		// Targets DRUM does not cast to float: the predictor serialised them.
		dst = append(dst, res.JSON...)
	} else {
		var err error
		if dst, err = appendPredictionValues(dst, res); err != nil {
			return dst, err
		}
	}
	if res.ExtraModelOutput != nil {
		dst = append(dst, `,"extraModelOutput":`...)
		dst = append(dst, res.ExtraModelOutput...)
	}
	return append(dst, '}'), nil
}

func appendPredictionValues(dst []byte, res *predictor.Result) ([]byte, error) {
	ncol := len(res.Columns)
	if res.Rows < 0 || len(res.Values) != res.Rows*ncol {
		return dst, fmt.Errorf("predictor returned %d values for %d rows of %d columns",
			len(res.Values), res.Rows, ncol)
	}
	dst = append(dst, '[')
	if ncol == 1 {
		for i, v := range res.Values {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendPandasFloat(dst, v)
		}
		return append(dst, ']'), nil
	}
	// The quoted keys are the same on every row: encode them once.
	keys := make([][]byte, ncol)
	for j, c := range res.Columns {
		k := append(appendPandasString(nil, c), ':')
		if j > 0 {
			k = append([]byte{','}, k...)
		}
		keys[j] = k
	}
	for r := 0; r < res.Rows; r++ {
		if r > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '{')
		row := res.Values[r*ncol : (r+1)*ncol]
		for j, v := range row {
			dst = append(dst, keys[j]...)
			dst = appendPandasFloat(dst, v)
		}
		dst = append(dst, '}')
	}
	return append(dst, ']'), nil
}

// appendPandasFloat appends v as pandas' ujson encoder writes a double with
// double_precision=10 (Appendix B): %.10g outside [1e-15, 1e16], otherwise fixed notation
// rounded to 10 decimals (ties to odd, or up from zero), trailing zeros dropped but one
// decimal kept. NaN and ±Inf are null.
func appendPandasFloat(dst []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(dst, "null"...)
	}
	neg := v < 0 // false for -0.0, which prints as 0.0
	if neg {
		v = -v
	}
	const thresMax = 1e16 // (double)1e16 - 1 rounds to 1e16
	if v > thresMax || (v != 0 && v < 1e-15) {
		if neg {
			v = -v
		}
		return appendG10(dst, v)
	}
	const pow10 = 1e10
	whole := uint64(v)
	tmp := float64(float64(v-float64(whole)) * pow10) // explicit conversions: no FMA
	frac := uint64(tmp)
	diff := float64(tmp - float64(frac))
	if diff > 0.5 {
		frac++
	} else if diff == 0.5 && (frac == 0 || frac&1 == 1) {
		frac++
	}
	if float64(frac) >= pow10 {
		frac = 0
		whole++
	}
	if neg {
		dst = append(dst, '-')
	}
	dst = strconv.AppendUint(dst, whole, 10)
	dst = append(dst, '.')
	if frac == 0 {
		return append(dst, '0')
	}
	count := 10
	for frac%10 == 0 {
		frac /= 10
		count--
	}
	var digits [20]byte
	d := strconv.AppendUint(digits[:0], frac, 10)
	for i := len(d); i < count; i++ {
		dst = append(dst, '0')
	}
	return append(dst, d...)
}

// appendG10 is C's printf("%.10g") for values whose exponent selects the e-style.
func appendG10(dst []byte, v float64) []byte {
	var tmp [32]byte
	s := strconv.AppendFloat(tmp[:0], v, 'e', 9, 64)
	e := 0
	for e < len(s) && s[e] != 'e' {
		e++
	}
	m := e
	for m > 0 && s[m-1] == '0' {
		m--
	}
	if m > 0 && s[m-1] == '.' {
		m--
	}
	dst = append(dst, s[:m]...)
	return append(dst, s[e:]...)
}

const hexDigits = "0123456789abcdef"

// appendPandasString appends s quoted as ujson does with ensure_ascii: "/" is escaped,
// DEL is dropped (a quirk of its ASCII table), everything past ASCII is \uXXXX.
func appendPandasString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for _, r := range s {
		switch {
		case r == '"':
			dst = append(dst, `\"`...)
		case r == '\\':
			dst = append(dst, `\\`...)
		case r == '/':
			dst = append(dst, `\/`...)
		case r == 0x7f:
		case r >= 0x20 && r < 0x7f:
			dst = append(dst, byte(r))
		default:
			dst = appendEscapedRune(dst, r)
		}
	}
	return append(dst, '"')
}

// appendPyString appends s quoted as Python's json.dumps(ensure_ascii=True) does.
func appendPyString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for _, r := range s {
		switch {
		case r == '"':
			dst = append(dst, `\"`...)
		case r == '\\':
			dst = append(dst, `\\`...)
		case r >= 0x20 && r < 0x7f:
			dst = append(dst, byte(r))
		default:
			dst = appendEscapedRune(dst, r)
		}
	}
	return append(dst, '"')
}

// appendEscapedRune writes the short escapes both encoders share, else \uXXXX (a
// surrogate pair above the BMP). Invalid UTF-8 arrives as U+FFFD.
func appendEscapedRune(dst []byte, r rune) []byte {
	switch r {
	case '\b':
		return append(dst, `\b`...)
	case '\f':
		return append(dst, `\f`...)
	case '\n':
		return append(dst, `\n`...)
	case '\r':
		return append(dst, `\r`...)
	case '\t':
		return append(dst, `\t`...)
	}
	if r > 0xffff {
		r -= 0x10000
		dst = appendU4(dst, 0xd800+(r>>10))
		return appendU4(dst, 0xdc00+(r&0x3ff))
	}
	return appendU4(dst, r)
}

func appendU4(dst []byte, r rune) []byte {
	return append(dst, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
}

// flaskJSON returns jsonify({key: msg}): {"key":"msg"} and a newline.
func flaskJSON(key, msg string) []byte {
	b := make([]byte, 0, len(key)+len(msg)+8)
	b = append(b, '{')
	b = appendPyString(b, key)
	b = append(b, ':')
	b = appendPyString(b, msg)
	return append(b, "}\n"...)
}
