package worker

import (
	"sync/atomic"
	"time"

	"github.com/drum-go/drum/ipc"
)

// counters are the worker's request figures (ipc.Counters explains them). They are
// atomics so the heartbeat and /stats/ read them without locks, whatever the requests do.
type counters struct {
	inFlight, queued, admitted, completed, failed, timedOut, restarts, spooled atomic.Int64
	fastCSV, csvFallback                                                       atomic.Int64
	rejected                                                                   [len(rejectReasons)]atomic.Int64
	queueTime, predictTime                                                     histogram
	http                                                                       httpStats // metrics.go
}

// rejectReasons index counters.rejected.
var rejectReasons = [...]string{
	ipc.RejectQueueFull, ipc.RejectQueueTimeout, ipc.RejectClientGone,
	ipc.RejectBodyTooLarge, ipc.RejectBodyTimeout,
}

func (c *counters) reject(reason string) {
	for i, r := range rejectReasons {
		if r == reason {
			c.rejected[i].Add(1)
			return
		}
	}
	panic("worker: unknown reject reason " + reason)
}

func (c *counters) snapshot() ipc.Counters {
	s := ipc.Counters{
		InFlight:          c.inFlight.Load(),
		Queued:            c.queued.Load(),
		Admitted:          c.admitted.Load(),
		Completed:         c.completed.Load(),
		Failed:            c.failed.Load(),
		TimedOut:          c.timedOut.Load(),
		PredictorRestarts: c.restarts.Load(),
		Spooled:           c.spooled.Load(),
		FastCSV:           c.fastCSV.Load(),
		CSVFallback:       c.csvFallback.Load(),
		QueueTime:         c.queueTime.snapshot(),
		PredictTime:       c.predictTime.snapshot(),
	}
	c.http.fill(&s)
	for i, r := range rejectReasons {
		if n := c.rejected[i].Load(); n > 0 {
			if s.Rejected == nil {
				s.Rejected = map[string]int64{}
			}
			s.Rejected[r] = n
		}
	}
	return s
}

// numBuckets is len(ipc.LatencyBounds) + 1 (the unbounded bucket); init checks it.
const numBuckets = 21

func init() {
	if len(ipc.LatencyBounds)+1 != numBuckets {
		panic("worker: numBuckets does not match ipc.LatencyBounds")
	}
}

// histogram is a lock-free ipc.Histogram.
type histogram struct {
	counts   [numBuckets]atomic.Int64
	count    atomic.Int64
	sumNanos atomic.Int64
}

func (h *histogram) observe(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(ipc.LatencyBounds) && s > ipc.LatencyBounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.count.Add(1)
	h.sumNanos.Add(int64(d))
}

func (h *histogram) snapshot() ipc.Histogram {
	out := ipc.Histogram{Count: h.count.Load(), Sum: time.Duration(h.sumNanos.Load()).Seconds()}
	if out.Count == 0 {
		return out
	}
	out.Counts = make([]int64, numBuckets)
	for i := range out.Counts {
		out.Counts[i] = h.counts[i].Load()
	}
	return out
}
