package worker

import (
	"bufio"
	"bytes"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/drum-go/drum/config"
	"github.com/drum-go/drum/internal/proctree"
	"github.com/drum-go/drum/ipc"
)

// GET /stats/: DRUM's shape (spec §10.5: drum_info, mem_info, time_info) for the whole
// server — the master, every worker and every predictor — plus a "drum" section with
// the server-wide request counters and each worker's figures. The master sends every
// worker its aggregate each second (ipc.KindStats); the answering worker puts its own
// live counters in place of the copy it sent with its last heartbeat. In single-process
// mode (no master) it reports this process and its predictors.

// statusSource is what /info/ and /stats/ report.
type statusSource struct {
	cfg      config.Config
	workerID int
	single   bool // no master
	counters *counters
	// concurrency and queueSize are the worker's effective admission figures.
	concurrency, queueSize int

	server atomic.Pointer[serverView] // the master's latest figures

	procRoot   string // "/proc"
	cgroupRoot string // "/sys/fs/cgroup"

	mu      sync.Mutex
	cpuPrev map[int]cpuSample

	metricsOnce sync.Once    // metrics.go
	metrics     http.Handler // GET /metrics
}

type serverView struct {
	stats ipc.ServerStats
	at    time.Time
}

type cpuSample struct {
	ticks int64
	at    time.Time
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

func newStatusSource(cfg config.Config, workerID int, single bool, c *counters, concurrency, queueSize int) *statusSource {
	return &statusSource{cfg: cfg, workerID: workerID, single: single, counters: c,
		concurrency: concurrency, queueSize: queueSize,
		procRoot: "/proc", cgroupRoot: "/sys/fs/cgroup", cpuPrev: map[int]cpuSample{}}
}

// setServerStats stores the master's latest server-wide figures.
func (s *statusSource) setServerStats(st ipc.ServerStats) {
	s.server.Store(&serverView{stats: st, at: time.Now()})
}

func (h *handler) counters() *counters { return h.keeper.counters }

func (h *handler) stats(ex *exchange) {
	ex.send(200, contentTypeJSON, h.status.statsJSON())
}

// statsJSON renders /stats/. Every source may be missing: a figure that cannot be read
// is null, never an error.
func (s *statusSource) statsJSON() (out []byte) {
	defer func() {
		if r := recover(); r != nil {
			out = []byte(`{"drum":null,"drum_info":[],"mem_info":{},"time_info":{}}` + "\n")
		}
	}()
	st := s.serverStats(true) // metrics.go: the master's aggregate with this worker's live counters
	workers, exits, total := st.Workers, st.WorkerExits, st.Total

	// Processes: the master, each worker, and their children (the predictors).
	children := proctree.Children(s.procRoot)
	var pids []int
	if !s.single {
		pids = append(pids, os.Getppid())
	}
	perWorker := make([]any, 0, len(workers))
	for _, w := range workers {
		// Spawned predictors are the worker's children; forked ones the zygote's, known
		// from the worker's heartbeat (with their own children).
		preds := proctree.Descendants(children, w.Pid)
		for _, p := range w.PredictorPids {
			if !slices.Contains(preds, p) {
				preds = append(append(preds, p), proctree.Descendants(children, p)...)
			}
		}
		pids = append(pids, w.Pid)
		pids = append(pids, preds...)
		m := toJSONValue(w).(map[string]any)
		m["predictor_pids"] = intsToAny(preds)
		perWorker = append(perWorker, m)
	}
	drumInfo := make([]any, 0, len(pids))
	rss := 0.0
	for _, pid := range pids {
		if e, mem, ok := s.procInfo(pid); ok {
			drumInfo = append(drumInfo, e)
			rss += mem
		}
	}

	memInfo := s.memInfo()
	memInfo["drum_rss"] = rss

	drum := map[string]any{
		"scope":                 map[bool]string{true: "process", false: "server"}[s.single],
		"server_type":           s.cfg.ServerTypeName(),
		"mode":                  s.cfg.Mode(),
		"workers":               len(workers),
		"predictors_per_worker": s.concurrency,
		"queue_size":            s.queueSize,
		"batching":              s.batchingView(),
		"total":                 toJSONValue(total),
		"latency_s": map[string]any{
			"queue":   latencySummary(total.QueueTime),
			"predict": latencySummary(total.PredictTime),
		},
		"per_worker":    perWorker,
		"worker_exits":  toJSONValue(exits),
		"figures_age_s": nil,
	}
	if exits == nil {
		drum["worker_exits"] = map[string]any{}
	}
	if view := s.server.Load(); view != nil && !s.single {
		drum["figures_age_s"] = round6(time.Since(view.at).Seconds())
	}
	nulls := map[string]any{"avg": nil, "max": nil, "min": nil, "total": nil}
	doc := map[string]any{
		"drum_info": drumInfo,
		"mem_info":  memInfo,
		"time_info": map[string]any{"run_predictor_total": nulls},
		"drum":      drum,
	}
	return append(appendJSONify(nil, doc), '\n')
}

// batchingView is the batching settings (DRUM_BATCHING), or false when it is off.
func (s *statusSource) batchingView() any {
	b := s.cfg.Batching
	if !b.Batching || !config.BatchesTarget(s.cfg.TargetType) {
		return false
	}
	return map[string]any{
		"max_rows":    firstPositive(b.BatchMaxRows, config.DefaultBatchMaxRows),
		"max_wait_ms": float64(b.BatchMaxWait) / float64(time.Millisecond),
	}
}

func latencySummary(h ipc.Histogram) map[string]any {
	if h.Count == 0 {
		return map[string]any{"count": 0, "mean": nil, "p50": nil, "p90": nil, "p99": nil}
	}
	return map[string]any{
		"count": h.Count,
		"mean":  round6(h.Sum / float64(h.Count)),
		"p50":   round6(h.Quantile(0.5)),
		"p90":   round6(h.Quantile(0.9)),
		"p99":   round6(h.Quantile(0.99)),
	}
}

func round6(v float64) float64 { return math.Round(v*1e6) / 1e6 }

func intsToAny(v []int) []any {
	out := make([]any, len(v))
	for i, x := range v {
		out[i] = x
	}
	return out
}

// procInfo is one drum_info entry: pid, argv, RSS in MB, CPU percent since the previous
// /stats/ call (0.0 the first time), as psutil reports them.
func (s *statusSource) procInfo(pid int) (map[string]any, float64, bool) {
	stat, err := os.ReadFile(filepath.Join(s.procRoot, strconv.Itoa(pid), "stat"))
	if err != nil {
		return nil, 0, false
	}
	f := proctree.StatFields(stat)
	if len(f) < 22 {
		return nil, 0, false
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	rssPages, _ := strconv.ParseInt(f[21], 10, 64)
	mem := float64(rssPages*int64(os.Getpagesize())) / 1024 / 1024

	var cmdline []string
	if b, err := os.ReadFile(filepath.Join(s.procRoot, strconv.Itoa(pid), "cmdline")); err == nil {
		for _, a := range strings.Split(strings.TrimRight(string(b), "\x00"), "\x00") {
			cmdline = append(cmdline, a)
		}
	}
	if cmdline == nil {
		cmdline = []string{}
	}

	now := time.Now()
	ticks := utime + stime
	cpu := 0.0
	s.mu.Lock()
	if prev, ok := s.cpuPrev[pid]; ok {
		if dt := now.Sub(prev.at).Seconds(); dt > 0 && ticks >= prev.ticks {
			cpu = math.Round(float64(ticks-prev.ticks)/clockTicks/dt*1000) / 10
		}
	}
	s.cpuPrev[pid] = cpuSample{ticks: ticks, at: now}
	if len(s.cpuPrev) > 4096 { // forget processes long gone
		clear(s.cpuPrev)
	}
	s.mu.Unlock()
	return map[string]any{"pid": pid, "cmdline": cmdline, "mem": mem, "cpu_percent": cpu}, mem, true
}

// memInfo is DRUM's mem_info (MB): the host's total, available and free memory from
// /proc/meminfo and, when the server runs in a memory cgroup (v2 or v1), its limit,
// usage and peak; with a limit, avail and free are what is left of it, as in DRUM.
func (s *statusSource) memInfo() map[string]any {
	m := map[string]any{
		"total": nil, "avail": nil, "free": nil,
		"container_limit": nil, "container_used": nil, "container_max_used": nil,
	}
	if b, err := os.ReadFile(filepath.Join(s.procRoot, "meminfo")); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			name, rest, ok := strings.Cut(sc.Text(), ":")
			if !ok {
				continue
			}
			f := strings.Fields(rest)
			if len(f) == 0 {
				continue
			}
			kb, err := strconv.ParseFloat(f[0], 64)
			if err != nil {
				continue
			}
			switch name {
			case "MemTotal":
				m["total"] = kb / 1024
			case "MemAvailable":
				m["avail"] = kb / 1024
			case "MemFree":
				m["free"] = kb / 1024
			}
		}
	}
	cg := s.cgroupMemory()
	if !cg.found {
		return m
	}
	mb := func(v int64) any {
		if v < 0 {
			return nil
		}
		return float64(v) / 1024 / 1024
	}
	m["container_limit"] = mb(cg.limit)
	m["container_used"] = mb(cg.used)
	m["container_max_used"] = mb(cg.peak)
	if cg.limit >= 0 && cg.used >= 0 {
		left := mb(max(cg.limit-cg.used, 0))
		m["avail"], m["free"] = left, left
	}
	return m
}

// cgroupMem holds a memory cgroup's figures in bytes; -1 is unknown or unlimited.
type cgroupMem struct {
	found             bool
	limit, used, peak int64
}

// cgroupMemory finds this process's memory cgroup: v2 (memory.max, memory.current,
// memory.peak) or v1 (memory.limit_in_bytes, memory.usage_in_bytes,
// memory.max_usage_in_bytes), at the path /proc/self/cgroup names, else at the root of
// the hierarchy (a container's own cgroup namespace).
func (s *statusSource) cgroupMemory() cgroupMem {
	var v2path, v1path string
	if b, err := os.ReadFile(filepath.Join(s.procRoot, "self", "cgroup")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			parts := strings.SplitN(line, ":", 3)
			if len(parts) != 3 {
				continue
			}
			if parts[0] == "0" && parts[1] == "" {
				v2path = parts[2]
			}
			for _, c := range strings.Split(parts[1], ",") {
				if c == "memory" {
					v1path = parts[2]
				}
			}
		}
	}
	v2 := func(dir string) (cgroupMem, bool) {
		used := readCgroupInt(filepath.Join(dir, "memory.current"))
		if used < 0 {
			return cgroupMem{}, false
		}
		return cgroupMem{found: true, used: used,
			limit: readCgroupInt(filepath.Join(dir, "memory.max")),
			peak:  readCgroupInt(filepath.Join(dir, "memory.peak"))}, true
	}
	v1 := func(dir string) (cgroupMem, bool) {
		used := readCgroupInt(filepath.Join(dir, "memory.usage_in_bytes"))
		if used < 0 {
			return cgroupMem{}, false
		}
		return cgroupMem{found: true, used: used,
			limit: readCgroupInt(filepath.Join(dir, "memory.limit_in_bytes")),
			peak:  readCgroupInt(filepath.Join(dir, "memory.max_usage_in_bytes"))}, true
	}
	for _, dir := range candidates(s.cgroupRoot, v2path) {
		if m, ok := v2(dir); ok {
			return m
		}
	}
	for _, dir := range candidates(filepath.Join(s.cgroupRoot, "memory"), v1path) {
		if m, ok := v1(dir); ok {
			return m
		}
	}
	return cgroupMem{limit: -1, used: -1, peak: -1}
}

func candidates(root, path string) []string {
	if path == "" || path == "/" {
		return []string{root}
	}
	return []string{filepath.Join(root, filepath.Clean("/"+path)), root}
}

// readCgroupInt reads a cgroup file holding a byte count; "max" (v2) and v1's
// "unlimited" (a value near 2^63) give -1, as does a missing file.
func readCgroupInt(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	v := strings.TrimSpace(string(b))
	if v == "max" {
		return -1
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n >= 1<<62 {
		return -1
	}
	return n
}
