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

// errorRoutes are the error server's rules (runtime.py, run_error_server).
var errorRoutes = []struct {
	path    string
	methods []string
}{
	{"/", []string{"GET"}},
	{"/ping/", []string{"GET"}},
	{"/health/", []string{"GET"}},
	{"/predict/", []string{"POST"}},
	{"/predictions/", []string{"POST"}},
	{"/predictUnstructured/", []string{"POST"}},
	{"/predictionsUnstructured/", []string{"POST"}},
	{"/invocations", []string{"POST"}},
	{"/transform/", []string{"POST"}},
}

// errorHandler serves the error server's routes with Werkzeug's matching rules.
type errorHandler struct {
	router *router
	msg    string
}

func newErrorHandler(prefix string, loadErr error) *errorHandler {
	rt := &router{root: newState()}
	for _, r := range errorRoutes {
		path := r.path
		if prefix != "" {
			path = strings.TrimRight(prefix, "/") + "/" + strings.TrimLeft(path, "/")
		}
		// /ping/ is not strict in DRUM's error server either: /ping answers too.
		rt.add(path, r.methods, r.path != "/ping/", epPing)
	}
	msg := loadErr.Error()
	var le *predictor.LoadError
	if errors.As(loadErr, &le) {
		msg = le.Message
	}
	return &errorHandler{router: rt, msg: "ERROR: " + msg}
}

func (h *errorHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header()["X_Request_ID"] = []string{requestID(r)}
	w.Header()["X-Drum-Version"] = []string{config.Version}
	method := strings.ToUpper(r.Method)
	ex := &exchange{w: w, r: r, head: method == http.MethodHead}
	path := strings.ToValidUTF8(r.URL.Path, "\ufffd")
	m := h.router.match(path, method)
	switch m.kind {
	case routeNotFound:
		ex.send(http.StatusNotFound, contentTypeHTML, []byte(page404))
	case routeMethodNotAllowed:
		w.Header()["Allow"] = []string{strings.Join(m.allowed, ", ")}
		ex.send(http.StatusMethodNotAllowed, contentTypeHTML, []byte(page405))
	case routeRedirect:
		loc := redirectURL(r, m.redirectPath)
		w.Header()["Location"] = []string{loc}
		ex.send(http.StatusPermanentRedirect, contentTypeHTML, redirectPage(loc))
	default:
		if method == http.MethodOptions {
			if allow := h.router.allowedMethods(path); len(allow) > 0 {
				w.Header()["Allow"] = []string{strings.Join(allow, ", ")}
			}
			ex.send(http.StatusOK, contentTypeHTML, nil)
			return
		}
		ex.message(513, h.msg)
	}
}

// runErrorServer serves the error server on opts.Listener until stopped, reporting ready
// to the master and sending heartbeats like a serving worker.
func runErrorServer(ctx context.Context, opts Options, log hclog.Logger, loadErr error) error {
	log.Error("model failed to load; serving the error server (--with-error-server)", "error", loadErr)
	srv := &http.Server{
		Handler:           newErrorHandler(opts.URLPrefix, loadErr),
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
		stats := &counters{}
		bg.Add(1)
		go func() {
			defer bg.Done()
			heartbeat(opts.Control, opts.HeartbeatInterval, stats, hbDone, log)
		}()
		status := newStatusSource(opts.Config, opts.WorkerID, false, stats, opts.Concurrency, opts.QueueSize)
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
