package worker

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drum-go/drum/config"
	"github.com/hashicorp/go-hclog"
)

func doReq(t *testing.T, method, url string, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, resp.Header, b.String()
}

func TestMetricsAndHealthAliases(t *testing.T) {
	f := &fakeFactory{fn: constResult(1)}
	cfg := regressionCfg
	cfg.URLPrefix = "/model"
	w := startWorker(t, cfg, f, nil, func(o *Options) { o.URLPrefix = "/model" })
	base := "http://" + w.addr + "/model"
	waitFor(t, "ready", func() bool {
		st, _, _ := doReq(t, "GET", base+"/v2/health/ready", nil)
		return st == 200
	})
	if st, _, body := doReq(t, "GET", base+"/v2/health/live", nil); st != 200 || !strings.Contains(body, `"OK"`) {
		t.Fatalf("live: %d %s", st, body)
	}
	for range 3 {
		if st, body, _ := post(t, w.addr, "/model/predict/", "a\n1\n"); st != 200 {
			t.Fatalf("predict: %d %s", st, body)
		}
	}
	if st, _, _ := doReq(t, "GET", "http://"+w.addr+"/metrics", nil); st != 404 {
		t.Fatalf("/metrics outside URL_PREFIX: %d, want 404", st)
	}
	st, hdr, body := doReq(t, "GET", base+"/metrics", nil)
	if st != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
		t.Fatalf("metrics: %d %s", st, hdr.Get("Content-Type"))
	}
	for _, want := range []string{
		`http_server_request_duration_seconds_count{http_request_method="POST",http_response_status_code="200",http_route="/model/predict/"} 3`,
		`drum_requests_completed_total 3`,
		`drum_predictor_duration_seconds_count 3`,
		`drum_queue_duration_seconds_count 3`,
		`http_server_active_requests 1`, // this scrape
		`drum_requests_rejected_total{reason="queue_full"} 0`,
		`drum_workers{state="ready"} 1`,
		`drum_build_info{`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
}

func TestAuthHeadersCORS(t *testing.T) {
	f := &fakeFactory{fn: constResult(1)}
	cfg := regressionCfg
	cfg.Operability = config.Operability{AuthHeader: "X-Api-Key", AuthToken: "s3cret-tok",
		ExtraHeaders: map[string]string{"X-Team": "ml"}, CORSOrigins: []string{"https://app.example"}, AccessLog: true}
	var logs bytes.Buffer
	logw := &syncWriter{w: &logs}
	w := startWorker(t, cfg, f, nil, func(o *Options) {
		o.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: logw})
	})
	base := "http://" + w.addr
	waitFor(t, "ready", func() bool { st, _, _ := doReq(t, "GET", base+"/health/", nil); return st == 200 })
	for _, p := range []string{"/", "/ping/", "/health/", "/v2/health/live", "/v2/health/ready"} {
		if st, hdr, _ := doReq(t, "GET", base+p, nil); st != 200 || hdr.Get("X-Team") != "ml" {
			t.Errorf("GET %s without token: %d (X-Team %q), want 200", p, st, hdr.Get("X-Team"))
		}
	}
	for _, c := range []struct {
		hdr  map[string]string
		want int
	}{
		{nil, 401},
		{map[string]string{"X-Api-Key": "wrong"}, 401},
		{map[string]string{"X-Api-Key": "s3cret-tok"}, 200},
	} {
		st, hdr, body := doReq(t, "GET", base+"/info/", c.hdr)
		if st != c.want {
			t.Errorf("/info/ with %v: %d, want %d", c.hdr, st, c.want)
		}
		if st == 401 && (!strings.HasPrefix(hdr.Get("Content-Type"), "application/json") || !strings.Contains(body, `"message"`)) {
			t.Errorf("401 answer: %s %s", hdr.Get("Content-Type"), body)
		}
		if strings.Contains(body, "s3cret-tok") {
			t.Errorf("the token leaked into an answer: %s", body)
		}
	}
	if st, _, _ := doReq(t, "GET", base+"/metrics", nil); st != 401 {
		t.Errorf("/metrics without token: %d, want 401", st)
	}
	// CORS preflight: answered without a token; an allowed origin is echoed.
	st, hdr, _ := doReq(t, "OPTIONS", base+"/predict/", map[string]string{
		"Origin": "https://app.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-api-key"})
	if st != 204 || hdr.Get("Access-Control-Allow-Origin") != "https://app.example" || hdr.Get("Access-Control-Allow-Headers") != "x-api-key" {
		t.Errorf("preflight: %d %v", st, hdr)
	}
	if _, hdr, _ := doReq(t, "GET", base+"/ping/", map[string]string{"Origin": "https://evil.example"}); hdr.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("a foreign origin was allowed: %v", hdr)
	}
	time.Sleep(50 * time.Millisecond)
	logw.mu.Lock()
	out := logs.String()
	logw.mu.Unlock()
	if strings.Contains(out, "s3cret-tok") {
		t.Errorf("the token leaked into the log:\n%s", out)
	}
	if !strings.Contains(out, "method=GET path=/info/ status=401") || !strings.Contains(out, "duration_ms=") {
		t.Errorf("no access log line:\n%s", out)
	}
}

func TestAccessLogOff(t *testing.T) {
	f := &fakeFactory{fn: constResult(1)}
	var logs bytes.Buffer
	logw := &syncWriter{w: &logs}
	w := startWorker(t, regressionCfg, f, nil, func(o *Options) {
		o.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: logw})
	})
	waitFor(t, "ready", func() bool { st, _ := get(t, w.addr, "/health/"); return st == 200 })
	get(t, w.addr, "/ping/")
	logw.mu.Lock()
	defer logw.mu.Unlock()
	if strings.Contains(logs.String(), "path=/ping/ status=200") {
		t.Errorf("access log with DRUM_ACCESS_LOG=false:\n%s", logs.String())
	}
}

// syncWriter serialises writes into a buffer read by the test.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func errorStatus() *statusSource {
	return newStatusSource(config.Config{}, 1, true, &counters{}, 1, 0)
}

// TestErrorServerAuthAndMetrics: with --with-error-server, a model that fails to load
// keeps the serving worker's token check, static headers and /metrics.
func TestErrorServerAuthAndMetrics(t *testing.T) {
	g := newGuard(config.Operability{AuthHeader: "X-Api-Key", AuthToken: "s3cret-tok",
		ExtraHeaders: map[string]string{"X-Team": "ml"}})
	h := newErrorHandler("", errors.New("boom"), g, errorStatus())
	do := func(method, path string, hdr map[string]string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	token := map[string]string{"X-Api-Key": "s3cret-tok"}
	for _, c := range []struct {
		method, path string
		hdr          map[string]string
		want         int
	}{
		{"GET", "/ping/", nil, 513}, // open, as in serving mode; 513 is the error server's answer
		{"GET", "/health/", nil, 513},
		{"GET", "/v2/health/live", nil, 513},
		{"POST", "/predict/", nil, 401},
		{"POST", "/predict/", map[string]string{"X-Api-Key": "wrong"}, 401},
		{"POST", "/predict/", token, 513},
		{"GET", "/metrics", nil, 401},
		{"GET", "/metrics", token, 200},
	} {
		rec := do(c.method, c.path, c.hdr)
		if rec.Code != c.want || rec.Header().Get("X-Team") != "ml" {
			t.Errorf("%s %s %v: %d (X-Team %q), want %d", c.method, c.path, c.hdr, rec.Code, rec.Header().Get("X-Team"), c.want)
		}
		if rec.Code == 401 && !strings.Contains(rec.Body.String(), `"message"`) {
			t.Errorf("401 body %q", rec.Body.String())
		}
		if strings.Contains(rec.Body.String(), "s3cret-tok") {
			t.Errorf("the token leaked: %s", rec.Body.String())
		}
	}
	body := do("GET", "/metrics", token).Body.String()
	for _, want := range []string{
		`http_server_request_duration_seconds_count{http_request_method="POST",http_response_status_code="513",http_route="/predict/"} 1`,
		`http_server_request_duration_seconds_count{http_request_method="POST",http_response_status_code="401",http_route="/predict/"} 2`,
		`drum_build_info{`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("error server /metrics lacks %q:\n%s", want, body)
		}
	}
}
