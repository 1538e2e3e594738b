package worker

import (
	"errors"
	"net"
	"testing"
	"time"
)

// Connections the kernel completed before the stop are accepted by Drain, then Accept
// reports errDrained instead of blocking.
func TestDrainListenerAcceptsQueuedThenStops(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	const queued = 3
	var clients []net.Conn
	for i := 0; i < queued; i++ {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	l := newDrainListener(inner)
	l.Drain(200*time.Millisecond, 5*time.Second)
	for i := 0; i < queued; i++ {
		c, err := l.Accept()
		if err != nil {
			t.Fatalf("accept %d of the queued connections: %v", i+1, err)
		}
		c.Close()
	}
	if _, err := l.Accept(); !errors.Is(err, errDrained) {
		t.Fatalf("after the queue emptied: %v, want errDrained", err)
	}
}

// A blocked Accept wakes up when draining starts on an empty queue.
func TestDrainListenerWakesBlockedAccept(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	l := newDrainListener(inner)
	done := make(chan error, 1)
	go func() { _, err := l.Accept(); done <- err }()
	time.Sleep(50 * time.Millisecond)
	l.Drain(20*time.Millisecond, time.Second)
	select {
	case err := <-done:
		if !errors.Is(err, errDrained) {
			t.Fatalf("got %v, want errDrained", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("blocked Accept did not wake up on Drain")
	}
}

// Draining gives up after max even while connections keep arriving.
func TestDrainListenerBounded(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	l := newDrainListener(inner)
	l.Drain(time.Second, 0)
	if _, err := l.Accept(); !errors.Is(err, errDrained) {
		t.Fatalf("past max: %v, want errDrained", err)
	}
}
