package worker

import (
	"fmt"
	"regexp"
	"testing"
)

// FuzzFindBoundary checks findBoundary against the unanchored regex search it replaces.
func FuzzFindBoundary(f *testing.F) {
	for _, c := range [][2]string{
		{"a,b\r\n1,2\r\n--bnd\r\n", "bnd"}, {"x\n--bnd--\n", "bnd"}, {"--bnd--bnd\r--bnd \t\n", "bnd"},
		{"\r\r---\n", "-"}, {"data--bndx\n--bnd", "bnd"}, {"\r\n--b\r\n--b--", "b"},
	} {
		f.Add([]byte(c[0]), c[1])
	}
	f.Fuzz(func(t *testing.T, body []byte, boundary string) {
		if boundary == "" || len(boundary) > 70 || !isASCII(boundary) {
			return
		}
		q := regexp.QuoteMeta(boundary)
		tail := `(--[ \t\f\v]*` + mpLineBreak + `?|[ \t\f\v]*` + mpLineBreak + `)`
		unanchored := regexp.MustCompile(mpLineBreak + `--` + q + tail)
		d := &mpDecoder{boundary: []byte("--" + boundary),
			boundaryRe: regexp.MustCompile(`^` + mpLineBreak + `--` + q + tail)}
		got, want := d.findBoundary(body), unanchored.FindSubmatchIndex(body)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("findBoundary(%q, %q) = %v, the regex search %v", body, boundary, got, want)
		}
	})
}
