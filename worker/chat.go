package worker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/drum-go/drum/config"
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
	putBuf(buf)
	if !ok {
		ex.fail(errBadRequest)
		return
	}
	if msg := chatParamsError(v); msg != "" {
		ex.message(http.StatusInternalServerError, "ERROR: "+msg)
		return
	}
	switch {
	case h.chatSupported():
		h.notImplemented(ex)
	case h.cfg.TargetType == config.TargetTextGeneration || h.cfg.TargetType == config.TargetAgenticFlow:
		ex.message(http.StatusNotFound, "ERROR: This model's chat interface was called, but chat() is not implemented.")
	default:
		ex.message(http.StatusNotFound, "ERROR: This model's chat interface was called, but chat is not supported.")
	}
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
