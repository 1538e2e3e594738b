package main

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// scoreGrowthBound is how much more memory (peak RSS of drum and its Python predictor,
// whichever is larger) scoring 100k rows (39 MB of CSV) may take than scoring 5 rows.
// Sending the file whole costs the predictor about 3.5 times the file (measured: +137
// MiB); 4 MiB chunks cost about +30 MiB. 64 MiB sits between, with room for noise.
const scoreGrowthBound = 64 << 20

// bigScoreInput writes n data rows of the regression golden model's input columns,
// cycling through its recorded 1000-row request.
func bigScoreInput(t *testing.T, n int) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(goldenModel("regression"), "requests", "X_1000.csv"))
	if err != nil {
		t.Fatal(err)
	}
	header, body, _ := bytes.Cut(src, []byte("\n"))
	rows := bytes.Split(bytes.TrimRight(body, "\n"), []byte("\n"))
	path := filepath.Join(t.TempDir(), "X_big.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	w.Write(header)
	w.WriteByte('\n')
	for i := 0; i < n; i++ {
		w.Write(rows[i%len(rows)])
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path
}

// scorePeakRSS runs drum score and returns its output and the peak RSS of drum and its
// waited-for children (wait4's ru_maxrss covers the Python predictor too).
func scorePeakRSS(t *testing.T, input string) ([]byte, int64, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.csv")
	cmd := exec.Command(drumBin, "score", "--code-dir", goldenModel("regression"), "--target-type", "regression",
		"--input", input, "--output", out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("drum score %s: %v\n%s", input, err, stderr.String())
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return got, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10, stderr.String()
}

// TestScoreBigFileBoundedMemory: `drum score` of a 100k-row file streams it (memory
// stays within scoreGrowthBound of a 5-row run), draws no progress bar on a pipe and
// writes exactly the server's predictions.
func TestScoreBigFileBoundedMemory(t *testing.T) {
	needPython(t)
	const rows = 100_000
	big := bigScoreInput(t, rows)
	_, idle, _ := scorePeakRSS(t, filepath.Join(goldenModel("regression"), "requests", "X_5.csv"))
	got, peak, stderr := scorePeakRSS(t, big)
	t.Logf("peak RSS: %d MiB for 5 rows, %d MiB for %d rows", idle>>20, peak>>20, rows)
	if peak-idle > scoreGrowthBound {
		t.Errorf("scoring %d rows took %d MiB more than 5 rows; bound %d MiB", rows, (peak-idle)>>20, scoreGrowthBound>>20)
	}
	if strings.Contains(stderr, "\r") || strings.Contains(stderr, "rows/s") {
		t.Errorf("progress bar drawn on a pipe: %q", stderr)
	}
	// The big file cycles the 1000-row request, which drum scores whole (below the
	// chunk size, DRUM's path): row i must be that run's row i%1000, byte for byte.
	whole, _, _ := scorePeakRSS(t, filepath.Join(goldenModel("regression"), "requests", "X_1000.csv"))
	wholeLines := strings.Split(strings.TrimRight(string(whole), "\n"), "\n")
	gotLines := strings.Split(strings.TrimRight(string(got), "\n"), "\n")
	if len(gotLines) != rows+1 || gotLines[0] != wholeLines[0] {
		t.Fatalf("chunked output: %d lines, header %q; want %d lines, header %q", len(gotLines), gotLines[0], rows+1, wholeLines[0])
	}
	for i, line := range gotLines[1:] {
		if want := wholeLines[1+i%1000]; line != want {
			t.Fatalf("row %d: chunked %q, whole-file %q", i, line, want)
		}
	}
	scored := csvColumn(t, got)

	served := startServer(t, "regression", 1).predictFile(big)
	if len(scored) != rows || len(served) != rows {
		t.Fatalf("score wrote %d rows, server answered %d; want %d", len(scored), len(served), rows)
	}
	for i := range scored {
		// The server's JSON has pandas' to_json precision (10 decimals).
		if d := math.Abs(scored[i] - served[i].values[0]); d > 1e-9 {
			t.Fatalf("row %d: score %v, server %v", i, scored[i], served[i].values[0])
		}
	}
}
