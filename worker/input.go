package worker

import (
	"io"
	"net/http"
	"strings"
)

// Structured-prediction input as DRUM finds it (spec §5.1, §5.2): a multipart file part
// named X, else the raw body, typed by the request Content-Type.

const msgSamples = "ERROR: Samples should be provided as:   - a csv or mtx under `X` form-data param key.  - binary data"

func msgUnsupportedFormat(mime string) string {
	return "ERROR: payload format `" + mime + "` is not supported by predictor/transformer. " +
		"Make DRUM support the format or implement `read_input_data` hook to read the data. "
}

// httpError is a JSON error answer that ends a request early.
type httpError struct {
	status    int
	msg       string
	key       string // body key; "" means "message"
	closeConn bool   // the request body was left unread: close the connection
}

// errBadRequest is Werkzeug's BadRequest as DRUM's error handler renders it.
var errBadRequest = &httpError{status: http.StatusBadRequest, key: "error",
	msg: "The browser (or proxy) sent a request that this server could not understand."}

// pyErrorAnswer is how DRUM's predict view answers an exception raised while it reads
// the request: ValueErrors are caught (422), anything else reaches the blueprint's error
// handler (500). Both add DRUM's "ERROR: " prefix.
func pyErrorAnswer(e *pyError) *httpError {
	if e.class == pyValueError {
		return &httpError{status: http.StatusUnprocessableEntity, msg: "ERROR: " + e.msg}
	}
	return &httpError{status: http.StatusInternalServerError, msg: "ERROR: " + e.msg}
}

// input is the payload of a structured prediction request.
type input struct {
	payload    []byte
	mimeType   string // verbatim; "" without a Content-Type or for a file part not named *.mtx
	noMime     bool   // a file part not named *.mtx: DRUM's mimetype is None
	charset    string
	sparseCols []string // from an X.colnames file part; nil without one
	y          []byte   // the y file part (/transform/ only); nil without one
}

// extractInput finds the payload in body. contentType is the request's Content-Type as
// the WSGI server passes it (the last such header, Latin-1 decoded; "" if absent).
func extractInput(contentType string, body []byte) (*input, *httpError) {
	var (
		files    []mpFile
		consumed bool // form parsing read the body: it is no longer a raw payload
		mime     string
		opts     = options{}
	)
	if contentType != "" {
		var err *pyError
		mime, opts, err = parseOptionsHeader(contentType)
		if err != nil {
			return nil, pyErrorAnswer(err)
		}
		switch strings.ToLower(mime) {
		case "multipart/form-data":
			// Without a usable boundary Werkzeug 3 leaves the body alone, so it is then
			// read as a raw payload of type multipart/form-data (spec §5.1). Werkzeug 2.2
			// would have consumed it; the spec's rule is kept.
			if b, _ := opts.get("boundary"); b != nil && *b != "" && isASCII(*b) {
				consumed = true
				files, err = parseMultipart(body, *b)
				if err != nil {
					if err.class != pyValueError {
						return nil, pyErrorAnswer(err)
					}
					files = nil // Werkzeug's form parser is silent: an empty form
				}
			}
		case "application/x-www-form-urlencoded":
			consumed = true
		}
	}

	in := &input{}
	if f := firstFile(files, "X"); f != nil {
		in.payload = f.data
		if splitExt(f.filename) == ".mtx" {
			in.mimeType = "text/mtx"
		} else {
			in.noMime = true
		}
	} else if !consumed && len(body) > 0 {
		in.payload = body
		in.mimeType = mime
		if c, _ := opts.get("charset"); c != nil {
			in.charset = *c
		}
	} else {
		return nil, &httpError{status: http.StatusUnprocessableEntity, msg: msgSamples}
	}

	if f := firstFile(files, "y"); f != nil {
		in.y = f.data
	}
	if f := firstFile(files, "X.colnames"); f != nil && len(f.data) > 0 {
		lines := bytesSplitLines(f.data)
		in.sparseCols = make([]string, 0, len(lines))
		for _, line := range lines {
			s, err := decodeUTF8(bytesStrip(line))
			if err != nil {
				return nil, pyErrorAnswer(err)
			}
			in.sparseCols = append(in.sparseCols, s)
		}
	}
	return in, nil
}

// payloadFormat maps a MIME type to DRUM's payload format, "" when DRUM has none for it.
// The match is exact and case-sensitive, as in DRUM.
func payloadFormat(mime string) string {
	switch mime {
	case "", "text/csv", "text/plain":
		return "csv"
	case "text/mtx":
		return "mtx"
	}
	return ""
}

func firstFile(files []mpFile, name string) *mpFile {
	for i := range files {
		if files[i].name != nil && *files[i].name == name {
			return &files[i]
		}
	}
	return nil
}

// splitExt is the extension os.path.splitext returns for a POSIX path: from the last
// dot of the last element, unless that element is only dots before it.
func splitExt(p string) string {
	sep := strings.LastIndexByte(p, '/')
	dot := strings.LastIndexByte(p, '.')
	if dot <= sep {
		return ""
	}
	for i := sep + 1; i < dot; i++ {
		if p[i] != '.' {
			return p[dot:]
		}
	}
	return ""
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// contentType is the Content-Type the WSGI server passes on: the last one sent.
func contentType(r *http.Request) string {
	v := r.Header.Values("Content-Type")
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// readBody reads the whole request body into a pooled buffer (release it with putBuf).
func (h *handler) readBody(r *http.Request) (*[]byte, *httpError) {
	if r.ContentLength > h.maxBody {
		return nil, h.tooLarge()
	}
	buf := getBuf()
	b := *buf
	if r.ContentLength > int64(cap(b)) {
		b = make([]byte, 0, r.ContentLength+1) // +1: the read that sees EOF needs room
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if int64(len(b)) > h.maxBody {
			*buf = b
			putBuf(buf)
			return nil, h.tooLarge()
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			*buf = b
			putBuf(buf)
			return nil, h.bodyReadError(err)
		}
	}
	*buf = b
	return buf, nil
}
