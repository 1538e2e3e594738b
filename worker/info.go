package worker

import (
	"net/http"

	"github.com/drum-go/drum/config"
)

// GET /info/ (spec §10.3), the keys drum knows today plus "drumMode", the server mode
// actually running. DRUM's drumServer is always "flask" (even under gunicorn); here it is
// the configured DRUM_SERVER_TYPE, and "flask" when unset as in DRUM.
// modelMetadata is model-metadata.yaml, re-read on each request as DRUM does.

// infoDoc is the /info/ document as generic JSON values (extend it for more keys).
func (h *handler) infoDoc() map[string]any {
	cfg := &h.cfg
	server := cfg.ServerType
	if server == "" {
		server = config.ServerFlask
	}
	doc := map[string]any{
		"codeDir":       cfg.CodeDir,
		"drumServer":    server,
		"drumVersion":   config.Version,
		"language":      "python",
		"targetType":    cfg.TargetType,
		"modelMetadata": nil,
		"predictor":     nil,
		"drumMode":      h.status.modeDoc(),
	}
	if p := h.keeper.modelInfo().Predictor; p != "" {
		doc["predictor"] = p
	}
	switch cfg.TargetType {
	case config.TargetBinary:
		doc["positiveClassLabel"] = cfg.PositiveClassLabel
		doc["negativeClassLabel"] = cfg.NegativeClassLabel
	case config.TargetMulticlass:
		doc["classLabels"] = append([]string{}, cfg.ClassLabels...)
	}
	return doc
}

func (h *handler) info(ex *exchange) {
	doc := h.infoDoc()
	md, err := config.ReadModelMetadata(h.cfg.CodeDir)
	if err != nil {
		ex.message(http.StatusInternalServerError, "ERROR: "+err.Error())
		return
	}
	if md != nil {
		doc["modelMetadata"] = md
	}
	ex.send(http.StatusOK, contentTypeJSON, append(appendJSONify(nil, doc), '\n'))
}

// modeDoc describes the running server: type, mode, workers, predictors per worker and
// the per-worker queue.
func (s *statusSource) modeDoc() map[string]any {
	workers := s.cfg.Workers
	if s.single {
		workers = 1
	} else if v := s.server.Load(); v != nil && len(v.stats.Workers) > 0 {
		workers = len(v.stats.Workers)
	}
	return map[string]any{
		"serverType":          s.cfg.ServerTypeName(),
		"mode":                s.cfg.Mode(),
		"workers":             workers,
		"predictorsPerWorker": s.concurrency,
		"queueSize":           s.queueSize,
	}
}
