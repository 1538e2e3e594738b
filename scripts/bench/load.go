package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// payload is one request shape: a path, a body and its Content-Type.
type payload struct {
	path        string
	contentType string
	body        []byte
	method      string
}

// result is one load run's figures.
type result struct {
	Requests int64         `json:"requests"` // answered (any status) or failed, in the measured window
	Errors   int64         `json:"errors"`   // transport errors and non-200 answers
	Status   map[int]int64 `json:"status,omitempty"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	RPS      float64       `json:"rps"`
	P50      time.Duration `json:"p50_ns"`
	P95      time.Duration `json:"p95_ns"`
	P99      time.Duration `json:"p99_ns"`
	Max      time.Duration `json:"max_ns"`
}

// newClient is a keep-alive client with room for conc idle connections to one host.
func newClient(conc int) *http.Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        conc * 2,
		MaxIdleConnsPerHost: conc * 2,
		MaxConnsPerHost:     0,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// do sends one request and reads the whole answer; it returns the status (0 on a
// transport error).
func do(ctx context.Context, c *http.Client, base string, p payload) int {
	method := p.method
	if method == "" {
		method = http.MethodPost
	}
	var body io.Reader
	if p.body != nil {
		body = bytes.NewReader(p.body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+p.path, body)
	if err != nil {
		return 0
	}
	if p.contentType != "" {
		req.Header.Set("Content-Type", p.contentType)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// closedLoop runs conc clients that each send the next request when the previous one
// is answered: a warm-up, then a measured window bounded by dur and maxReq.
func closedLoop(base string, p payload, conc int, warm, dur time.Duration, maxReq int64) result {
	c := newClient(conc)
	defer c.CloseIdleConnections()
	run := func(d time.Duration, limit int64, record bool) result {
		ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
		defer cancel()
		deadline := time.Now().Add(d)
		var issued atomic.Int64
		lat := make([][]time.Duration, conc)
		status := make([]map[int]int64, conc)
		var wg sync.WaitGroup
		start := time.Now()
		for i := 0; i < conc; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				status[i] = map[int]int64{}
				for time.Now().Before(deadline) && issued.Add(1) <= limit {
					t0 := time.Now()
					st := do(ctx, c, base, p)
					if record {
						lat[i] = append(lat[i], time.Since(t0))
						status[i][st]++
					}
				}
			}(i)
		}
		wg.Wait()
		if !record {
			return result{}
		}
		return summarize(lat, status, time.Since(start))
	}
	if warm > 0 {
		run(warm, maxReq, false)
	}
	return run(dur, maxReq, true)
}

// openLoop sends requests at a fixed rate for dur, whatever the answers do, and measures
// each latency from the moment the request was scheduled (so a stalled server is
// charged for the requests it delayed: no coordinated omission). At most maxInFlight
// requests run at once; later ones wait, and that wait counts in their latency.
func openLoop(base string, p payload, rate float64, dur time.Duration, maxInFlight int) result {
	c := newClient(maxInFlight)
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), dur+30*time.Second)
	defer cancel()
	n := int(rate * dur.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	lat := make([]time.Duration, n)
	codes := make([]int, n)
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < n; i++ {
		sched := start.Add(time.Duration(i) * interval)
		if d := time.Until(sched); d > 0 {
			time.Sleep(d)
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(i int, sched time.Time) {
			defer wg.Done()
			defer func() { <-sem }()
			codes[i] = do(ctx, c, base, p)
			lat[i] = time.Since(sched)
		}(i, sched)
	}
	wg.Wait()
	st := map[int]int64{}
	for _, s := range codes {
		st[s]++
	}
	return summarize([][]time.Duration{lat}, []map[int]int64{st}, time.Since(start))
}

func summarize(lat [][]time.Duration, status []map[int]int64, elapsed time.Duration) result {
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	r := result{Requests: int64(len(all)), Elapsed: elapsed, Status: map[int]int64{}}
	for _, m := range status {
		for k, v := range m {
			r.Status[k] += v
			if k != http.StatusOK {
				r.Errors += v
			}
		}
	}
	if len(all) == 0 {
		return r
	}
	r.RPS = float64(r.Requests-r.Errors) / elapsed.Seconds()
	r.P50, r.P95, r.P99 = quantile(all, 0.50), quantile(all, 0.95), quantile(all, 0.99)
	r.Max = all[len(all)-1]
	return r
}

// quantile of sorted durations (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}
