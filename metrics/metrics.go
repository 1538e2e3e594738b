// Package metrics renders drum's Prometheus metrics from the master's server-wide
// aggregate (ipc.ServerStats): one view of the whole server whichever process answers,
// built at each scrape as constant metrics, with no multiprocess files.
package metrics

import (
	"net/http"
	"runtime"
	"sort"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/drum-go/drum/config"
	"github.com/drum-go/drum/ipc"
)

// Source returns the figures to render; it is called once per scrape.
type Source func() ipc.ServerStats

// WorkerStates are always reported, with 0 when no worker is in them.
// "unhealthy" is a ready worker whose predictor cannot be restarted.
var WorkerStates = []string{"booting", "ready", "unhealthy", "stopping"}

var (
	descReqDuration = prometheus.NewDesc("http_server_request_duration_seconds",
		"Duration of HTTP server requests.", []string{"http_route", "http_request_method", "http_response_status_code"}, nil)
	descActive = prometheus.NewDesc("http_server_active_requests",
		"Number of active HTTP server requests.", nil, nil)
	descQueue = prometheus.NewDesc("drum_queue_duration_seconds",
		"Time admitted predictions waited for a free predictor.", nil, nil)
	descPredict = prometheus.NewDesc("drum_predictor_duration_seconds",
		"Time the predictor took to answer a prediction.", nil, nil)
	descInFlight = prometheus.NewDesc("drum_requests_in_flight",
		"Predictions admitted and not finished.", nil, nil)
	descQueued = prometheus.NewDesc("drum_requests_queued",
		"Predictions waiting for a free predictor.", nil, nil)
	descAdmitted = prometheus.NewDesc("drum_requests_admitted_total",
		"Predictions that got a predictor.", nil, nil)
	descCompleted = prometheus.NewDesc("drum_requests_completed_total",
		"Admitted predictions that succeeded.", nil, nil)
	descFailed = prometheus.NewDesc("drum_requests_failed_total",
		"Admitted predictions that failed.", nil, nil)
	descRejected = prometheus.NewDesc("drum_requests_rejected_total",
		"Predictions answered without a predictor, by reason.", []string{"reason"}, nil)
	descTimeouts = prometheus.NewDesc("drum_request_timeouts_total",
		"Predictions answered 504 because their deadline passed.", nil, nil)
	descRestarts = prometheus.NewDesc("drum_predictor_restarts_total",
		"Predictors replaced after they died or hung.", nil, nil)
	descExits = prometheus.NewDesc("drum_worker_exits_total",
		"Worker processes that exited, by reason.", []string{"reason"}, nil)
	descWorkers = prometheus.NewDesc("drum_workers",
		"Worker processes by state.", []string{"state"}, nil)
	descBatchSize = prometheus.NewDesc("drum_batch_size",
		"Requests combined into one predictor call by adaptive batching (DRUM_BATCHING).", nil, nil)
	descBatchRows = prometheus.NewDesc("drum_batch_rows",
		"Rows of one batched predictor call (DRUM_BATCHING).", nil, nil)
	descBatchWait = prometheus.NewDesc("drum_batch_wait_seconds",
		"Time a batch held a free predictor waiting for requests on their way (DRUM_BATCHING).", nil, nil)
	descBatchFallbacks = prometheus.NewDesc("drum_batch_fallbacks_total",
		"Batched predictor calls that failed and were retried request by request.", nil, nil)
	descBuild = prometheus.NewDesc("drum_build_info",
		"drum's build: the DRUM version it is compatible with and the Go version.", []string{"drum_version", "goversion"}, nil)
)

// Collector is a prometheus.Collector over a Source.
type Collector struct{ src Source }

// NewCollector returns a Collector reading src at each scrape.
func NewCollector(src Source) *Collector { return &Collector{src: src} }

// Describe sends every descriptor.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descReqDuration, descActive, descQueue, descPredict,
		descInFlight, descQueued, descAdmitted, descCompleted, descFailed, descRejected,
		descTimeouts, descRestarts, descExits, descWorkers, descBatchSize, descBatchRows,
		descBatchWait, descBatchFallbacks, descBuild} {
		ch <- d
	}
}

// Collect renders the Source's figures.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.src()
	t := st.Total
	keys := make([]string, 0, len(t.Requests))
	for k := range t.Requests {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		route, method, status, ok := ipc.SplitRequestKey(k)
		if !ok {
			continue
		}
		ch <- histogram(descReqDuration, t.Requests[k], ipc.LatencyBounds, route, method, strconv.Itoa(status))
	}
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(descActive, t.Active)
	ch <- histogram(descQueue, t.QueueTime, ipc.LatencyBounds)
	ch <- histogram(descPredict, t.PredictTime, ipc.LatencyBounds)
	gauge(descInFlight, t.InFlight)
	gauge(descQueued, t.Queued)
	counter(descAdmitted, t.Admitted)
	counter(descCompleted, t.Completed)
	counter(descFailed, t.Failed)
	for _, r := range []string{ipc.RejectQueueFull, ipc.RejectQueueTimeout, ipc.RejectClientGone,
		ipc.RejectBodyTooLarge, ipc.RejectBodyTimeout, ipc.RejectNoPredictor} {
		counter(descRejected, t.Rejected[r], r)
	}
	for r, n := range t.Rejected { // reasons a newer worker may send
		switch r {
		case ipc.RejectQueueFull, ipc.RejectQueueTimeout, ipc.RejectClientGone,
			ipc.RejectBodyTooLarge, ipc.RejectBodyTimeout, ipc.RejectNoPredictor:
		default:
			counter(descRejected, n, r)
		}
	}
	counter(descTimeouts, t.TimedOut)
	counter(descRestarts, t.PredictorRestarts)
	ch <- histogram(descBatchSize, t.BatchRequests, ipc.SizeBounds)
	ch <- histogram(descBatchRows, t.BatchRows, ipc.SizeBounds)
	ch <- histogram(descBatchWait, t.BatchWait, ipc.LatencyBounds)
	counter(descBatchFallbacks, t.BatchFallbacks)
	for r, n := range st.WorkerExits {
		counter(descExits, int64(n), r)
	}
	states := map[string]int64{}
	for _, s := range WorkerStates {
		states[s] = 0
	}
	for _, w := range st.Workers {
		states[w.State]++
	}
	for s, n := range states {
		gauge(descWorkers, n, s)
	}
	gauge(descBuild, 1, config.Version, runtime.Version())
}

// histogram converts an ipc.Histogram (per-bucket counts over bounds) into a constant
// Prometheus histogram (cumulative buckets).
func histogram(d *prometheus.Desc, h ipc.Histogram, bounds []float64, labels ...string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(bounds))
	var cum int64
	for i, b := range bounds {
		if i < len(h.Counts) {
			cum += h.Counts[i]
		}
		buckets[b] = uint64(cum)
	}
	return prometheus.MustNewConstHistogram(d, uint64(h.Count), h.Sum, buckets, labels...)
}

// Registry returns a registry holding a Collector over src.
func Registry(src Source) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(src))
	return reg
}

// Handler serves the text exposition of a Collector over src.
func Handler(src Source) http.Handler {
	return promhttp.HandlerFor(Registry(src), promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
