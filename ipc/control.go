package ipc

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Control-channel payloads (frame meta, JSON). The master sends KindConfig first, then
// possibly KindStop; a worker sends KindReady once, KindHeartbeat periodically, and
// KindFailed before exiting when it could not start.

// Ready tells the master that a worker can serve.
type Ready struct {
	Pid          int    `json:"pid"`
	PredictorPid int    `json:"predictor_pid"`
	Predictor    string `json:"predictor,omitempty"` // built-in predictor name, if any
}

// Heartbeat is sent every heartbeat interval by a live worker.
type Heartbeat struct {
	Counters Counters `json:"counters"`
	// NoPredictor is set while the worker has no live predictor and restarting one has
	// failed FailedRestarts times in a row: why it answers predictions with 503. The
	// master reports the worker as unhealthy and, after a few failures, replaces it.
	NoPredictor    string `json:"no_predictor,omitempty"`
	FailedRestarts int    `json:"failed_restarts,omitempty"`
	// PredictorPids are the worker's live predictors: forked ones are the zygote's
	// children, not the worker's, so /stats/ cannot find them from the process tree.
	PredictorPids []int `json:"predictor_pids,omitempty"`
}

// Counters are a worker's request figures since it started (gauges: InFlight, Queued).
//
// Every prediction request ends in exactly one of Admitted (it got a predictor) or
// Rejected (answered without touching a predictor; by reason, see Reject*), or is still
// Queued, so at any time: requests = Admitted + Σ Rejected + Queued — leaving out the
// requests refused for their content (bad input: 4xx), which are not counted. An admitted request
// then ends as Completed or Failed; TimedOut counts the 504s (a deadline passed in the
// queue, which is also Rejected[RejectQueueTimeout], or in the predictor, also Failed).
type Counters struct {
	InFlight          int64            `json:"in_flight"` // admitted, not finished
	Queued            int64            `json:"queued"`    // waiting for a predictor
	Admitted          int64            `json:"admitted"`
	Rejected          map[string]int64 `json:"rejected,omitempty"` // by reason
	Completed         int64            `json:"completed"`
	Failed            int64            `json:"failed"`
	TimedOut          int64            `json:"timed_out"`
	PredictorRestarts int64            `json:"predictor_restarts"`
	Spooled           int64            `json:"spooled"` // bodies spooled to a temporary file
	// FastCSV counts CSV prediction requests the worker parsed itself; CSVFallback those
	// it left to pandas.read_csv in the predictor (see worker/table.ParseCSV).
	FastCSV     int64 `json:"fast_csv"`
	CSVFallback int64 `json:"csv_fallback"`
	// QueueTime is how long admitted requests waited for a predictor; PredictTime how
	// long the predictor took (seconds).
	QueueTime   Histogram `json:"queue_time"`
	PredictTime Histogram `json:"predict_time"`
	// Active counts the HTTP requests being answered (every route); Requests holds the
	// duration histogram of answered HTTP requests by RequestKey (route, method, status).
	Active   int64                `json:"active_requests,omitempty"`
	Requests map[string]Histogram `json:"requests,omitempty"`
	// Batching (DRUM_BATCHING): per predictor call of batched predictions, how many
	// requests and rows it combined (over SizeBounds) and how long it held a free
	// predictor waiting for more (BatchWait, seconds); BatchFallbacks counts combined
	// calls that failed and were retried request by request.
	BatchRequests  Histogram `json:"batch_requests"`
	BatchRows      Histogram `json:"batch_rows"`
	BatchWait      Histogram `json:"batch_wait"`
	BatchFallbacks int64     `json:"batch_fallbacks"`
}

// RequestKey joins a route template, a method and a status code into a Requests key.
func RequestKey(route, method string, status int) string {
	return route + " " + method + " " + strconv.Itoa(status)
}

// SplitRequestKey is RequestKey's inverse (ok is false for a malformed key).
func SplitRequestKey(key string) (route, method string, status int, ok bool) {
	i := strings.LastIndexByte(key, ' ')
	if i < 0 {
		return "", "", 0, false
	}
	st, err := strconv.Atoi(key[i+1:])
	if err != nil {
		return "", "", 0, false
	}
	j := strings.LastIndexByte(key[:i], ' ')
	if j < 0 {
		return "", "", 0, false
	}
	return key[:j], key[j+1 : i], st, true
}

// Reasons a request was rejected without a predictor.
const (
	RejectQueueFull    = "queue_full"     // overload: the worker's queue was full (503/429)
	RejectQueueTimeout = "queue_timeout"  // the request deadline passed while queued (504)
	RejectClientGone   = "client_gone"    // the client disconnected while queued
	RejectBodyTooLarge = "body_too_large" // 413
	RejectBodyTimeout  = "body_timeout"   // the body did not arrive in time (408)
	RejectNoPredictor  = "no_predictor"   // no predictor, and restarting it failed (503)
)

// RejectedTotal sums Rejected over every reason.
func (c *Counters) RejectedTotal() int64 {
	var n int64
	for _, v := range c.Rejected {
		n += v
	}
	return n
}

// Add sums o into c, for the master's server-wide view. c never shares o's map.
func (c *Counters) Add(o Counters) {
	c.InFlight += o.InFlight
	c.Queued += o.Queued
	c.Admitted += o.Admitted
	for k, v := range o.Rejected {
		if c.Rejected == nil {
			c.Rejected = map[string]int64{}
		}
		c.Rejected[k] += v
	}
	c.Completed += o.Completed
	c.Failed += o.Failed
	c.TimedOut += o.TimedOut
	c.PredictorRestarts += o.PredictorRestarts
	c.Spooled += o.Spooled
	c.FastCSV += o.FastCSV
	c.CSVFallback += o.CSVFallback
	c.QueueTime.Add(o.QueueTime)
	c.PredictTime.Add(o.PredictTime)
	c.Active += o.Active
	c.BatchRequests.Add(o.BatchRequests)
	c.BatchRows.Add(o.BatchRows)
	c.BatchWait.Add(o.BatchWait)
	c.BatchFallbacks += o.BatchFallbacks
	for k, v := range o.Requests {
		if c.Requests == nil {
			c.Requests = map[string]Histogram{}
		}
		h := c.Requests[k] // a copy; Add never writes into o's slices
		h.Add(v)
		c.Requests[k] = h
	}
}

// LatencyBounds are the upper bounds (seconds, inclusive) of every latency histogram's
// buckets; a last, unbounded bucket follows them.
var LatencyBounds = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
	10, 30, 60, 120, 300,
}

// SizeBounds are the upper bounds (inclusive) of the batch size histograms' buckets
// (requests or rows per batch); a last, unbounded bucket follows them.
var SizeBounds = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384}

// Histogram is a latency distribution over LatencyBounds (or, for the batch sizes, a
// size distribution over SizeBounds): Counts[i] counts observations
// <= LatencyBounds[i] (and above the previous bound); the last count is above every
// bound. Counts may be empty when nothing was observed.
type Histogram struct {
	Counts []int64 `json:"counts,omitempty"`
	Count  int64   `json:"count"`
	Sum    float64 `json:"sum"` // seconds
}

// Add sums o into h.
func (h *Histogram) Add(o Histogram) {
	if len(o.Counts) > len(h.Counts) {
		h.Counts = append(make([]int64, 0, len(o.Counts)), h.Counts...)
		h.Counts = h.Counts[:len(o.Counts)]
	}
	for i, v := range o.Counts {
		h.Counts[i] += v
	}
	h.Count += o.Count
	h.Sum += o.Sum
}

// Quantile estimates the q-quantile (0 < q <= 1) in seconds by linear interpolation
// inside its bucket, as Prometheus' histogram_quantile does; the unbounded bucket
// reports the last bound. It returns 0 for an empty histogram.
func (h *Histogram) Quantile(q float64) float64 {
	if h.Count == 0 || len(h.Counts) == 0 {
		return 0
	}
	rank := q * float64(h.Count)
	var seen float64
	for i, n := range h.Counts {
		if n == 0 {
			continue
		}
		if seen+float64(n) >= rank {
			if i >= len(LatencyBounds) {
				return LatencyBounds[len(LatencyBounds)-1]
			}
			lo := 0.0
			if i > 0 {
				lo = LatencyBounds[i-1]
			}
			return lo + (LatencyBounds[i]-lo)*(rank-seen)/float64(n)
		}
		seen += float64(n)
	}
	return LatencyBounds[len(LatencyBounds)-1]
}

// WorkerStats is one worker as the master sees it.
type WorkerStats struct {
	ID            int      `json:"id"`
	Pid           int      `json:"pid"`
	State         string   `json:"state"` // booting, ready, stopping
	Restarts      int      `json:"restarts"`
	LastHeartbeat int64    `json:"last_heartbeat_unix_ms"`
	Counters      Counters `json:"counters"`
	PredictorPids []int    `json:"predictor_pids,omitempty"` // from its last heartbeat
}

// ServerStats is the master's aggregate of every worker's last heartbeat, sent down to
// the workers so that whichever one answers /stats/ reports the whole server.
type ServerStats struct {
	Workers []WorkerStats `json:"workers"`
	// Departed holds the counters of the workers that have exited, as of their last
	// heartbeat, so that server-wide totals never step back when a worker is recycled,
	// replaced or scaled down (Prometheus reads a drop as a counter reset). Its gauges
	// (in flight, queued, active) are zero.
	Departed    Counters       `json:"departed"`
	Total       Counters       `json:"total"`        // Departed plus every worker's, see Sum
	WorkerExits map[string]int `json:"worker_exits"` // by reason: crash, signal, timeout, ...
}

// Sum sets Total to Departed plus the counters of every worker in Workers.
func (s *ServerStats) Sum() {
	var t Counters
	t.Add(s.Departed)
	for _, w := range s.Workers {
		t.Add(w.Counters)
	}
	s.Total = t
}

// Depart adds the last counters of a worker that has exited to Departed, without its
// gauges.
func (s *ServerStats) Depart(c Counters) {
	c.InFlight, c.Queued, c.Active = 0, 0, 0
	s.Departed.Add(c)
}

// Failed reports why a worker could not start (e.g. the model did not load).
type Failed struct {
	Error string `json:"error"`
}

// Stop asks a worker to stop accepting and drain its requests.
type Stop struct {
	Graceful bool  `json:"graceful"`
	TimeoutS int64 `json:"timeout_s"`
}

// Conn is one end of a control channel: a frame Reader and Writer on the same socket.
type Conn struct {
	*Reader
	*Writer
	c io.Closer
}

// NewConn wraps a bidirectional stream (one end of a socketpair).
func NewConn(rw io.ReadWriteCloser) *Conn {
	return &Conn{Reader: NewReader(rw), Writer: NewWriter(rw), c: rw}
}

// Close closes the underlying stream.
func (c *Conn) Close() error { return c.c.Close() }

// Send marshals v as the meta of a frame of the given kind.
func (c *Conn) Send(kind Kind, v any) error {
	meta, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("ipc: encode kind %d: %w", kind, err)
	}
	return c.Write(kind, 0, meta, nil)
}

// Decode unmarshals a frame's meta into v.
func Decode(f Frame, v any) error {
	if err := json.Unmarshal(f.Meta, v); err != nil {
		return fmt.Errorf("ipc: decode kind %d: %w", f.Kind, err)
	}
	return nil
}
