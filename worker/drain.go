package worker

import (
	"errors"
	"net"
	"net/http"
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
	// queued, when set, reports the worker's line of waiting predictions: Accept is
	// paced on it (pacing.go). drained is closed when draining starts.
	queued    func() (bool, <-chan struct{})
	drained   chan struct{}
	accepting bool          // in Accept past pacing: wake may interrupt it
	pause     time.Duration // acceptPause; tests change it
}

type deadliner interface{ SetDeadline(time.Time) error }

func newDrainListener(ln net.Listener) *drainListener {
	return &drainListener{Listener: ln, drained: make(chan struct{}), pause: acceptPause}
}

// Drain starts draining; a pending Accept wakes up under the new deadline.
func (l *drainListener) Drain(quiet, max time.Duration) {
	l.mu.Lock()
	if !l.draining {
		close(l.drained)
	}
	l.draining, l.quiet, l.until = true, quiet, time.Now().Add(max)
	l.mu.Unlock()
	if d, ok := l.Listener.(deadliner); ok {
		_ = d.SetDeadline(time.Now().Add(quiet))
	}
}

func (l *drainListener) Accept() (net.Conn, error) {
	d, canDeadline := l.Listener.(deadliner)
	for {
		l.mu.Lock()
		draining, quiet, until := l.draining, l.quiet, l.until
		l.mu.Unlock()
		switch {
		case draining:
			if !canDeadline || time.Now().After(until) {
				return nil, errDrained
			}
			_ = d.SetDeadline(time.Now().Add(quiet))
		case l.queued != nil && canDeadline:
			paceAccept(l.queued, l.pause, l.drained)
			l.mu.Lock()
			if !l.draining {
				_ = d.SetDeadline(time.Time{}) // drop a deadline wake set
				l.accepting = true
			}
			l.mu.Unlock()
		}
		c, err := l.Listener.Accept()
		l.mu.Lock()
		l.accepting = false
		draining = l.draining
		l.mu.Unlock()
		var ne net.Error
		if err != nil && errors.As(err, &ne) && ne.Timeout() {
			if draining {
				return nil, errDrained
			}
			if l.queued != nil {
				continue // woken (wake): pace before accepting again
			}
		}
		return c, err
	}
}

// wake interrupts an Accept that is waiting in accept(2) so that it paces first: the
// worker's line has just formed, and the next connection is better taken by a sibling.
// The deadline it sets is this process's only (Go's poller), never the shared socket's.
// Best effort: a connection that arrives before the interrupted Accept runs again is
// still taken (the poller reports it ready rather than timed out).
func (l *drainListener) wake() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.draining || !l.accepting {
		return
	}
	if d, ok := l.Listener.(deadliner); ok {
		_ = d.SetDeadline(time.Now())
	}
}

// newConns tracks connections by state for a graceful stop.
//
// It counts connections accepted but whose first request has not been read yet.
// net/http drops (closes unanswered) a request whose reading finishes after Shutdown
// began, so a graceful stop waits for this count to reach zero before calling Shutdown:
// otherwise the connections just taken from the accept queue would be cut.
//
// It also counts idle keep-alive connections: Shutdown closes those at once, and a
// client that sends its next request at that moment sees it cut. While draining, every
// answer carries "Connection: close", so waiting a moment lets busy keep-alive clients
// make one more request, get it answered, and leave on their own.
type newConns struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	idle  map[net.Conn]struct{}
}

// track is an http.Server ConnState hook.
func (n *newConns) track(c net.Conn, st http.ConnState) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conns == nil {
		n.conns, n.idle = map[net.Conn]struct{}{}, map[net.Conn]struct{}{}
	}
	delete(n.conns, c)
	delete(n.idle, c)
	switch st {
	case http.StateNew:
		n.conns[c] = struct{}{}
	case http.StateIdle:
		n.idle[c] = struct{}{}
	}
}

// waitIdle returns once no keep-alive connection is idle, or after max (clients that
// stay idle are closed by Shutdown; they can see that as an error only if they send
// at that very moment, the HTTP/1.1 race no server can close).
func (n *newConns) waitIdle(max time.Duration) {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		n.mu.Lock()
		idle := len(n.idle)
		n.mu.Unlock()
		if idle == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (n *newConns) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.conns)
}

// wait returns once no connection is still before its first request, or after max
// (a client that connected and sends nothing must not hold the stop).
func (n *newConns) wait(max time.Duration) {
	deadline := time.Now().Add(max)
	for n.count() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	// The state turns Active just before net/http checks for shutdown: let the
	// connections that just turned pass that check.
	time.Sleep(10 * time.Millisecond)
}
