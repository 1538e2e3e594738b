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

	// Adaptive batching (batcher.go): requests and rows per batched predictor call, the
	// time a batch held a free predictor for companions, batches retried one by one.
	batchRequests, batchRows sizeHistogram
	batchWait                histogram
	batchFallbacks           atomic.Int64
}

// rejectReasons index counters.rejected.
var rejectReasons = [...]string{
	ipc.RejectQueueFull, ipc.RejectQueueTimeout, ipc.RejectClientGone,
	ipc.RejectBodyTooLarge, ipc.RejectBodyTimeout, ipc.RejectNoPredictor,
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
		BatchRequests:     c.batchRequests.snapshot(),
		BatchRows:         c.batchRows.snapshot(),
		BatchWait:         c.batchWait.snapshot(),
		BatchFallbacks:    c.batchFallbacks.Load(),
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

// numSizeBuckets is len(ipc.SizeBounds) + 1; init checks it.
const numSizeBuckets = 14

func init() {
	if len(ipc.LatencyBounds)+1 != numBuckets {
		panic("worker: numBuckets does not match ipc.LatencyBounds")
	}
	if len(ipc.SizeBounds)+1 != numSizeBuckets {
		panic("worker: numSizeBuckets does not match ipc.SizeBounds")
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

// sizeHistogram is a lock-free ipc.Histogram of counts over ipc.SizeBounds.
type sizeHistogram struct {
	counts [numSizeBuckets]atomic.Int64
	count  atomic.Int64
	sum    atomic.Int64
}

func (h *sizeHistogram) observe(n int) {
	i := 0
	for i < len(ipc.SizeBounds) && float64(n) > ipc.SizeBounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.count.Add(1)
	h.sum.Add(int64(n))
}

func (h *sizeHistogram) snapshot() ipc.Histogram {
	out := ipc.Histogram{Count: h.count.Load(), Sum: float64(h.sum.Load())}
	if out.Count == 0 {
		return out
	}
	out.Counts = make([]int64, numSizeBuckets)
	for i := range out.Counts {
		out.Counts[i] = h.counts[i].Load()
	}
	return out
}
