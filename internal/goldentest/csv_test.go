package goldentest

import "testing"

func TestSameCSV(t *testing.T) {
	want := "a,b\n0.9924462102180821,x\n"
	for got, ok := range map[string]bool{
		"a,b\n0.9924462102180821,x\n": true,
		"a,b\n0.9924462102180827,x\n": true,  // last-bit BLAS difference
		"a,b\n0.99244621,x\n":         false, // real difference
		"a,b\n0.9924462102180821,y\n": false,
		"a,c\n0.9924462102180821,x\n": false,
		"a,b\n0.9924462102180821\n":   false,
		"a,b\n":                       false,
	} {
		if err := SameCSV([]byte(got), []byte(want), 1e-12); (err == nil) != ok {
			t.Errorf("SameCSV(%q) = %v, want ok=%v", got, err, ok)
		}
	}
}
