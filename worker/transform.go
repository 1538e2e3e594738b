package worker

import (
	"net/http"

	"github.com/drum-go/drum/config"
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
	req, body, ok := h.readStructured(ex, "transform")
	if !ok {
		return
	}
	res, err := h.callWithBody(ex, body, req)
	if err != nil {
		h.callFailed(ex, err)
		return
	}
	h.sendWhole(ex, res)
}
