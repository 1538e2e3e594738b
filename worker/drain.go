package worker

import (
	"errors"
	"net"
	"sync"
	"time"
)

// errDrained ends srv.Serve once the accept queue is empty during a graceful stop.
var errDrained = errors.New("accept queue drained")

// drainListener lets a graceful stop answer the connections the kernel has already
// completed (waiting in the accept queue) instead of resetting them by closing the
// socket under them. Drain switches Accept to short deadlines: it keeps accepting
// while connections keep coming within quiet, and reports errDrained once none came
// for that long, or once max has passed (a steady stream must not stall the stop).
type drainListener struct {
	net.Listener
	mu       sync.Mutex
	draining bool
	until    time.Time // give up draining at this time
	quiet    time.Duration
}

type deadliner interface{ SetDeadline(time.Time) error }

func newDrainListener(ln net.Listener) *drainListener { return &drainListener{Listener: ln} }

// Drain starts draining; a pending Accept wakes up under the new deadline.
func (l *drainListener) Drain(quiet, max time.Duration) {
	l.mu.Lock()
	l.draining, l.quiet, l.until = true, quiet, time.Now().Add(max)
	l.mu.Unlock()
	if d, ok := l.Listener.(deadliner); ok {
		_ = d.SetDeadline(time.Now().Add(quiet))
	}
}

func (l *drainListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	draining, quiet, until := l.draining, l.quiet, l.until
	l.mu.Unlock()
	d, canDeadline := l.Listener.(deadliner)
	if draining {
		if !canDeadline || time.Now().After(until) {
			return nil, errDrained
		}
		_ = d.SetDeadline(time.Now().Add(quiet))
	}
	c, err := l.Listener.Accept()
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			l.mu.Lock()
			draining = l.draining
			l.mu.Unlock()
			if draining {
				return nil, errDrained
			}
		}
	}
	return c, err
}
