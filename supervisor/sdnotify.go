package supervisor

import (
	"fmt"
	"net"
	"os"
	"strings"
)

// notifySocketEnv is systemd's notification socket (Type=notify services).
const notifySocketEnv = "NOTIFY_SOCKET"

// sdNotify sends state lines to systemd when it supervises us. With NotifyAccess=all,
// a master started by an upgrade announces itself with MAINPID=, so systemd follows it
// when the old master exits instead of taking that exit for the service's end.
// Errors are returned for logging only: serving never depends on systemd.
func sdNotify(state ...string) error {
	path := os.Getenv(notifySocketEnv)
	if path == "" {
		return nil
	}
	if strings.HasPrefix(path, "@") {
		path = "\x00" + path[1:] // abstract socket
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(strings.Join(state, "\n"))); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}
