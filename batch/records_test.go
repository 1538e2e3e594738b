package batch

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func readRecords(t testing.TB, input string) []string {
	rr := newRecordReader(strings.NewReader(input))
	var out []string
	for {
		rec, err := rr.next(nil)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(rec))
	}
}

func TestRecordReader(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"a,b\n1,2\n", []string{"a,b\n", "1,2\n"}},
		{"a\n1", []string{"a\n", "1"}},
		{"a\r\n1\r\n", []string{"a\r\n", "1\r\n"}},
		{"a\n\"x\ny\"\n2\n", []string{"a\n", "\"x\ny\"\n", "2\n"}},
		{"a\n\"he said \"\"hi\n\"\"\"\n2\n", []string{"a\n", "\"he said \"\"hi\n\"\"\"\n", "2\n"}},
		{"a\n\n\n1\n", []string{"a\n", "\n", "\n", "1\n"}},
		{"a\n\"never closed\n1\n2\n", []string{"a\n", "\"never closed\n1\n2\n"}},
		{"a\n" + strings.Repeat("x", 200000) + "\n1\n", []string{"a\n", strings.Repeat("x", 200000) + "\n", "1\n"}},
	} {
		got := readRecords(t, tc.in)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
			t.Errorf("%.40q: records %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSplitFirstRecord(t *testing.T) {
	first, rest, err := splitFirstRecord([]byte("\"a\nb\",c\n1,2\n"))
	if err != nil || string(first) != "\"a\nb\",c\n" || string(rest) != "1,2\n" {
		t.Fatalf("first %q rest %q err %v", first, rest, err)
	}
}

// FuzzRecordReader: records put back together are the input, and every record but
// the last ends with a newline outside quotes.
func FuzzRecordReader(f *testing.F) {
	for _, s := range []string{"a,b\n1,2\n", "a\n\"x\ny\"\n", "\"\"\"\n\n", "a\r\n\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		recs := readRecords(t, in)
		if strings.Join(recs, "") != in {
			t.Fatalf("records %q do not rebuild %q", recs, in)
		}
		for i, r := range recs {
			if r == "" {
				t.Fatalf("empty record %d", i)
			}
			if i < len(recs)-1 && (!strings.HasSuffix(r, "\n") || bytes.Count([]byte(r), []byte{'"'})%2 != 0) {
				t.Fatalf("record %d %q is not whole", i, r)
			}
		}
	})
}
