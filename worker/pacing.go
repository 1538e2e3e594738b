package worker

import "time"

// Accept pacing. Workers share one listening socket and each accepts on its own, so
// the kernel hands a new connection to whichever worker is waiting in accept(2), busy
// or not: one worker could queue (and, past DRUM_WORKER_QUEUE_SIZE, turn away) requests
// while its sibling sat idle. A gunicorn sync worker avoids that by accepting only when
// free. A drum worker whose predictions are already waiting in line holds back from
// accept for up to acceptPause, until its line shortens, leaving new connections to a
// sibling with room. Past the pause it accepts anyway, so a server that is busy
// everywhere still answers promptly (with the 503 when the queue is full) rather than
// leaving connections in the kernel's backlog. A worker already waiting in accept(2)
// when its line forms is woken to pace (drainListener.wake, from the admission gate).
// A worker whose predictor could not be restarted (it answers predictions with 503)
// holds back the same way, so a healthy sibling takes the new connections.
const acceptPause = 50 * time.Millisecond

// paceAccept waits while queued reports a line, for at most pause; stop ends the wait
// early (a graceful stop must accept at once).
func paceAccept(queued func() (bool, <-chan struct{}), pause time.Duration, stop <-chan struct{}) {
	busy, shorter := queued()
	if !busy {
		return
	}
	limit := time.NewTimer(pause)
	defer limit.Stop()
	for busy {
		select {
		case <-shorter:
		case <-limit.C:
			return
		case <-stop:
			return
		}
		busy, shorter = queued()
	}
}

// holdBack is what the worker's listener paces on: predictions waiting in line (with a
// channel closed when the line shortens), or no predictor able to take a call (nil
// channel: only the pause ends the wait).
func (p *keeperPool) holdBack() (bool, <-chan struct{}) {
	if busy, shorter := p.gate.queuedNow(); busy {
		return true, shorter
	}
	return p.unavailable() != nil, nil
}
