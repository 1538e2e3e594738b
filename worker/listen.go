package worker

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// SetBacklog sets the accept-queue length of a listening TCP socket
// (DRUM_WEBSERVER_BACKLOG). Go listens with the system maximum (net.core.somaxconn);
// calling listen(2) again on a listening socket changes its backlog in place, and the
// change holds for every process that shares the socket. The kernel caps n at somaxconn.
func SetBacklog(ln net.Listener, n int) error {
	if n < 1 {
		return fmt.Errorf("listen backlog %d: must be at least 1", n)
	}
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return fmt.Errorf("listen backlog: %T has no file descriptor", ln)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return fmt.Errorf("listen backlog: %w", err)
	}
	var lerr error
	if err := raw.Control(func(fd uintptr) { lerr = syscall.Listen(int(fd), n) }); err != nil {
		return fmt.Errorf("listen backlog: %w", err)
	}
	if lerr != nil {
		return fmt.Errorf("listen backlog %d: %w", n, lerr)
	}
	return nil
}

// Listen opens a TCP listener on address with the given backlog (0 keeps Go's).
func Listen(address string, backlog int) (net.Listener, error) {
	ln, err := net.Listen("tcp", address)
	if err != nil {
		return nil, err
	}
	if backlog > 0 {
		if err := SetBacklog(ln, backlog); err != nil {
			ln.Close()
			return nil, err
		}
	}
	return ln, nil
}

// SomaxConn is the kernel's cap on listen backlogs (net.core.somaxconn), or 0 if unknown.
func SomaxConn() int {
	b, err := os.ReadFile("/proc/sys/net/core/somaxconn")
	if err != nil {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return n
}
