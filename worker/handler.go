package worker

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/drum-go/drum/config"
	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
)

// handler serves DRUM's HTTP API in one worker.
type handler struct {
	// draining is set when a stop begins: /health/ then answers 503.
	draining atomic.Bool

	cfg    config.Config
	log    hclog.Logger
	router *router
	// keeper runs predictions on the worker's predictors, behind admission control
	// (admission.go).
	keeper  *keeperPool
	maxBody int64
	timeout time.Duration // per prediction; 0 means none

	spoolThreshold int64  // bodies above it go to a temporary file (body.go)
	spoolDir       string // "" for os.TempDir()
	bodyTimeout    time.Duration
	overloadStatus int           // 503 or 429
	status         *statusSource // for /info/ and /stats/ (stats.go)
	guard          *guard        // auth, extra headers, CORS (auth.go); nil for none
	accessLogOn    bool          // one info line per request (auth.go)
}

// exchange is one request being answered.
type exchange struct {
	w      http.ResponseWriter
	r      *http.Request
	head   bool
	status int
	route  string // the matched rule's path, for metrics
}

// send writes a complete answer. HEAD answers carry the headers of the GET answer.
func (ex *exchange) send(status int, contentType string, body []byte) {
	h := ex.w.Header()
	h["Content-Type"] = []string{contentType}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	ex.status = status
	ex.w.WriteHeader(status)
	if !ex.head && len(body) > 0 {
		_, _ = ex.w.Write(body)
	}
}

// message answers with Flask's jsonify({"message": msg}).
func (ex *exchange) message(status int, msg string) {
	ex.send(status, contentTypeJSON, flaskJSON("message", msg))
}

func (ex *exchange) fail(e *httpError) {
	if e.closeConn {
		ex.w.Header()["Connection"] = []string{"close"}
	}
	key := e.key
	if key == "" {
		key = "message"
	}
	ex.send(e.status, contentTypeJSON, flaskJSON(key, e.msg))
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := requestID(r)
	// DRUM's exact header spelling: Header.Set would canonicalise it to X_request_id.
	w.Header()["X_Request_ID"] = []string{id}
	w.Header()["X-Drum-Version"] = []string{config.Version}
	if h.draining.Load() {
		// Stopping: tell keep-alive clients to open their next request elsewhere, so
		// they never send one on a connection the drain is about to close.
		w.Header()["Connection"] = []string{"close"}
	}
	method := strings.ToUpper(r.Method)
	mw := &metricsWriter{ResponseWriter: w} // metrics.go
	ex := &exchange{w: mw, r: r, head: method == http.MethodHead, route: routeUnmatched}
	c := h.counters()
	c.http.active.Add(1)
	defer c.http.active.Add(-1)
	h.limitBodyTime(w, r)
	if !h.guard.headers(ex, method) { // auth.go: a CORS preflight is answered there
		h.serve(ex, method)
	}
	if mw.status == 0 {
		mw.status = max(ex.status, http.StatusOK)
	}
	d := time.Since(start)
	c.http.observe(ex.route, method, mw.status, d)
	if mw.status >= 400 {
		args := []any{"method", r.Method, "path", r.URL.RequestURI(), "status", mw.status,
			"duration_ms", durationMS(d), "request_id", id}
		if mw.status >= 500 {
			h.log.Warn("request failed", args...)
		} else if !h.accessLogOn {
			h.log.Info("request failed", args...)
		}
	}
	if h.accessLogOn {
		h.accessLog(ex, mw, id, d)
	}
}

// requestID is the client's X-Request-ID (several are joined as the WSGI server joins
// them), else a fresh uuid4.
func requestID(r *http.Request) string {
	if v := r.Header.Values("X-Request-Id"); len(v) > 0 {
		if id := strings.Join(v, ","); id != "" {
			return id
		}
	}
	return uuid.NewString()
}

func (h *handler) serve(ex *exchange, method string) {
	// WSGI decodes the path as UTF-8 with replacement characters.
	path := strings.ToValidUTF8(ex.r.URL.Path, "\ufffd")
	m := h.router.match(path, method)
	if m.kind == routeMatched {
		ex.route = m.rule.path
		if h.guard.deny(ex, m.rule.endpoint) { // auth.go
			return
		}
	}
	switch m.kind {
	case routeNotFound:
		ex.send(http.StatusNotFound, contentTypeHTML, []byte(page404))
		return
	case routeMethodNotAllowed:
		ex.w.Header()["Allow"] = []string{strings.Join(m.allowed, ", ")}
		ex.send(http.StatusMethodNotAllowed, contentTypeHTML, []byte(page405))
		return
	case routeRedirect:
		loc := redirectURL(ex.r, m.redirectPath)
		ex.w.Header()["Location"] = []string{loc}
		ex.send(http.StatusPermanentRedirect, contentTypeHTML, redirectPage(loc))
		return
	}
	if method == http.MethodOptions {
		// Flask's automatic OPTIONS answer: empty, with the methods the path accepts.
		if allow := h.router.allowedMethods(path); len(allow) > 0 {
			ex.w.Header()["Allow"] = []string{strings.Join(allow, ", ")}
		}
		ex.send(http.StatusOK, contentTypeHTML, nil)
		return
	}
	switch m.rule.endpoint {
	case epPing:
		ex.message(http.StatusOK, "OK")
	case epHealth:
		if h.draining.Load() {
			ex.message(http.StatusServiceUnavailable, "ERROR: this worker is shutting down")
		} else if h.keeper.live() {
			ex.message(http.StatusOK, "OK")
		} else if err := h.keeper.unavailable(); err != nil {
			ex.message(http.StatusServiceUnavailable, "ERROR: "+err.Error())
		} else {
			ex.message(http.StatusServiceUnavailable, "ERROR: no predictor is ready: the model is (re)starting")
		}
	case epCapabilities:
		chat := "false"
		if h.chatSupported() {
			chat = "true"
		}
		ex.send(http.StatusOK, contentTypeJSON, []byte(`{"supported_methods":{"chat":`+chat+
			`},"supported_payload_formats":{"csv":null,"mtx":null}}`+"\n"))
	case epPredict:
		h.predict(ex)
	case epTransform:
		h.transform(ex)
	case epPredictUnstructured:
		h.predictUnstructured(ex)
	case epChat:
		h.chat(ex)
	case epModels:
		h.models(ex)
	case epDirectAccess:
		ex.message(http.StatusBadRequest, "This endpoint is only supported by OpenAI based predictors")
	case epStatic:
		ex.send(http.StatusNotFound, contentTypeHTML, []byte(page404))
	case epInfo:
		h.info(ex)
	case epStats:
		h.stats(ex)
	case epMetrics:
		h.status.metricsHandler().ServeHTTP(ex.w, ex.r) // metrics.go
		ex.status = http.StatusOK
	default:
		h.notImplemented(ex)
	}
}

// notImplemented answers routes DRUM has that this server does not serve yet.
func (h *handler) notImplemented(ex *exchange) {
	ex.message(http.StatusNotImplemented, "ERROR: "+ex.r.URL.Path+" is not implemented by this server yet")
}

// redirectURL is the absolute URL Werkzeug redirects to: the Host header lower-cased
// (without :80), the new path quoted, the query string as sent.
func redirectURL(r *http.Request, newPath string) string {
	host := r.Host
	if host == "" {
		if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			host = a.String()
		}
	}
	host = strings.TrimSuffix(strings.ToLower(host), ":80")
	u := "http://" + host + "/" + strings.TrimLeft(urlQuote(newPath, "/:|+"), "/")
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	// iri_to_uri: only non-ASCII needs quoting (the request line has no spaces).
	if !isASCII(u) {
		u = urlQuote(u, ":/?#[]@!$&'()*+,;=%")
	}
	return u
}
