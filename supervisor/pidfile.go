package supervisor

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// checkPIDFile refuses to start when the PID file names a live process other than our
// parent (during a SIGHUP upgrade the file still names the old master, our parent).
// tableflip writes the file atomically (temp file + rename) once we are ready.
func checkPIDFile(path string) error {
	if path == "" {
		return nil
	}
	pid, err := readPIDFile(path)
	if err != nil || pid <= 0 || pid == os.Getppid() || pid == os.Getpid() {
		return nil // absent, unreadable or stale content: it will be overwritten
	}
	if err := syscall.Kill(pid, 0); err == nil || err == syscall.EPERM {
		return fmt.Errorf("pid file %s names process %d, which is running: is another drum server using it? Stop it or remove the file", path, pid)
	}
	return nil
}

func readPIDFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// removePIDFile deletes the file on a clean exit, unless it already names another
// process (the master that took over after an upgrade).
func removePIDFile(path string) {
	if path == "" {
		return
	}
	if pid, err := readPIDFile(path); err == nil && pid == os.Getpid() {
		_ = os.Remove(path)
	}
}
