package metrics

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/drum-go/drum/ipc"
)

func hist(counts map[int]int64, sum float64) ipc.Histogram {
	h := ipc.Histogram{Counts: make([]int64, len(ipc.LatencyBounds)+1), Sum: sum}
	for i, n := range counts {
		h.Counts[i] = n
		h.Count += n
	}
	return h
}

func sample() ipc.ServerStats {
	w1 := ipc.Counters{Admitted: 3, Completed: 3, InFlight: 1, Active: 1,
		Rejected:    map[string]int64{ipc.RejectQueueFull: 2},
		QueueTime:   hist(map[int]int64{0: 3}, 0.0002),
		PredictTime: hist(map[int]int64{5: 2, 20: 1}, 400),
		Requests: map[string]ipc.Histogram{
			ipc.RequestKey("/predict/", "POST", 200): hist(map[int]int64{5: 3}, 0.01),
			ipc.RequestKey("/predict/", "POST", 503): hist(map[int]int64{0: 2}, 0.0001),
		}}
	// Worker 1 batched: calls of 1, 3 and 5 requests (1, 3 and 40 rows).
	w1.BatchRequests = ipc.Histogram{Counts: []int64{1, 0, 1, 1}, Count: 3, Sum: 9}
	w1.BatchRows = ipc.Histogram{Counts: []int64{1, 0, 1, 0, 0, 0, 1}, Count: 3, Sum: 44}
	w1.BatchWait = hist(map[int]int64{0: 2, 4: 1}, 0.002)
	w1.BatchFallbacks = 1
	w2 := ipc.Counters{Admitted: 4, Completed: 3, Failed: 1, TimedOut: 1, PredictorRestarts: 1,
		QueueTime:   hist(map[int]int64{1: 4}, 0.001),
		PredictTime: hist(map[int]int64{6: 4}, 0.02),
		Requests: map[string]ipc.Histogram{
			ipc.RequestKey("/predict/", "POST", 200): hist(map[int]int64{6: 3}, 0.02),
			ipc.RequestKey("/predict/", "POST", 504): hist(map[int]int64{9: 1}, 0.1),
		}}
	st := ipc.ServerStats{
		Workers: []ipc.WorkerStats{
			{ID: 1, Pid: 10, State: "ready", Counters: w1},
			{ID: 2, Pid: 11, State: "booting", Counters: w2},
		},
		WorkerExits: map[string]int{"crash": 2, "recycle": 1},
	}
	for _, w := range st.Workers {
		st.Total.Add(w.Counters)
	}
	return st
}

func TestRender(t *testing.T) {
	st := sample()
	rec := httptest.NewRecorder()
	Handler(func() ipc.ServerStats { return st }).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`http_server_request_duration_seconds_count{http_request_method="POST",http_response_status_code="200",http_route="/predict/"} 6`,
		`http_server_request_duration_seconds_bucket{http_request_method="POST",http_response_status_code="200",http_route="/predict/",le="+Inf"} 6`,
		`http_server_request_duration_seconds_bucket{http_request_method="POST",http_response_status_code="200",http_route="/predict/",le="0.005"} 3`,
		`http_server_request_duration_seconds_count{http_request_method="POST",http_response_status_code="504",http_route="/predict/"} 1`,
		`http_server_active_requests 1`,
		`drum_predictor_duration_seconds_count 7`,
		`drum_predictor_duration_seconds_bucket{le="300"} 6`,
		`drum_predictor_duration_seconds_bucket{le="+Inf"} 7`,
		`drum_queue_duration_seconds_count 7`,
		`drum_requests_admitted_total 7`,
		`drum_requests_completed_total 6`,
		`drum_requests_failed_total 1`,
		`drum_requests_in_flight 1`,
		`drum_requests_queued 0`,
		`drum_requests_rejected_total{reason="queue_full"} 2`,
		`drum_requests_rejected_total{reason="body_too_large"} 0`,
		`drum_request_timeouts_total 1`,
		`drum_predictor_restarts_total 1`,
		`drum_worker_exits_total{reason="crash"} 2`,
		`drum_workers{state="ready"} 1`,
		`drum_workers{state="booting"} 1`,
		`drum_workers{state="stopping"} 0`,
		`drum_batch_size_count 3`,
		`drum_batch_size_sum 9`,
		`drum_batch_size_bucket{le="1"} 1`,
		`drum_batch_size_bucket{le="2"} 1`,
		`drum_batch_size_bucket{le="4"} 2`,
		`drum_batch_size_bucket{le="8"} 3`,
		`drum_batch_rows_bucket{le="32"} 2`,
		`drum_batch_rows_bucket{le="64"} 3`,
		`drum_batch_rows_sum 44`,
		`drum_batch_wait_seconds_count 3`,
		`drum_batch_wait_seconds_bucket{le="0.0001"} 2`,
		`drum_batch_fallbacks_total 1`,
		`drum_build_info{drum_version="`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %q in:\n%s", want, body)
		}
	}
}

func TestLint(t *testing.T) {
	st := sample()
	problems, err := testutil.GatherAndLint(Registry(func() ipc.ServerStats { return st }))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestEmpty(t *testing.T) {
	n, err := testutil.GatherAndCount(Registry(func() ipc.ServerStats { return ipc.ServerStats{} }))
	if err != nil || n == 0 {
		t.Fatalf("empty stats: %d series, %v", n, err)
	}
}

// Counters from a worker that predates Active and Requests still decode and add up.
func TestCountersCompat(t *testing.T) {
	var old ipc.Counters
	if err := json.Unmarshal([]byte(`{"in_flight":1,"admitted":2,"completed":2,"queue_time":{"count":0,"sum":0}}`), &old); err != nil {
		t.Fatal(err)
	}
	st := sample()
	before := st.Total.Requests[ipc.RequestKey("/predict/", "POST", 200)].Count
	st.Total.Add(old)
	if st.Total.Admitted != 9 || st.Total.Requests[ipc.RequestKey("/predict/", "POST", 200)].Count != before {
		t.Fatalf("total after adding an old worker: %+v", st.Total)
	}
	// Add never writes into its argument's histograms.
	if st.Workers[0].Counters.Requests[ipc.RequestKey("/predict/", "POST", 200)].Count != 3 {
		t.Fatal("Add changed a worker's histogram")
	}
	r, m, s, ok := ipc.SplitRequestKey(ipc.RequestKey("/a b/", "GET", 404))
	if !ok || r != "/a b/" || m != "GET" || s != 404 {
		t.Fatalf("SplitRequestKey: %q %q %d %v", r, m, s, ok)
	}
}
