package worker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/drum-go/drum/config"
	"github.com/drum-go/drum/worker/predictor"
)

// chatSupported is DRUM's supports_chat for a Python model: a chat hook (never loaded
// for unstructured models).
func (h *handler) chatSupported() bool {
	return h.cfg.TargetType != config.TargetUnstructured && h.keeper.modelInfo().HasHook("chat")
}

// chat answers the chat routes as DRUM does for a model without a chat hook. DRUM reads
// the body as JSON before it checks for chat support, so body errors come first.
func (h *handler) chat(ex *exchange) {
	mime, _, perr := parseOptionsHeader(latin1(contentType(ex.r)))
	if perr != nil {
		ex.message(http.StatusInternalServerError, "ERROR: "+perr.msg)
		return
	}
	mime = strings.ToLower(mime)
	if mime != "application/json" && !(strings.HasPrefix(mime, "application/") && strings.HasSuffix(mime, "+json")) {
		ex.fail(errBadRequest)
		return
	}
	buf, herr := h.readBody(ex.r)
	if herr != nil {
		ex.fail(herr)
		return
	}
	v, ok := parsePyJSON(*buf)
	if !ok {
		putBuf(buf)
		ex.fail(errBadRequest)
		return
	}
	if msg := chatParamsError(v); msg != "" {
		putBuf(buf)
		ex.message(http.StatusInternalServerError, "ERROR: "+msg)
		return
	}
	switch {
	case h.chatSupported():
		h.chatCall(ex, buf)
	case h.cfg.TargetType == config.TargetTextGeneration || h.cfg.TargetType == config.TargetAgenticFlow:
		putBuf(buf)
		ex.message(http.StatusNotFound, "ERROR: This model's chat interface was called, but chat() is not implemented.")
	default:
		putBuf(buf)
		ex.message(http.StatusNotFound, "ERROR: This model's chat interface was called, but chat is not supported.")
	}
}

// chatCall runs the chat hook. A streamed answer (text/event-stream) goes out chunk by
// chunk as the hook yields them, without Content-Length; when the hook's iterator fails
// midway the answer is cut off without "data: [DONE]" and the connection dropped, as
// DRUM's server does.
func (h *handler) chatCall(ex *exchange, buf *[]byte) {
	body := &payload{data: *buf, buf: buf}
	pieces := &pieceQueue{ready: make(chan struct{}, 1)}
	req := &predictor.Request{
		Op:        "chat",
		Payload:   body.data,
		Headers:   hookHeaders(ex.r),
		OnPartial: pieces.push,
	}
	type outcome struct {
		res *predictor.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := h.callWithBody(ex, body, req)
		done <- outcome{res, err}
	}()
	var flusher http.Flusher
	started := false
	start := func() {
		if started {
			return
		}
		started = true
		ex.w.Header()["Content-Type"] = []string{"text/event-stream; charset=utf-8"}
		ex.status = http.StatusOK
		ex.w.WriteHeader(http.StatusOK)
		flusher, _ = ex.w.(http.Flusher)
	}
	writePieces := func() {
		for _, p := range pieces.take() {
			start()
			if !ex.head {
				_, _ = ex.w.Write(p)
			}
		}
		if started && flusher != nil {
			flusher.Flush()
		}
	}
	var out outcome
wait:
	for {
		select {
		case <-pieces.ready:
			writePieces()
		case out = <-done:
			writePieces()
			break wait
		}
	}
	switch {
	case out.err != nil && !started:
		h.callFailed(ex, out.err)
		return
	case out.err != nil:
		h.log.Warn("chat stream failed midway", "error", out.err)
		panic(http.ErrAbortHandler)
	case !out.res.Stream && !started:
		h.sendWhole(ex, out.res)
		return
	}
	start()
	if flusher != nil {
		flusher.Flush() // a stream has no Content-Length, however short
	}
	if !ex.head {
		_, _ = ex.w.Write(out.res.Body)
	}
	if out.res.StreamError != "" {
		if flusher != nil {
			flusher.Flush()
		}
		h.log.Warn("chat stream failed midway", "error", out.res.StreamError)
		panic(http.ErrAbortHandler)
	}
}

// pieceQueue hands streamed pieces from the predictor's reader goroutine to the request's
// goroutine without ever blocking the reader.
type pieceQueue struct {
	mu     sync.Mutex
	pieces [][]byte
	ready  chan struct{} // capacity 1: "there is something to take"
}

func (q *pieceQueue) push(p []byte) {
	q.mu.Lock()
	q.pieces = append(q.pieces, p)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *pieceQueue) take() [][]byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	p := q.pieces
	q.pieces = nil
	return p
}

// models is /models and /v1/models (spec §4.8.9).
func (h *handler) models(ex *exchange) {
	if h.cfg.TargetType != config.TargetTextGeneration {
		ex.message(http.StatusNotFound, "ERROR: get_supported_llm_models is supported only for TextGen models")
		return
	}
	res, err := h.keeper.call(ex.r.Context(), h.timeout, &predictor.Request{Op: "models"})
	if err != nil {
		h.callFailed(ex, err)
		return
	}
	h.sendWhole(ex, res)
}

// parsePyJSON decodes body as Flask's request.json does (json.loads on bytes: UTF-8,
// an optional BOM, one value).
func parsePyJSON(body []byte) (any, bool) {
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	if !utf8.Valid(body) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	return v, true
}

// chatParamsError is the AttributeError or TypeError DRUM's tracing code
// (extract_chat_request_attributes) raises while it reads "model" and "messages" from
// the request, or "".
func chatParamsError(v any) string {
	params, ok := v.(map[string]any)
	if !ok {
		return fmt.Sprintf("'%s' object has no attribute 'get'", pyTypeName(v))
	}
	switch msgs := params["messages"].(type) {
	case nil:
		if _, present := params["messages"]; present {
			return "'NoneType' object is not iterable"
		}
	case []any:
		for _, m := range msgs {
			if _, ok := m.(map[string]any); !ok {
				return fmt.Sprintf("'%s' object has no attribute 'get'", pyTypeName(m))
			}
		}
	case string, map[string]any: // iterating yields str items
		if msgs != "" && !isEmptyMap(msgs) {
			return "'str' object has no attribute 'get'"
		}
	default:
		return fmt.Sprintf("'%s' object is not iterable", pyTypeName(msgs))
	}
	return ""
}

func isEmptyMap(v any) bool {
	m, ok := v.(map[string]any)
	return ok && len(m) == 0
}

// pyTypeName is type(v).__name__ for a value json.loads returned.
func pyTypeName(v any) string {
	switch x := v.(type) {
	case map[string]any:
		return "dict"
	case []any:
		return "list"
	case string:
		return "str"
	case bool:
		return "bool"
	case json.Number:
		if strings.ContainsAny(string(x), ".eE") {
			return "float"
		}
		return "int"
	}
	return "NoneType"
}
