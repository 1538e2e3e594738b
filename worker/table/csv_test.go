package table

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// checkTable asserts what every handled parse must satisfy, whatever the input.
func checkTable(t *testing.T, tb *Table) {
	t.Helper()
	if tb.Rows <= 0 || len(tb.Columns) == 0 {
		t.Fatalf("empty table handled: %d rows, %d columns", tb.Rows, len(tb.Columns))
	}
	seen := map[string]bool{}
	for i := range tb.Columns {
		c := &tb.Columns[i]
		if seen[c.Name] {
			t.Fatalf("duplicate column name %q", c.Name)
		}
		seen[c.Name] = true
		if c.Name == "" || !utf8.ValidString(c.Name) {
			t.Fatalf("bad column name %q", c.Name)
		}
		if c.Kind < Int64 || c.Kind > Object {
			t.Fatalf("column %q: kind %v", c.Name, c.Kind)
		}
		if c.Len() != tb.Rows {
			t.Fatalf("column %q holds %d values for %d rows", c.Name, c.Len(), tb.Rows)
		}
		set := 0
		for _, n := range []int{len(c.Ints), len(c.Floats), len(c.Bools), len(c.Objects)} {
			if n > 0 {
				set++
			}
		}
		if set != 1 {
			t.Fatalf("column %q: %d value slices set", c.Name, set)
		}
		for _, f := range c.Floats {
			if math.IsNaN(f) && math.Float64bits(f) != math.Float64bits(NaNValue) {
				t.Fatalf("column %q: NaN with bits %x", c.Name, math.Float64bits(f))
			}
		}
		for _, v := range c.Objects {
			if v.Tag > False || (v.Tag != Str && v.S != "") {
				t.Fatalf("column %q: bad cell %+v", c.Name, v)
			}
			if v.Tag == Str && (v.S == "" || !utf8.ValidString(v.S) || strings.IndexByte(v.S, 0) >= 0 ||
				isSpace(v.S[0]) || isSpace(v.S[len(v.S)-1])) {
				t.Fatalf("column %q: str cell %q pandas would not give", c.Name, v.S)
			}
			if v.Tag == Str && isNA([]byte(v.S)) {
				t.Fatalf("column %q: NA string %q kept as str", c.Name, v.S)
			}
		}
	}
}

func sameTable(a, b *Table) bool {
	if a.Rows != b.Rows || !a.SameSchema(b) {
		return false
	}
	for i := range a.Columns {
		x, y := &a.Columns[i], &b.Columns[i]
		for r := 0; r < a.Rows; r++ {
			switch x.Kind {
			case Int64:
				if x.Ints[r] != y.Ints[r] {
					return false
				}
			case Float64:
				if math.Float64bits(x.Floats[r]) != math.Float64bits(y.Floats[r]) {
					return false
				}
			case Bool:
				if x.Bools[r] != y.Bools[r] {
					return false
				}
			case Object:
				if x.Objects[r] != y.Objects[r] {
					return false
				}
			}
		}
	}
	return true
}

// FuzzFastCSV checks invariants without pandas (TestFastCSVMatchesPandas in
// worker/predictor compares with pandas): no panic, a well-formed table, and the same
// table for layouts pandas reads alike (a leading BOM, \r\n line ends, an extra blank
// line after a multi-column body).
func FuzzFastCSV(f *testing.F) {
	for _, s := range []string{
		"a,b\n1,2\n", "a,b,\n1,2.5,\n", "x\nTrue\nNA\n", "\"a,\"\"b\",c\n\"1\",x\n", "a,a,,a.1\n1,2,3,4\n",
		"x,y\n1e5,-0\n.5,inf\n", "x\n9223372036854775807\n", "a,b\r\n1,2\r\n\r\n", "x\ntrue\nFALSE\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		tb, why := ParseCSV(body)
		if tb == nil {
			if why == "" {
				t.Fatal("not handled without a reason")
			}
			return
		}
		checkTable(t, tb)
		if again, _ := ParseCSV(append([]byte("\xef\xbb\xbf"), body...)); bytes.HasPrefix(body, []byte("\xef\xbb\xbf")) == false &&
			(again == nil || !sameTable(tb, again)) {
			t.Fatalf("a leading BOM changed the table of %q", body)
		}
		if len(tb.Columns) > 1 && bytes.HasSuffix(body, []byte("\n")) {
			if again, _ := ParseCSV(append(append([]byte(nil), body...), '\n')); again == nil || !sameTable(tb, again) {
				t.Fatalf("a trailing blank line changed the table of %q", body)
			}
		}
		if !bytes.Contains(body, []byte("\r")) && !bytes.Contains(body, []byte("\"")) {
			crlf := bytes.ReplaceAll(body, []byte("\n"), []byte("\r\n"))
			if again, _ := ParseCSV(crlf); again == nil || !sameTable(tb, again) {
				t.Fatalf("\\r\\n line ends changed the table of %q", body)
			}
		}
	})
}

// TestParseNumbers pins the number rules: exact cases equal Go's correctly rounded
// parse, and the cases where pandas' converter is not correctly rounded keep its answer.
func TestParseNumbers(t *testing.T) {
	for _, s := range []string{"0", "-0", "+7", "007", "9223372036854775807", "-9223372036854775808"} {
		v, st := parseInt([]byte(s))
		want, _ := strconv.ParseInt(s, 10, 64)
		if st != cellOK || v != want {
			t.Errorf("parseInt(%q) = %d, %d; want %d", s, v, st, want)
		}
	}
	for _, s := range []string{"9223372036854775808", "-9223372036854775809", "99999999999999999999x"} {
		if _, st := parseInt([]byte(s)); st != cellUnsure {
			t.Errorf("parseInt(%q): status %d, want unsure (pandas raises OverflowError)", s, st)
		}
	}
	for _, s := range []string{"", "+", "-", "1.0", "1e5", " 1", "0x10", "1_0"} {
		if _, st := parseInt([]byte(s)); st != cellNot {
			t.Errorf("parseInt(%q): status %d, want not an integer", s, st)
		}
	}
	for _, s := range []string{"0.1", "-2.5", "1e5", "1E-05", ".5", "5.", "123456.789", "1e22", "-0.0"} {
		v, st := parseFloat([]byte(s))
		want, _ := strconv.ParseFloat(s, 64)
		if st != cellOK || math.Float64bits(v) != math.Float64bits(want) {
			t.Errorf("parseFloat(%q) = %v, %d; want %v", s, v, st, want)
		}
	}
	// pandas keeps 17 digits, leading zero included: 0.3, not the correctly rounded
	// 0.30000000000000004 (checked against pandas in worker/predictor's edge cases).
	if v, st := parseFloat([]byte("0.30000000000000004441")); exactScaling && (st != cellOK || v != 0.3) {
		t.Errorf("parseFloat(0.30000000000000004441) = %v, %d", v, st)
	}
	for _, s := range []string{"1e400", "9e308", "1e", "1.2.3", ".", "e5", "NAN", "1,0"} {
		if _, st := parseFloat([]byte(s)); st != cellNot {
			t.Errorf("parseFloat(%q): status %d, want not a float", s, st)
		}
	}
	for _, s := range []string{"inf", "-Infinity", "+INF"} {
		if v, st := parseFloat([]byte(s)); st != cellOK || !math.IsInf(v, 0) {
			t.Errorf("parseFloat(%q) = %v, %d; want an infinity", s, v, st)
		}
	}
}

func TestColumnNames(t *testing.T) {
	for _, c := range []struct{ header, want string }{
		{"a,a,a.1,a", "a|a.2|a.1|a.3"},
		{"a,,c,", "a|Unnamed: 1|c|Unnamed: 3"},
		{",Unnamed: 0", "Unnamed: 0.1|Unnamed: 0"},
		{"x,x,x", "x|x.1|x.2"},
	} {
		tb, why := ParseCSV([]byte(c.header + "\n" + strings.Repeat("1,", strings.Count(c.header, ",")) + "1\n"))
		if tb == nil {
			t.Fatalf("%q not handled: %s", c.header, why)
		}
		var names []string
		for _, col := range tb.Columns {
			names = append(names, col.Name)
		}
		if got := strings.Join(names, "|"); got != c.want {
			t.Errorf("header %q: names %s, want %s", c.header, got, c.want)
		}
	}
}
