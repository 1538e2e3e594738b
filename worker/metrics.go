package worker

import (
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/drum-go/drum/ipc"
	"github.com/drum-go/drum/metrics"
)

// Operability routes drum adds next to DRUM's (they are not DRUM routes): Prometheus
// /metrics and KServe V2's health aliases, all under URL_PREFIX like every other route.
var operabilityRoutes = []struct {
	path     string
	methods  []string
	strict   bool
	endpoint endpoint
}{
	{"/metrics", []string{"GET"}, true, epMetrics},
	{"/v2/health/live", []string{"GET"}, true, epPing},
	{"/v2/health/ready", []string{"GET"}, true, epHealth},
}

// epMetrics is GET /metrics.
const epMetrics endpoint = 1000

// routeUnmatched labels requests no route matched (404s), keeping the label set small.
const routeUnmatched = "unmatched"

// httpStats are the worker's HTTP figures: requests being answered and a duration
// histogram per (route, method, status).
type httpStats struct {
	active atomic.Int64
	mu     sync.Mutex
	byKey  map[string]*histogram
}

func (s *httpStats) observe(route, method string, status int, d time.Duration) {
	key := ipc.RequestKey(route, metricMethod(method), status)
	s.mu.Lock()
	h := s.byKey[key]
	if h == nil {
		if s.byKey == nil {
			s.byKey = map[string]*histogram{}
		}
		h = &histogram{}
		s.byKey[key] = h
	}
	s.mu.Unlock()
	h.observe(d)
}

// fill puts the HTTP figures into a counters snapshot.
func (s *httpStats) fill(c *ipc.Counters) {
	c.Active = s.active.Load()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.byKey) == 0 {
		return
	}
	c.Requests = make(map[string]ipc.Histogram, len(s.byKey))
	for k, h := range s.byKey {
		c.Requests[k] = h.snapshot()
	}
}

// metricMethod bounds the method label as OpenTelemetry does: unknown methods are _OTHER.
func metricMethod(m string) string {
	switch m = strings.ToUpper(m); m {
	case "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE":
		return m
	}
	return "_OTHER"
}

// serverStats is the whole server as this worker sees it: the master's latest
// aggregate, with this worker's live counters in place of its last heartbeat's when
// live is set; its own live counters alone before the first aggregate or when it is the
// only process.
func (s *statusSource) serverStats(live bool) ipc.ServerStats {
	view := s.server.Load()
	if view != nil && !s.single && !live {
		return view.stats
	}
	own := s.counters.snapshot()
	var st ipc.ServerStats
	if view != nil && !s.single {
		st.WorkerExits = view.stats.WorkerExits
		st.Departed = view.stats.Departed
		for _, w := range view.stats.Workers {
			if w.ID == s.workerID && w.Pid == os.Getpid() {
				w.Counters = own
			}
			st.Workers = append(st.Workers, w)
		}
	}
	if len(st.Workers) == 0 {
		st.Workers = []ipc.WorkerStats{{ID: s.workerID, Pid: os.Getpid(), State: "ready", Counters: own}}
	}
	st.Sum()
	return st
}

// metricsSnapshot is what /metrics reports: the master's aggregate as it is, without
// this worker's fresher figures. Every worker holds the same aggregate, so the counters
// never step back whichever worker answers successive scrapes (live figures would: one
// worker's own counts are ahead of the copy its siblings hold); the price is being up to
// one heartbeat plus one broadcast (about 3 s) behind.
func (s *statusSource) metricsSnapshot() ipc.ServerStats { return s.serverStats(false) }

// metricsHandler renders /metrics from metricsSnapshot.
func (s *statusSource) metricsHandler() http.Handler {
	s.metricsOnce.Do(func() {
		h := metrics.Handler(s.metricsSnapshot)
		s.metrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !s.awaitServerView(firstViewWait) {
				// Its own counts alone would look like a counter reset to Prometheus; a
				// failed scrape is only a gap.
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = w.Write([]byte("this worker has not yet received the server-wide figures from the master; retry\n"))
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	return s.metrics
}

// firstViewWait bounds how long /metrics on a worker that has just started waits for
// the master's first aggregate (it comes each second).
const firstViewWait = 2500 * time.Millisecond

// awaitServerView reports whether the master's aggregate is here (or not needed: a
// single process), waiting up to limit for the first one.
func (s *statusSource) awaitServerView(limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for s.server.Load() == nil && !s.single {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// metricsWriter records what a request's answer was, for /metrics and the access log.
type metricsWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *metricsWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *metricsWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// Flush keeps streaming answers (chat) streaming.
func (w *metricsWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (deadlines).
func (w *metricsWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
