package goldentest

import (
	"os"
	"testing"
)

// Missing handles absent golden recordings: outside CI the test is skipped (a developer
// may work without shared/), in CI it fails, because CI lays shared/ beside the clone
// and a silent skip would hide the compatibility tests.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("CI must have the golden recordings: "+format, args...)
	}
	t.Skipf("GOLDEN RECORDINGS NOT FOUND — TEST NOT RUN: "+format, args...)
}
