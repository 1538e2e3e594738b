package supervisor

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/drum-go/drum/config"
	"github.com/drum-go/drum/ipc"
)

func TestMetricsAddress(t *testing.T) {
	cfg := config.Config{URLPrefix: "/m"}
	cfg.MetricsAddress = "127.0.0.1:0"
	m := &master{opts: Options{Config: cfg}, log: hclog.NewNullLogger()}
	var addr string
	listen := func(network, a string) (net.Listener, error) {
		ln, err := net.Listen(network, a)
		if err == nil {
			addr = ln.Addr().String()
		}
		return ln, err
	}
	if err := m.serveMetrics(listen); err != nil {
		t.Fatal(err)
	}
	defer m.stopMetrics()
	exits := map[string]int{"crash": 1}
	m.publishStats(ipc.ServerStats{WorkerExits: exits, Total: ipc.Counters{Completed: 5},
		Workers: []ipc.WorkerStats{{ID: 1, State: "ready"}}})
	exits["crash"] = 7 // the loop keeps counting: the published copy must not change
	c := &http.Client{Timeout: 5 * time.Second}
	for _, p := range []string{"/metrics", "/m/metrics"} {
		resp, err := c.Get("http://" + addr + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body := string(b)
		for _, want := range []string{"drum_requests_completed_total 5", `drum_worker_exits_total{reason="crash"} 1`, `drum_workers{state="ready"} 1`} {
			if resp.StatusCode != 200 || !strings.Contains(body, want) {
				t.Errorf("GET %s: %d, missing %q:\n%s", p, resp.StatusCode, want, body)
			}
		}
	}
}
