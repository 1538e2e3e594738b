package table

import (
	"math"
	"runtime"
	"strconv"
)

// naStrings are pandas 1.5.3's default missing-value strings (exact, case-sensitive).
var naStrings = map[string]struct{}{
	"": {}, "#N/A": {}, "#N/A N/A": {}, "#NA": {}, "-1.#IND": {}, "-1.#QNAN": {},
	"-NaN": {}, "-nan": {}, "1.#IND": {}, "1.#QNAN": {}, "<NA>": {}, "N/A": {}, "NA": {},
	"NULL": {}, "NaN": {}, "n/a": {}, "nan": {}, "null": {},
}

// NaNValue is numpy's np.nan (0x7ff8000000000000); Go's math.NaN has other bits.
var NaNValue = math.Float64frombits(0x7ff8000000000000)

// naFirst marks the bytes an NA string starts with; naMaxLen is the longest one.
var naFirst = func() (t [256]bool) {
	for s := range naStrings {
		if s != "" {
			t[s[0]] = true
		}
	}
	return t
}()

const naMaxLen = len("#N/A N/A")

func isNA(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	if len(b) > naMaxLen || !naFirst[b[0]] {
		return false // most cells: no map lookup
	}
	_, ok := naStrings[string(b)]
	return ok
}

// parse outcomes of one cell for one dtype.
const (
	cellOK     = iota
	cellNot    // pandas surely rejects it for this dtype
	cellUnsure // pandas' answer is not reproduced here: fall back
)

// inferColumn tries the dtypes in pandas' order (int64, float64, bool, object), as
// TextReader._convert_tokens does with no dtype given.
func inferColumn(col column) (Column, string) {
	rows := col.len()
	// int64: every cell an integer or missing. Cells are tried in order and the first
	// failure decides: an overflow makes pandas try uint64, which is not reproduced.
	// With missing cells pandas upcasts the integers to float64 (_maybe_upcast), so
	// "-0" gives 0.0 and long integers round once, not as precise_xstrtod would.
	var ints []int64 // allocated at the first integer
	isInt := true
	hasNA := false
	for i := 0; i < rows; i++ {
		c := col.cell(i)
		if isNA(c) {
			hasNA = true
			continue
		}
		v, st := parseInt(c)
		if st == cellUnsure {
			return Column{}, "integer out of int64 range"
		}
		if st == cellNot {
			isInt = false
			break
		}
		if ints == nil {
			ints = make([]int64, rows)
		}
		ints[i] = v
	}
	if ints == nil {
		ints = make([]int64, rows) // every cell missing
	}
	if isInt && !hasNA {
		return Column{Kind: Int64, Ints: ints}, ""
	}
	if isInt {
		floats := make([]float64, rows)
		for i := range floats {
			if isNA(col.cell(i)) {
				floats[i] = NaNValue
			} else {
				floats[i] = float64(ints[i])
			}
		}
		return Column{Kind: Float64, Floats: floats}, ""
	}

	// float64: NA cells are NaN. Any rejected cell decides regardless of order.
	floats := make([]float64, rows)
	unsure := false
	isFloat := true
	for i := range floats {
		c := col.cell(i)
		if isNA(c) {
			floats[i] = NaNValue
			continue
		}
		v, st := parseFloat(c)
		if st == cellNot {
			isFloat = false
			break
		}
		if st == cellUnsure {
			unsure = true
		}
		floats[i] = v
	}
	if isFloat {
		if unsure {
			return Column{}, "float exponent too long to reproduce"
		}
		return Column{Kind: Float64, Floats: floats}, ""
	}

	// bool: True/False in any case; with a missing cell pandas upcasts to object.
	bools := make([]bool, rows)
	isBool := true
	hasNA = false
	for i := range bools {
		c := col.cell(i)
		if isNA(c) {
			hasNA = true
			continue
		}
		switch {
		case asciiEqualFold(c, "true"):
			bools[i] = true
		case asciiEqualFold(c, "false"):
		default:
			isBool = false
		}
		if !isBool {
			break
		}
	}
	if isBool && !hasNA {
		return Column{Kind: Bool, Bools: bools}, ""
	}
	objs := make([]Value, rows)
	for i := range objs {
		c := col.cell(i)
		switch {
		case isNA(c):
			objs[i] = Value{Tag: NaN}
		case isBool && bools[i]:
			objs[i] = Value{Tag: True}
		case isBool:
			objs[i] = Value{Tag: False}
		default:
			objs[i] = Value{Tag: Str, S: string(c)}
		}
	}
	return Column{Kind: Object, Objects: objs}, ""
}

// parseInt is pandas' str_to_int64 without thousands separator, for a cell without
// surrounding whitespace: an optional sign and at least one ASCII digit.
func parseInt(b []byte) (int64, int) {
	neg := false
	p := 0
	if p < len(b) && (b[p] == '+' || b[p] == '-') {
		neg = b[p] == '-'
		p++
	}
	if p == len(b) {
		return 0, cellNot
	}
	// pandas stops at the first digit that overflows int64 (and then tries uint64).
	limit := uint64(math.MaxInt64)
	if neg {
		limit = 1 << 63
	}
	var u uint64
	for ; p < len(b); p++ {
		d := b[p] - '0'
		if d > 9 {
			return 0, cellNot
		}
		if u > (limit-uint64(d))/10 {
			return 0, cellUnsure
		}
		u = u*10 + uint64(d)
	}
	if neg {
		return -int64(u-1) - 1, cellOK
	}
	return int64(u), cellOK
}

// pow10 is precise_xstrtod's table of powers of ten (each correctly rounded).
var pow10 = func() (e [309]float64) {
	for i := range e {
		v, _ := strconv.ParseFloat("1e"+strconv.Itoa(i), 64)
		e[i] = v
	}
	return e
}()

// exactScaling is true where the C compiler behind pandas rounds each operation of
// precise_xstrtod separately, as Go does with explicit conversions: x86-64 has no fused
// multiply-add in its baseline. Elsewhere only exact cases are reproduced.
var exactScaling = runtime.GOARCH == "amd64"

// parseFloat is pandas 1.5.3's default converter, precise_xstrtod (no thousands
// separator, '.' decimal, 'e' exponent), followed by the inf spellings _try_double
// accepts when it fails. precise_xstrtod is not correctly rounded: it keeps at most 17
// digits (leading zeros included) in a double and scales by one power of ten; this
// repeats its arithmetic operation by operation.
func parseFloat(b []byte) (float64, int) {
	if len(b) >= 3 && len(b) <= len("-infinity") {
		if v, ok := infinity(b); ok {
			return v, cellOK
		}
	}
	p := 0
	neg := false
	if p < len(b) && (b[p] == '+' || b[p] == '-') {
		neg = b[p] == '-'
		p++
	}
	const maxDigits = 17
	number := 0.0
	var mant uint64 // the same digits as an integer, to tell exact cases
	digits, exp := 0, 0
	for p < len(b) && isDigit(b[p]) {
		if digits < maxDigits {
			number = float64(number*10) + float64(b[p]-'0')
			mant = mant*10 + uint64(b[p]-'0')
			digits++
		} else {
			exp++
		}
		p++
	}
	if p < len(b) && b[p] == '.' {
		p++
		decimals := 0
		for digits < maxDigits && p < len(b) && isDigit(b[p]) {
			number = float64(number*10) + float64(b[p]-'0')
			mant = mant*10 + uint64(b[p]-'0')
			digits++
			decimals++
			p++
		}
		for p < len(b) && isDigit(b[p]) {
			p++
		}
		exp -= decimals
	}
	if digits == 0 {
		return 0, cellNot
	}
	if neg {
		number = -number
	}
	if p < len(b) && (b[p] == 'e' || b[p] == 'E') {
		q := p + 1
		eneg := false
		if q < len(b) && (b[q] == '+' || b[q] == '-') {
			eneg = b[q] == '-'
			q++
		}
		n, edigits := 0, 0
		for q < len(b) && isDigit(b[q]) {
			if edigits >= 9 {
				return 0, cellUnsure // pandas sums up to 17 digits in a C int
			}
			n = n*10 + int(b[q]-'0')
			edigits++
			q++
		}
		if edigits > 0 {
			if eneg {
				n = -n
			}
			exp += n
			p = q
		}
		// No exponent digits: pandas leaves the 'e' unread, so the cell is not a number.
	}
	if p != len(b) {
		return 0, cellNot
	}
	if !exactScaling && (mant > 1<<53 || exp > 22 || exp < -22 || digits == maxDigits) {
		return 0, cellUnsure
	}
	switch {
	case exp > 308:
		return 0, cellNot // ERANGE: pandas does not take the cell as a float
	case exp > 0:
		number = float64(number * pow10[exp])
	case exp < -616:
		number = 0
	case exp < -308:
		number = float64(number / pow10[-308-exp])
		number = float64(number / pow10[308])
	default:
		number = float64(number / pow10[-exp])
	}
	if math.IsInf(number, 0) {
		return 0, cellNot // ERANGE again
	}
	return number, cellOK
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// infinity recognises the spellings pandas' _try_double accepts after the converter
// fails (case-insensitive).
func infinity(b []byte) (float64, bool) {
	switch {
	case asciiEqualFold(b, "inf"), asciiEqualFold(b, "+inf"),
		asciiEqualFold(b, "infinity"), asciiEqualFold(b, "+infinity"):
		return math.Inf(1), true
	case asciiEqualFold(b, "-inf"), asciiEqualFold(b, "-infinity"):
		return math.Inf(-1), true
	}
	return 0, false
}

// asciiEqualFold is C's strcasecmp(b, lower) == 0 for a lower-case ASCII lower: unlike
// strings.EqualFold it folds no non-ASCII letters (U+017F is not 's').
func asciiEqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
