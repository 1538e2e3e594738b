package ipc

import (
	"math"
	"testing"
)

func TestCountersAdd(t *testing.T) {
	a := Counters{Admitted: 2, Rejected: map[string]int64{RejectQueueFull: 1}, QueueTime: Histogram{Counts: []int64{1, 1}, Count: 2, Sum: 0.5}}
	b := Counters{Admitted: 3, InFlight: 1, Queued: 2, Completed: 1, Failed: 1, TimedOut: 1, PredictorRestarts: 1, Spooled: 1,
		Rejected:    map[string]int64{RejectQueueFull: 2, RejectBodyTooLarge: 1},
		QueueTime:   Histogram{Counts: []int64{0, 1, 0, 4}, Count: 5, Sum: 1},
		PredictTime: Histogram{Counts: []int64{3}, Count: 3, Sum: 0.25}}
	var total Counters
	total.Add(a)
	total.Add(b)
	if total.Admitted != 5 || total.InFlight != 1 || total.Queued != 2 || total.Completed != 1 || total.Failed != 1 ||
		total.TimedOut != 1 || total.PredictorRestarts != 1 || total.Spooled != 1 {
		t.Fatalf("scalars: %+v", total)
	}
	if total.Rejected[RejectQueueFull] != 3 || total.Rejected[RejectBodyTooLarge] != 1 || total.RejectedTotal() != 4 {
		t.Fatalf("rejected: %v", total.Rejected)
	}
	if q := total.QueueTime; q.Count != 7 || q.Sum != 1.5 || len(q.Counts) != 4 || q.Counts[0] != 1 || q.Counts[1] != 2 || q.Counts[3] != 4 {
		t.Fatalf("queue histogram: %+v", q)
	}
	if p := total.PredictTime; p.Count != 3 || p.Counts[0] != 3 {
		t.Fatalf("predict histogram: %+v", p)
	}
	// The sum never aliases an addend's map.
	total.Rejected[RejectQueueFull] = 100
	if a.Rejected[RejectQueueFull] != 1 || b.Rejected[RejectQueueFull] != 2 {
		t.Fatal("Add shared a map with its argument")
	}
}

func TestHistogramQuantile(t *testing.T) {
	counts := make([]int64, len(LatencyBounds)+1)
	idx := func(bound float64) int {
		for i, b := range LatencyBounds {
			if b == bound {
				return i
			}
		}
		t.Fatalf("no bound %v", bound)
		return 0
	}
	counts[idx(0.25)] = 90 // (0.1, 0.25]
	counts[idx(1)] = 10    // (0.5, 1]
	h := Histogram{Counts: counts, Count: 100}
	if q := h.Quantile(0.5); math.Abs(q-(0.1+0.15*50/90)) > 1e-9 {
		t.Errorf("p50 = %v", q)
	}
	if q := h.Quantile(0.99); math.Abs(q-(0.5+0.5*9/10)) > 1e-9 {
		t.Errorf("p99 = %v", q)
	}
	h.Counts[len(h.Counts)-1], h.Count = 1000, 1100
	if q := h.Quantile(0.99); q != LatencyBounds[len(LatencyBounds)-1] {
		t.Errorf("p99 in the unbounded bucket = %v", q)
	}
	if q := (&Histogram{}).Quantile(0.5); q != 0 {
		t.Errorf("empty: %v", q)
	}
}
