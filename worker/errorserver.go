package worker

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/drum-go/drum/config"
	"github.com/drum-go/drum/ipc"
	"github.com/drum-go/drum/worker/predictor"
)

// DRUM's error server (spec §4.9, --with-error-server / WITH_ERROR_SERVER): when the
// model fails to load, the worker reports ready anyway and answers the liveness and
// prediction routes with 513 {"message":"ERROR: <why>"}, everything else with 404, so
// that an orchestrator sees why the model is down instead of a crash loop.

// errorRoutes are the error server's rules (runtime.py, run_error_server), then drum's
// operability routes as the serving worker has them (/metrics, the KServe V2 health
// aliases, which answer 513 like /ping/ and /health/).
var errorRoutes = []struct {
	path     string
	methods  []string
	endpoint endpoint
}{
	{"/", []string{"GET"}, epPing},
	{"/ping/", []string{"GET"}, epPing},
	{"/health/", []string{"GET"}, epHealth},
	{"/predict/", []string{"POST"}, epPredict},
	{"/predictions/", []string{"POST"}, epPredict},
	{"/predictUnstructured/", []string{"POST"}, epPredictUnstructured},
	{"/predictionsUnstructured/", []string{"POST"}, epPredictUnstructured},
	{"/invocations", []string{"POST"}, epPredict},
	{"/transform/", []string{"POST"}, epTransform},
	{"/metrics", []string{"GET"}, epMetrics},
	{"/v2/health/live", []string{"GET"}, epPing},
	{"/v2/health/ready", []string{"GET"}, epHealth},
}

// errorHandler serves the error server's routes with Werkzeug's matching rules, behind
// the same token, static headers and CORS as a serving worker (auth.go).
type errorHandler struct {
	router *router
	msg    string
	guard  *guard        // nil for none
	status *statusSource // for /metrics
	http   *httpStats
}

func newErrorHandler(prefix string, loadErr error, g *guard, status *statusSource) *errorHandler {
	rt := &router{root: newState()}
	for _, r := range errorRoutes {
		path := r.path
		if prefix != "" {
			path = strings.TrimRight(prefix, "/") + "/" + strings.TrimLeft(path, "/")
		}
		// /ping/ is not strict in DRUM's error server either: /ping answers too.
		rt.add(path, r.methods, r.path != "/ping/", r.endpoint)
	}
	msg := loadErr.Error()
	var le *predictor.LoadError
	if errors.As(loadErr, &le) {
		msg = le.Message
	}
	return &errorHandler{router: rt, msg: "ERROR: " + msg, guard: g, status: status, http: &status.counters.http}
}

func (h *errorHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	w.Header()["X_Request_ID"] = []string{requestID(r)}
	w.Header()["X-Drum-Version"] = []string{config.Version}
	method := strings.ToUpper(r.Method)
	mw := &metricsWriter{ResponseWriter: w}
	ex := &exchange{w: mw, r: r, head: method == http.MethodHead, route: routeUnmatched}
	h.http.active.Add(1)
	defer h.http.active.Add(-1)
	if !h.guard.headers(ex, method) {
		h.serve(ex, method)
	}
	h.http.observe(ex.route, method, max(mw.status, ex.status, http.StatusOK), time.Since(start))
}

func (h *errorHandler) serve(ex *exchange, method string) {
	path := strings.ToValidUTF8(ex.r.URL.Path, "\ufffd")
	m := h.router.match(path, method)
	switch m.kind {
	case routeNotFound:
		ex.send(http.StatusNotFound, contentTypeHTML, []byte(page404))
	case routeMethodNotAllowed:
		ex.w.Header()["Allow"] = []string{strings.Join(m.allowed, ", ")}
		ex.send(http.StatusMethodNotAllowed, contentTypeHTML, []byte(page405))
	case routeRedirect:
		loc := redirectURL(ex.r, m.redirectPath)
		ex.w.Header()["Location"] = []string{loc}
		ex.send(http.StatusPermanentRedirect, contentTypeHTML, redirectPage(loc))
	default:
		ex.route = m.rule.path
		if h.guard.deny(ex, m.rule.endpoint) {
			return
		}
		switch {
		case method == http.MethodOptions:
			if allow := h.router.allowedMethods(path); len(allow) > 0 {
				ex.w.Header()["Allow"] = []string{strings.Join(allow, ", ")}
			}
			ex.send(http.StatusOK, contentTypeHTML, nil)
		case m.rule.endpoint == epMetrics:
			h.status.metricsHandler().ServeHTTP(ex.w, ex.r)
			ex.status = http.StatusOK
		default:
			ex.message(513, h.msg)
		}
	}
}

// runErrorServer serves the error server on opts.Listener until stopped, reporting ready
// to the master and sending heartbeats like a serving worker.
func runErrorServer(ctx context.Context, opts Options, log hclog.Logger, loadErr error) error {
	log.Error("model failed to load; serving the error server (--with-error-server)", "error", loadErr)
	stats := &counters{}
	status := newStatusSource(opts.Config, opts.WorkerID, opts.Control == nil, stats, opts.Concurrency, opts.QueueSize)
	srv := &http.Server{
		Handler:           newErrorHandler(opts.URLPrefix, loadErr, newGuard(opts.Config.Operability), status),
		ReadHeaderTimeout: opts.HeaderTimeout,
		IdleTimeout:       opts.KeepAlive,
		MaxHeaderBytes:    opts.MaxHeaderBytes,
	}
	stopCh := make(chan stopRequest, 1)
	hbDone := make(chan struct{})
	var bg sync.WaitGroup
	if opts.Control != nil {
		if err := opts.Control.Send(ipc.KindReady, ipc.Ready{Pid: os.Getpid()}); err != nil {
			log.Error("cannot report ready to the master", "error", err)
		}
		bg.Add(1)
		go func() {
			defer bg.Done()
			heartbeat(opts.Control, opts.HeartbeatInterval, stats, noHealthReport, hbDone, log)
		}()
		go readControl(opts.Control, stopCh, status, log)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(opts.Listener) }()
	if opts.OnReady != nil {
		opts.OnReady(nil)
	}
	var stop stopRequest
	select {
	case <-ctx.Done():
		stop = stopRequest{graceful: true, timeout: opts.GracefulTimeout}
	case stop = <-stopCh:
	case err := <-serveErr:
		close(hbDone)
		bg.Wait()
		return err
	}
	if stop.graceful {
		timeout := stop.timeout
		if timeout <= 0 {
			timeout = opts.GracefulTimeout
		}
		sctx, cancel := context.WithTimeout(context.Background(), min(timeout, 5*time.Second))
		_ = srv.Shutdown(sctx)
		cancel()
	}
	srv.Close()
	close(hbDone)
	bg.Wait()
	return nil
}

// noHealthReport is the error server's heartbeat health: it serves what it was started
// to serve (the load error), so the master has nothing to replace.
func noHealthReport(*ipc.Heartbeat) {}
