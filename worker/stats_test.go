package worker

import (
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/drum-go/drum/config"
)

// fakeRoots lays out files under a temporary /proc and /sys/fs/cgroup.
func fakeRoots(t *testing.T, files map[string]string) *statusSource {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := newStatusSource(config.Config{}, 1, true, &counters{}, 1, 0)
	s.procRoot, s.cgroupRoot = filepath.Join(root, "proc"), filepath.Join(root, "cgroup")
	return s
}

const meminfo = "MemTotal:       1048576 kB\nMemFree:         262144 kB\nMemAvailable:    524288 kB\nBuffers: 1 kB\n"

func TestMemInfo(t *testing.T) {
	mb := float64(1 << 20)
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  map[string]any
	}{
		{"host only", map[string]string{"proc/meminfo": meminfo},
			map[string]any{"total": 1024.0, "free": 256.0, "avail": 512.0, "container_limit": nil, "container_used": nil, "container_max_used": nil}},
		{"nothing readable", map[string]string{},
			map[string]any{"total": nil, "free": nil, "avail": nil, "container_limit": nil, "container_used": nil, "container_max_used": nil}},
		{"cgroup v2 with a limit", map[string]string{
			"proc/meminfo": meminfo, "proc/self/cgroup": "0::/kubepods/pod1\n",
			"cgroup/kubepods/pod1/memory.max": "209715200\n", "cgroup/kubepods/pod1/memory.current": "52428800\n",
			"cgroup/kubepods/pod1/memory.peak": "104857600\n"},
			map[string]any{"total": 1024.0, "free": 150.0, "avail": 150.0, "container_limit": 200.0, "container_used": 50.0, "container_max_used": 100.0}},
		{"cgroup v2 namespace root, no limit, no peak", map[string]string{
			"proc/meminfo": meminfo, "proc/self/cgroup": "0::/\n",
			"cgroup/memory.max": "max\n", "cgroup/memory.current": strconv.Itoa(int(10 * mb))},
			map[string]any{"total": 1024.0, "free": 256.0, "avail": 512.0, "container_limit": nil, "container_used": 10.0, "container_max_used": nil}},
		{"cgroup v1 unlimited, path missing in the namespace", map[string]string{
			"proc/meminfo": meminfo, "proc/self/cgroup": "12:pids:/x\n4:memory:/docker/abc\n0::/\n",
			"cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n", "cgroup/memory/memory.usage_in_bytes": strconv.Itoa(int(30 * mb)),
			"cgroup/memory/memory.max_usage_in_bytes": strconv.Itoa(int(40 * mb))},
			map[string]any{"total": 1024.0, "free": 256.0, "avail": 512.0, "container_limit": nil, "container_used": 30.0, "container_max_used": 40.0}},
		{"cgroup v1 with a limit", map[string]string{
			"proc/meminfo": meminfo, "proc/self/cgroup": "4:memory:/docker/abc\n",
			"cgroup/memory/docker/abc/memory.limit_in_bytes": strconv.Itoa(int(100 * mb)), "cgroup/memory/docker/abc/memory.usage_in_bytes": strconv.Itoa(int(30 * mb)),
			"cgroup/memory/docker/abc/memory.max_usage_in_bytes": "garbage"},
			map[string]any{"total": 1024.0, "free": 70.0, "avail": 70.0, "container_limit": 100.0, "container_used": 30.0, "container_max_used": nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := fakeRoots(t, tc.files).memInfo()
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
				}
			}
		})
	}
}

func TestStatsNeverFails(t *testing.T) {
	s := fakeRoots(t, map[string]string{"proc/meminfo": "garbage"})
	body := string(s.statsJSON())
	for _, k := range []string{`"drum_info":[]`, `"mem_info":{`, `"drum_rss":0.0`, `"time_info":{"run_predictor_total":{"avg":null,"max":null,"min":null,"total":null}}`, `"scope":"process"`} {
		if !strings.Contains(body, k) {
			t.Errorf("stats without /proc: no %s in %s", k, body)
		}
	}
}

func TestAppendJSONify(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want string
	}{
		{0.0, "0.0"}, {math.Copysign(0, -1), "-0.0"}, {1.0, "1.0"}, {212.4, "212.4"}, {0.0001, "0.0001"}, {0.00001, "1e-05"},
		{1.5e-7, "1.5e-07"}, {1e15, "1000000000000000.0"}, {1e16, "1e+16"}, {123456789.125, "123456789.125"},
		{1.7976931348623157e308, "1.7976931348623157e+308"},
		{map[string]any{"b": []any{nil, true, "é"}, "a": 3}, `{"a":3,"b":[null,true,"\u00e9"]}`},
		{struct {
			X int     `json:"x"`
			Y float64 `json:"y"`
		}{1, 2.5}, `{"x":1,"y":2.5}`},
	} {
		if got := string(appendJSONify(nil, tc.v)); got != tc.want {
			t.Errorf("%#v: %s, want %s", tc.v, got, tc.want)
		}
	}
}

func TestSetBacklog(t *testing.T) {
	if _, err := exec.LookPath("ss"); err != nil {
		t.Skip("no ss to read the backlog with")
	}
	ln, err := Listen("127.0.0.1:0", 77)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	out, err := exec.Command("ss", "-ltnH", "sport = :"+port).Output()
	if err != nil {
		t.Skipf("ss: %v", err)
	}
	if f := strings.Fields(string(out)); len(f) < 3 || f[2] != "77" {
		t.Fatalf("ss says %q, want a backlog (Send-Q) of 77", out)
	}
	if err := SetBacklog(ln, 0); err == nil {
		t.Fatal("SetBacklog(0) succeeded")
	}
}
