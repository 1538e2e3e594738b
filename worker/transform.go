package worker

import (
	"net/http"

	"github.com/drum-go/drum/config"
	"github.com/drum-go/drum/worker/predictor"
)

// transform is DRUM's /transform/ (spec §4.8.5): X as for predictions (multipart part,
// or the raw body), an optional y file part, and a multipart/form-data answer the
// predictor renders (X.format, X.transformed, X.colnames when sparse, y.*).
func (h *handler) transform(ex *exchange) {
	switch h.cfg.TargetType {
	case config.TargetTransform:
	case config.TargetUnstructured:
		ex.message(http.StatusUnprocessableEntity, "ERROR: This model has target type "+
			targetEnum(h.cfg.TargetType)+", use the /predictUnstructured/ endpoint.")
		return
	default:
		ex.message(http.StatusUnprocessableEntity, "ERROR: This model has target type "+
			targetEnum(h.cfg.TargetType)+", use the /predict/ endpoint.")
		return
	}
	if err := h.keeper.overloaded(); err != nil {
		h.callFailed(ex, err)
		return
	}
	body, herr := h.readPayload(ex.r)
	if herr != nil {
		ex.fail(herr)
		return
	}
	in, herr := extractInput(latin1(contentType(ex.r)), body.data)
	if herr != nil {
		body.release()
		ex.fail(herr)
		return
	}
	format := payloadFormat(in.mimeType)
	if format == "" && !h.keeper.modelInfo().HasHook("read_input_data") {
		body.release()
		ex.message(http.StatusUnprocessableEntity, msgUnsupportedFormat(in.mimeType))
		return
	}
	req := &predictor.Request{
		Op:             "transform",
		MimeType:       in.mimeType,
		NoMimeType:     in.noMime,
		Charset:        in.charset,
		Format:         format,
		Payload:        in.payload,
		SparseColNames: in.sparseCols,
		Y:              in.y,
	}
	res, err := h.callWithBody(ex, body, req)
	if err != nil {
		h.callFailed(ex, err)
		return
	}
	h.sendWhole(ex, res)
}
