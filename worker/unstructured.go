package worker

import (
	"net/http"

	"github.com/drum-go/drum/config"
	"github.com/drum-go/drum/worker/predictor"
)

// predictUnstructured is DRUM's do_predict_unstructured (spec §7): the raw body, typed
// by Content-Type (verbatim) and its charset, the query and the request headers go to
// score_unstructured; the hook's answer comes back whole with its Content-Type.
func (h *handler) predictUnstructured(ex *exchange) {
	switch {
	case h.cfg.TargetType == config.TargetUnstructured:
	case h.cfg.TargetType == config.TargetTextGeneration:
		// DRUM routes textgeneration here too and calls the hook it never loaded.
		if !h.keeper.modelInfo().HasHook("score_unstructured") {
			ex.message(http.StatusInternalServerError, "ERROR: 'NoneType' object is not callable")
			return
		}
	default:
		ex.message(http.StatusUnprocessableEntity, "ERROR: This model has target type "+
			targetEnum(h.cfg.TargetType)+", use either /predict/ or /predictions/ endpoint.")
		return
	}
	mime, charset := "", ""
	if ct := latin1(contentType(ex.r)); ct != "" {
		m, opts, perr := parseOptionsHeader(ct)
		if perr != nil {
			ex.fail(pyErrorAnswer(perr))
			return
		}
		mime = m
		if c, _ := opts.get("charset"); c != nil {
			charset = *c
		}
	}
	body, ok := h.admit(ex)
	if !ok {
		return
	}
	req := &predictor.Request{
		Op:       "unstructured",
		MimeType: mime,
		Charset:  charset,
		Payload:  body.data,
		Query:    queryPairs(ex.r.URL.RawQuery),
		Headers:  hookHeaders(ex.r),
	}
	res, err := h.callWithBody(ex, body, req)
	if err != nil {
		h.callFailed(ex, err)
		return
	}
	h.sendWhole(ex, res)
}
