package worker

import (
	"net"
	"sync"
	"testing"
	"time"
)

// line stands in for the admission gate's line in the pacing tests.
type line struct {
	mu      sync.Mutex
	busy    bool
	shorter chan struct{}
}

func (q *line) queued() (bool, <-chan struct{}) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shorter == nil {
		q.shorter = make(chan struct{})
	}
	return q.busy, q.shorter
}

func (q *line) set(busy bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.busy = busy
	if q.shorter != nil {
		close(q.shorter)
		q.shorter = nil
	}
}

func pacedListener(t *testing.T, q *line, pause time.Duration) *drainListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newDrainListener(ln)
	l.queued, l.pause = q.queued, pause
	t.Cleanup(func() { ln.Close() })
	return l
}

// acceptAsync runs one Accept and reports its connection.
func acceptAsync(l *drainListener) <-chan net.Conn {
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			c = nil
		}
		ch <- c
	}()
	return ch
}

func dial(t *testing.T, l net.Listener) {
	t.Helper()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
}

func expectAccepted(t *testing.T, ch <-chan net.Conn, what string) {
	t.Helper()
	select {
	case c := <-ch:
		if c == nil {
			t.Fatalf("%s: Accept failed", what)
		}
		c.Close()
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no connection accepted", what)
	}
}

// expectHeld checks that Accept has not taken the waiting connection yet. It cannot
// fail on a slow machine: a late Accept only makes the check pass more easily.
func expectHeld(t *testing.T, ch <-chan net.Conn, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("%s: accepted while the worker's line was not empty", what)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestAcceptWaitsWhileQueued(t *testing.T) {
	q := &line{busy: true}
	l := pacedListener(t, q, time.Hour)
	got := acceptAsync(l)
	dial(t, l)
	expectHeld(t, got, "busy worker")
	q.set(false) // the line is gone: the connection is taken
	expectAccepted(t, got, "after the line emptied")
}

func TestAcceptPauseIsBounded(t *testing.T) {
	q := &line{busy: true}
	l := pacedListener(t, q, 20*time.Millisecond)
	got := acceptAsync(l)
	dial(t, l)
	expectAccepted(t, got, "busy past the pause") // still busy: accepted anyway
}

func TestWakeMakesAPendingAcceptPace(t *testing.T) {
	q := &line{}
	l := pacedListener(t, q, time.Hour)
	got := acceptAsync(l)
	waitFor(t, "Accept to wait in accept(2)", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.accepting
	})
	q.set(true) // a line forms: the gate calls wake
	l.wake()
	// A connection arriving in the very instant of the wake may still be taken (Go's
	// poller lets readiness win over the expired deadline); one arriving once the
	// accept has been interrupted must wait.
	waitFor(t, "the wake to interrupt accept(2)", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return !l.accepting
	})
	dial(t, l)
	expectHeld(t, got, "woken worker")
	q.set(false)
	expectAccepted(t, got, "after the line emptied")
}

func TestDrainEndsPacing(t *testing.T) {
	q := &line{busy: true}
	l := pacedListener(t, q, time.Hour)
	got := acceptAsync(l)
	dial(t, l)
	expectHeld(t, got, "busy worker")
	l.Drain(time.Second, 5*time.Second) // a graceful stop answers what is waiting
	expectAccepted(t, got, "draining")
}

func TestGateCallsOnQueueWhenALineForms(t *testing.T) {
	g := newAdmissionGate(1, 4)
	calls := 0
	g.onQueue = func() { calls++ }
	if t0, err := g.enter(nil); err != nil || t0 != nil {
		t.Fatalf("first enter: %v %v", t0, err)
	}
	if busy, _ := g.queuedNow(); busy {
		t.Fatal("queued with a free predictor")
	}
	t1, _ := g.enter(nil)
	t2, _ := g.enter(nil)
	if calls != 1 {
		t.Fatalf("onQueue called %d times for one line, want 1", calls)
	}
	busy, shorter := g.queuedNow()
	if !busy {
		t.Fatal("not queued with two waiting")
	}
	g.release() // t1 takes the slot: the line shortens
	select {
	case <-shorter:
	default:
		t.Fatal("the line shortened without a signal")
	}
	<-t1.w.ready
	g.release()
	<-t2.w.ready
	if busy, _ := g.queuedNow(); busy {
		t.Fatal("still queued with nobody waiting")
	}
}
