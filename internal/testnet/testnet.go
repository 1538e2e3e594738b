// Package testnet holds network helpers shared by tests that start the real binary.
package testnet

import (
	"net"
	"testing"
)

// FreeAddr returns a loopback address that was free a moment ago: tests bind there only
// after the listener closes, so a rare clash shows as a start-up failure, never a hang.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
