package batch

import (
	"os"

	"golang.org/x/sys/unix"
)

// stderrIsTerminal decides whether `drum score` draws its progress bar: never when
// stderr is piped or redirected to a file.
var stderrIsTerminal = func() bool {
	_, err := unix.IoctlGetTermios(int(os.Stderr.Fd()), unix.TCGETS)
	return err == nil
}
