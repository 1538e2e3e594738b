package main

import (
	"os"
	"testing"
)

// BenchmarkGoOverhead reports the Go-side overhead per 1-row prediction (server time
// minus predictor call, overhead.go) as a benchmark metric:
//
//	go test -run '^$' -bench GoOverhead ./scripts/bench
//
// It needs Debian's Python with pandas and scikit-learn and the golden regression model;
// it is skipped without them. b.N sets the number of sequential requests.
func BenchmarkGoOverhead(b *testing.B) {
	o := options{python: "/usr/bin/python3", model: "/work/shared/golden/models/regression"}
	if v := os.Getenv("DRUM_PYTHON"); v != "" {
		o.python = v
	}
	if _, err := os.Stat(o.model + "/model.pkl"); err != nil {
		b.Skip("no regression model:", err)
	}
	if _, err := os.Stat(o.python); err != nil {
		b.Skip("no Python:", err)
	}
	n := max(b.N, 100)
	b.ResetTimer()
	r, err := measureOverhead(o, n)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(us(r.Overhead.P50), "overhead-p50-µs")
	b.ReportMetric(us(r.Overhead.P99), "overhead-p99-µs")
	b.ReportMetric(us(r.Server.P50), "server-p50-µs")
	b.ReportMetric(us(r.Call.P50), "call-p50-µs")
	b.ReportMetric(us(r.ChannelPing.P50), "pipe-ping-p50-µs")
}
