package worker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/drum-go/drum/config"
	"github.com/drum-go/drum/worker/predictor"
	"github.com/drum-go/drum/worker/table"
)

// predict is DRUM's structured prediction (do_predict_structured).
func (h *handler) predict(ex *exchange) {
	switch h.cfg.TargetType {
	case config.TargetTransform:
		ex.message(http.StatusUnprocessableEntity,
			"ERROR: This model has target type 'transform', use the /transform/ endpoint.")
		return
	case config.TargetUnstructured:
		ex.message(http.StatusUnprocessableEntity,
			"ERROR: This model has target type 'unstructured', use the /predictUnstructured/ or /predictionsUnstructured/ endpoint.")
		return
	}
	parsed := h.keeper.arrive() // a batch holding a predictor may wait for this one
	req, body, ok := h.readStructured(ex, "predict")
	parsed()
	if !ok {
		return
	}
	res, err := h.callWithBody(ex, body, req)
	if err != nil {
		h.callFailed(ex, err)
		return
	}
	out := getBuf()
	defer putBuf(out)
	*out, err = appendPredictions(*out, res)
	if err != nil {
		ex.message(http.StatusInternalServerError, "ERROR: "+err.Error())
		return
	}
	ex.send(http.StatusOK, contentTypeJSON, *out)
}

// admit turns a request away while the worker is overloaded, before its body is read
// (overload costs no upload), then reads the body. ok=false: the client is answered.
func (h *handler) admit(ex *exchange) (*payload, bool) {
	if err := h.keeper.overloaded(); err != nil {
		discardRejected(ex.w, ex.r)
		h.callFailed(ex, err)
		return nil, false
	}
	body, herr := h.readPayload(ex.r)
	if herr != nil {
		ex.fail(herr)
		return nil, false
	}
	return body, true
}

// readStructured is the input side of /predict/ and /transform/: admission, the body,
// DRUM's payload extraction (multipart X or raw body) and its format check. ok=false:
// the client is answered.
func (h *handler) readStructured(ex *exchange, op string) (*predictor.Request, *payload, bool) {
	body, ok := h.admit(ex)
	if !ok {
		return nil, nil, false
	}
	in, herr := extractInput(latin1(contentType(ex.r)), body.data)
	if herr != nil {
		body.release()
		ex.fail(herr)
		return nil, nil, false
	}
	format := payloadFormat(in.mimeType)
	if format == "" && !h.keeper.modelInfo().HasHook("read_input_data") {
		body.release()
		ex.message(http.StatusUnprocessableEntity, msgUnsupportedFormat(in.mimeType))
		return nil, nil, false
	}
	req := &predictor.Request{
		Op:             op,
		MimeType:       in.mimeType,
		NoMimeType:     in.noMime,
		Charset:        in.charset,
		Format:         format,
		Payload:        in.payload,
		SparseColNames: in.sparseCols,
	}
	if op == "transform" {
		req.Y = in.y // only /transform/ takes a target part
	}
	if op == "predict" && format == "csv" {
		h.parseCSV(req)
	}
	return req, body, true
}

// parseCSV gives req the table pandas.read_csv would read from its payload when the
// worker's parser can reproduce it exactly (worker/table.ParseCSV), sparing the
// predictor the parse. Otherwise the predictor parses the payload as before.
func (h *handler) parseCSV(req *predictor.Request) {
	if h.cfg.DisableFastCSV {
		return
	}
	why := ""
	info := h.keeper.modelInfo()
	switch {
	case info.PandasVersion != table.PandasVersion:
		why = "the predictor runs pandas " + info.PandasVersion + ", the parser reproduces " + table.PandasVersion
	case info.HasHook("read_input_data"):
		why = "the model reads its input with a read_input_data hook"
	default:
		req.Table, why = table.ParseCSV(req.Payload)
	}
	if req.Table != nil {
		h.counters().fastCSV.Add(1)
		// Only a score hook sees the body (binary_data, among its kwargs): without one
		// the predictor needs the columns alone, and a large body is not piped twice.
		req.OmitPayload = !info.HasHook("score")
		return
	}
	h.counters().csvFallback.Add(1)
	if h.log.IsDebug() {
		h.log.Debug("CSV input left to pandas", "reason", why, "bytes", len(req.Payload))
	}
}

// callFailed answers a failed predictor call.
func (h *handler) callFailed(ex *exchange, err error) {
	var (
		me   *predictor.ModelError
		died *predictor.DiedError
		te   *timeoutError
		oe   *overloadError
		ne   *noPredictorError
	)
	switch {
	case errors.As(err, &ne):
		// The model cannot be (re)loaded right now: say so at once, and let the retry
		// land on another worker.
		ex.w.Header()["Retry-After"] = []string{"1"}
		ex.w.Header()["Connection"] = []string{"close"}
		ex.message(http.StatusServiceUnavailable, "ERROR: "+ne.Error())
	case errors.As(err, &oe):
		// Retry-After and a closed connection: the retry may land on a freer worker.
		ex.w.Header()["Retry-After"] = []string{"1"}
		ex.w.Header()["Connection"] = []string{"close"}
		ex.message(h.overloadStatus, "ERROR: "+oe.Error())
	case errors.As(err, &me):
		status := me.Status
		if status == 0 {
			status = http.StatusInternalServerError
		}
		if me.UserError {
			ex.w.Header()["X-Drum-User-Http-Error"] = []string{"true"}
		}
		ex.message(status, me.Message)
	case errors.As(err, &died):
		ex.message(http.StatusInternalServerError, fmt.Sprintf(
			"ERROR: predictor process %d died (%s) while handling this request; it is being restarted",
			died.Pid, died.Reason))
	case errors.As(err, &te):
		msg := "ERROR: the request timed out after " + te.after.String() + " waiting for a free predictor"
		if te.inCall {
			msg = fmt.Sprintf("ERROR: the prediction did not finish within %s; predictor process %d is being restarted",
				te.after, te.pid)
		}
		ex.message(http.StatusGatewayTimeout, msg)
	case errors.Is(err, errStopping):
		ex.message(http.StatusServiceUnavailable, "ERROR: the server is shutting down")
	case errors.Is(err, context.Canceled):
		ex.message(http.StatusInternalServerError, "ERROR: the request was cancelled")
	default:
		ex.message(http.StatusInternalServerError, "ERROR: "+err.Error())
	}
}

// targetEnum is how DRUM prints its TargetType enum in messages (the member name).
func targetEnum(t string) string {
	switch t {
	case config.TargetTextGeneration:
		return "TargetType.TEXT_GENERATION"
	case config.TargetGeoPoint:
		return "TargetType.GEO_POINT"
	case config.TargetVectorDatabase:
		return "TargetType.VECTOR_DATABASE"
	case config.TargetAgenticFlow:
		return "TargetType.AGENTIC_WORKFLOW"
	}
	return "TargetType." + strings.ToUpper(t)
}
