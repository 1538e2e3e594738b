package worker

import (
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/drum-go/drum/worker/predictor"
)

// callWithBody runs one predictor call whose payload is body, releasing the body as
// predict does: at once when the predictor answered, else after a grace period.
func (h *handler) callWithBody(ex *exchange, body *payload, req *predictor.Request) (*predictor.Result, error) {
	res, err := h.keeper.call(ex.r.Context(), h.timeout, req)
	var me *predictor.ModelError
	if err == nil || errors.As(err, &me) || isRejection(err) {
		body.release()
	} else {
		body.abandon()
	}
	return res, err
}

// sendWhole answers with a body the predictor rendered (transform, unstructured, models).
func (h *handler) sendWhole(ex *exchange, res *predictor.Result) {
	ex.send(http.StatusOK, res.ContentType, res.Body)
}

// queryPairs is Werkzeug 2.2's url_decode of the query string: "&"-separated pairs in
// order, empty pairs skipped, "+" as space, invalid escapes kept as they are.
func queryPairs(raw string) [][2]string {
	var out [][2]string
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		out = append(out, [2]string{unquotePlus(k), unquotePlus(v)})
	}
	return out
}

func unquotePlus(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return strings.ReplaceAll(s, "+", " ")
}

// hookHeaders is dict(request.headers) as DRUM hands it to hooks: WSGI environ names
// turned back into Title-Case, headers whose name has "_" dropped by the WSGI server,
// repeated headers joined by ",". Host comes first, as in the environ.
func hookHeaders(r *http.Request) [][2]string {
	out := [][2]string{}
	if r.Host != "" {
		out = append(out, [2]string{"Host", r.Host})
	}
	names := make([]string, 0, len(r.Header))
	for k := range r.Header {
		if strings.Contains(k, "_") {
			continue
		}
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		out = append(out, [2]string{titleHeader(k), strings.Join(r.Header.Values(k), ",")})
	}
	return out
}

// titleHeader is Python's str.title() of a lower-cased header name.
func titleHeader(name string) string {
	b := []byte(strings.ToLower(name))
	up := true
	for i, c := range b {
		isLetter := c >= 'a' && c <= 'z'
		if isLetter && up {
			b[i] = c - 'a' + 'A'
		}
		up = !isLetter // Python: digits are uncased, so a letter after one is capitalised
	}
	return string(b)
}
