package worker

import (
	"crypto/subtle"
	"net/http"
	"strings"
	"time"

	"github.com/drum-go/drum/config"
)

// The built-in equivalents of DRUM's Python web extensions (custom_flask.py,
// custom_fastapi.py): header-token authentication, static response headers and CORS,
// configured in config/operability.go.

// guard applies them to every request. A nil guard does nothing.
type guard struct {
	header    string // canonical request header carrying the token; "" for no auth
	token     []byte
	bearer    bool // the header is Authorization: "Bearer TOKEN" is accepted too
	extra     map[string]string
	origins   map[string]bool
	anyOrigin bool
}

func newGuard(o config.Operability) *guard {
	g := &guard{extra: o.ExtraHeaders}
	if o.AuthHeader != "" && o.AuthToken != "" {
		g.header = http.CanonicalHeaderKey(o.AuthHeader)
		g.token = []byte(string(o.AuthToken))
		g.bearer = g.header == "Authorization"
	}
	for _, s := range o.CORSOrigins {
		if s == "*" {
			g.anyOrigin = true
			continue
		}
		if g.origins == nil {
			g.origins = map[string]bool{}
		}
		g.origins[strings.ToLower(s)] = true
	}
	if g.header == "" && len(g.extra) == 0 && g.origins == nil && !g.anyOrigin {
		return nil
	}
	return g
}

// headers adds the static and CORS headers; it answers a CORS preflight itself and
// then reports true.
func (g *guard) headers(ex *exchange, method string) (answered bool) {
	if g == nil {
		return false
	}
	h := ex.w.Header()
	for k, v := range g.extra {
		h[k] = []string{v}
	}
	origin := ex.r.Header.Get("Origin")
	if origin == "" || (!g.anyOrigin && !g.origins[strings.ToLower(strings.TrimRight(origin, "/"))]) {
		return false
	}
	if g.anyOrigin && g.header == "" {
		h["Access-Control-Allow-Origin"] = []string{"*"}
	} else {
		h["Access-Control-Allow-Origin"] = []string{origin}
		h.Add("Vary", "Origin")
	}
	h["Access-Control-Expose-Headers"] = []string{"X_Request_ID, X-Drum-Version"}
	if method == http.MethodOptions && ex.r.Header.Get("Access-Control-Request-Method") != "" {
		h["Access-Control-Allow-Methods"] = []string{"GET, POST, PUT, OPTIONS"}
		if req := ex.r.Header.Get("Access-Control-Request-Headers"); req != "" {
			h["Access-Control-Allow-Headers"] = []string{req}
		}
		h["Access-Control-Max-Age"] = []string{"600"}
		ex.send(http.StatusNoContent, contentTypeHTML, nil)
		return true
	}
	return false
}

// authExempt are the endpoints open without a token (liveness and readiness, as DRUM's
// httpauth example leaves them).
func authExempt(ep endpoint) bool { return ep == epPing || ep == epHealth }

// deny answers 401 when the route needs the token and the request lacks it. The token
// never appears in the answer or the log.
func (g *guard) deny(ex *exchange, ep endpoint) bool {
	if g == nil || g.header == "" || authExempt(ep) {
		return false
	}
	for _, v := range ex.r.Header.Values(g.header) {
		v = strings.TrimSpace(v)
		if g.bearer && len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
			v = strings.TrimSpace(v[7:])
		}
		if subtle.ConstantTimeCompare([]byte(v), g.token) == 1 {
			return false
		}
	}
	discardRejected(ex.w, ex.r) // body.go: so the 401 is not lost to a reset mid-upload
	if ex.r.Header.Get(g.header) == "" {
		ex.message(http.StatusUnauthorized, "ERROR: authentication required: send the token in the "+g.header+" header")
	} else {
		ex.message(http.StatusUnauthorized, "ERROR: invalid token in the "+g.header+" header")
	}
	return true
}

// accessLog logs one line per answered request at info.
func (h *handler) accessLog(ex *exchange, mw *metricsWriter, id string, d time.Duration) {
	h.log.Info("request", "method", ex.r.Method, "path", ex.r.URL.RequestURI(), "status", mw.status,
		"bytes", mw.bytes, "duration_ms", durationMS(d), "request_id", id) // h.log carries the worker id
}

// durationMS is a duration in milliseconds with microsecond precision, for logs.
func durationMS(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
