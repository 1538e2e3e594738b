package supervisor

import (
	"context"
	"errors"
	"maps"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/drum-go/drum/ipc"
	"github.com/drum-go/drum/metrics"
)

// DRUM_METRICS_ADDRESS: the master serves /metrics on its own address, from the
// server-wide aggregate it broadcasts to the workers each second. The loop publishes a
// copy at each broadcast (publishStats); the HTTP goroutines only load the pointer.

// metricsState is the master's /metrics side: the last published aggregate and the
// server on DRUM_METRICS_ADDRESS, if any.
type metricsState struct {
	last atomic.Pointer[ipc.ServerStats]
	srv  *http.Server
}

// publishStats stores st for /metrics. st must not be changed afterwards; the worker
// exits map, which the loop keeps updating, is copied.
func (m *master) publishStats(st ipc.ServerStats) {
	st.WorkerExits = maps.Clone(st.WorkerExits)
	m.metrics.last.Store(&st)
}

func (m *master) metricsSnapshot() ipc.ServerStats {
	if p := m.metrics.last.Load(); p != nil {
		return *p
	}
	return ipc.ServerStats{}
}

// serveMetrics starts the /metrics server on cfg.MetricsAddress, through tableflip so
// that an upgraded master inherits the socket. It serves /metrics and, with URL_PREFIX,
// PREFIX/metrics too.
func (m *master) serveMetrics(listen func(network, addr string) (net.Listener, error)) error {
	cfg := m.opts.Config
	if cfg.MetricsAddress == "" {
		return nil
	}
	ln, err := listen("tcp", cfg.MetricsAddress)
	if err != nil {
		return err
	}
	h := metrics.Handler(m.metricsSnapshot)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	if p := strings.Trim(cfg.URLPrefix, "/"); p != "" {
		mux.Handle("GET /"+p+"/metrics", h)
	}
	m.metrics.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: m.log.Named("metrics").StandardLogger(nil)}
	go func() {
		if err := m.metrics.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.log.Warn("metrics server stopped", "address", cfg.MetricsAddress, "error", err)
		}
	}()
	m.log.Info("serving /metrics", "address", ln.Addr().String())
	return nil
}

// stopMetrics closes the /metrics server (on exit, or when an upgraded master takes
// over: it serves the same socket from then on).
func (m *master) stopMetrics() {
	if m.metrics.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = m.metrics.srv.Shutdown(ctx)
	m.metrics.srv = nil
}
