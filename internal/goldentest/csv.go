// Package goldentest holds comparisons that tests of several packages make against
// DRUM's recorded outputs in shared/golden.
package goldentest

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
)

// SameCSV compares a CSV drum wrote with one DRUM wrote: the same header, rows and
// fields, numbers equal within a relative tolerance and everything else byte for byte.
// The tolerance exists because BLAS kernels differ by CPU: on a CPU with FMA, OpenBLAS
// rounds a few dot products differently in the last bit than where the recording was
// made, and DRUM itself would print those digits too (tests must not pin the kernel).
func SameCSV(got, want []byte, relTol float64) error {
	g := bytes.Split(got, []byte("\n"))
	w := bytes.Split(want, []byte("\n"))
	if len(g) != len(w) {
		return fmt.Errorf("%d lines, want %d", len(g), len(w))
	}
	for i := range w {
		gf := bytes.Split(g[i], []byte(","))
		wf := bytes.Split(w[i], []byte(","))
		if len(gf) != len(wf) {
			return fmt.Errorf("line %d: %d fields, want %d: %q vs %q", i+1, len(gf), len(wf), g[i], w[i])
		}
		for j := range wf {
			if bytes.Equal(gf[j], wf[j]) {
				continue
			}
			a, errA := strconv.ParseFloat(string(gf[j]), 64)
			b, errB := strconv.ParseFloat(string(wf[j]), 64)
			if errA != nil || errB != nil || math.Abs(a-b) > relTol*math.Max(1, math.Abs(b)) {
				return fmt.Errorf("line %d field %d: %q, want %q", i+1, j+1, gf[j], wf[j])
			}
		}
	}
	return nil
}
