package worker

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/drum-go/drum/config"
	"github.com/drum-go/drum/worker/predictor"
	"github.com/drum-go/drum/worker/table"
	"github.com/hashicorp/go-hclog"
)

// newTestHandler is a handler with fake predictor p installed (no supervision).
func newTestHandler(cfg config.Config, p *fakePredictor) *handler {
	c := &counters{}
	k := newKeeper(hclog.NewNullLogger(), nil, c)
	k.install(p)
	return &handler{cfg: cfg, log: hclog.NewNullLogger(), router: newRouter(""),
		keeper: newKeeperPool([]*keeper{k}, 16, c), maxBody: DefaultMaxBodyBytes,
		spoolThreshold: 8 << 20, overloadStatus: 503, status: newStatusSource(cfg, 1, true, c, 1, 16)}
}

func newFake(info predictor.Info) *fakePredictor {
	if info.PandasVersion == "" {
		info.PandasVersion = table.PandasVersion // the CSV fast path applies
	}
	return &fakePredictor{pid: 42, info: info, done: make(chan struct{}), fn: constResult(1)}
}

const csv5 = "a,b\n1,2\n3,4\n"

// mpBody builds a multipart body with boundary "bnd" from (headers, data) parts.
func mpBody(parts ...[2]string) string {
	var b strings.Builder
	for _, p := range parts {
		b.WriteString("--bnd\r\n" + p[0] + "\r\n\r\n" + p[1] + "\r\n")
	}
	b.WriteString("--bnd--\r\n")
	return b.String()
}

func filePart(name, filename, data string) [2]string {
	return [2]string{`Content-Disposition: form-data; name="` + name + `"; filename="` + filename + `"`, data}
}

func TestInputRules(t *testing.T) {
	const mp = "multipart/form-data; boundary=bnd"
	samples := `{"message":"` + msgSamples + `"}` + "\n"
	unsupported := func(mime string) string { return string(flaskJSON("message", msgUnsupportedFormat(mime))) }
	type want struct {
		status  int
		body    string // checked when set
		payload string
		mime    string
		charset string
		format  string
		cols    []string
	}
	for _, tc := range []struct {
		name    string
		ct      []string // Content-Type headers
		body    string
		hooks   []string
		chunked bool
		want    want
	}{
		// Spec §5.1 "Consequences that clients hit in practice".
		{name: `curl -F "X=@data.csv"`, ct: []string{mp}, body: mpBody(filePart("X", "data.csv", csv5)),
			want: want{status: 200, payload: csv5, format: "csv"}},
		{name: `curl -F "X=<data.csv"`, ct: []string{mp},
			body: mpBody([2]string{`Content-Disposition: form-data; name="X"`, csv5}),
			want: want{status: 422, body: samples}},
		{name: "curl --data-binary (form-urlencoded)", ct: []string{"application/x-www-form-urlencoded"}, body: csv5,
			want: want{status: 422, body: samples}},
		{name: "raw text/csv", ct: []string{"text/csv"}, body: csv5,
			want: want{status: 200, payload: csv5, mime: "text/csv", format: "csv"}},
		{name: "raw without Content-Type", body: csv5, want: want{status: 200, payload: csv5, format: "csv"}},
		{name: "multipart without boundary", ct: []string{"multipart/form-data"}, body: csv5,
			want: want{status: 422, body: unsupported("multipart/form-data")}},
		{name: "multipart with boundary, unparsable", ct: []string{mp}, body: csv5,
			want: want{status: 422, body: samples}},
		{name: "application/json", ct: []string{"application/json"}, body: csv5,
			want: want{status: 422, body: unsupported("application/json")}},
		{name: "application/json with read_input_data", ct: []string{"application/json"}, body: `{"a":1}`,
			hooks: []string{"read_input_data"},
			want:  want{status: 200, payload: `{"a":1}`, mime: "application/json", format: ""}},
		{name: "Text/CSV is case-sensitive", ct: []string{"Text/CSV"}, body: csv5,
			want: want{status: 422, body: unsupported("Text/CSV")}},

		// More of §5.1 and §5.2.
		{name: "text/plain", ct: []string{"text/plain"}, body: csv5,
			want: want{status: 200, payload: csv5, mime: "text/plain", format: "csv"}},
		{name: "text/mtx", ct: []string{"text/mtx"}, body: "%%MatrixMarket",
			want: want{status: 200, payload: "%%MatrixMarket", mime: "text/mtx", format: "mtx"}},
		{name: "charset extracted", ct: []string{"text/csv; charset=latin-1"}, body: csv5,
			want: want{status: 200, payload: csv5, mime: "text/csv", charset: "latin-1", format: "csv"}},
		{name: "params split on ;", ct: []string{"text/mtx;"}, body: "m",
			want: want{status: 200, payload: "m", mime: "text/mtx", format: "mtx"}},
		{name: "octet-stream", ct: []string{"application/octet-stream"}, body: csv5,
			want: want{status: 422, body: unsupported("application/octet-stream")}},
		{name: "last Content-Type wins", ct: []string{"text/csv", "application/json"}, body: csv5,
			want: want{status: 422, body: unsupported("application/json")}},
		{name: "Latin-1 MIME type", ct: []string{"text/\xe9"}, body: csv5,
			want: want{status: 422, body: string(flaskJSON("message", msgUnsupportedFormat("text/é")))}},
		{name: "empty body", ct: []string{"text/csv"}, want: want{status: 422, body: samples}},
		{name: "empty body, no Content-Type", want: want{status: 422, body: samples}},
		{name: "chunked", ct: []string{"text/csv"}, body: csv5, chunked: true,
			want: want{status: 200, payload: csv5, mime: "text/csv", format: "csv"}},
		{name: ".mtx file part", ct: []string{mp}, body: mpBody(filePart("X", "x.mtx", "m")),
			want: want{status: 200, payload: "m", mime: "text/mtx", format: "mtx"}},
		{name: ".MTX is CSV", ct: []string{mp}, body: mpBody(filePart("X", "x.MTX", "m")),
			want: want{status: 200, payload: "m", format: "csv"}},
		{name: "a dot file is not an extension", ct: []string{mp}, body: mpBody(filePart("X", ".mtx", "m")),
			want: want{status: 200, payload: "m", format: "csv"}},
		{name: "part Content-Type ignored", ct: []string{mp},
			body: mpBody([2]string{`Content-Disposition: form-data; name="X"; filename="d"` + "\r\nContent-Type: text/mtx", "m"}),
			want: want{status: 200, payload: "m", format: "csv"}},
		{name: "first X wins", ct: []string{mp},
			body: mpBody(filePart("X", "a.mtx", "first"), filePart("X", "b.csv", "second")),
			want: want{status: 200, payload: "first", mime: "text/mtx", format: "mtx"}},
		{name: "a field named X does not count", ct: []string{mp},
			body: mpBody([2]string{`Content-Disposition: form-data; name="X"`, "field"}, filePart("X", "b", "file")),
			want: want{status: 200, payload: "file", format: "csv"}},
		{name: "extra fields ignored", ct: []string{mp},
			body: mpBody([2]string{`Content-Disposition: form-data; name="foo"`, "bar"}, filePart("X", "X_5.csv", csv5)),
			want: want{status: 200, payload: csv5, format: "csv"}},
		{name: "wrong key", ct: []string{mp}, body: mpBody(filePart("data", "x.csv", csv5)),
			want: want{status: 422, body: samples}},
		{name: "X.colnames", ct: []string{mp},
			body: mpBody(filePart("X", "x.mtx", "m"), filePart("X.colnames", "c", " a \r\n\nb\rc\x0b\n")),
			want: want{status: 200, payload: "m", mime: "text/mtx", format: "mtx", cols: []string{"a", "", "b", "c"}}},
		{name: "X.colnames not UTF-8", ct: []string{mp},
			body: mpBody(filePart("X", "x.mtx", "m"), filePart("X.colnames", "c", "a\nb\xff\xfe")),
			want: want{status: 422, body: `{"message":"ERROR: 'utf-8' codec can't decode byte 0xff in position 1: invalid start byte"}` + "\n"}},
		{name: "LF-only multipart", ct: []string{mp},
			body: "--bnd\nContent-Disposition: form-data; name=\"X\"; filename=\"a\"\n\n" + csv5 + "\n--bnd--\n",
			want: want{status: 200, payload: csv5, format: "csv"}},
		{name: "multipart without the closing boundary", ct: []string{mp},
			body: "--bnd\r\nContent-Disposition: form-data; name=\"X\"; filename=\"a\"\r\n\r\n" + csv5,
			want: want{status: 422, body: samples}},
		{name: "RFC 2231 filename", ct: []string{mp},
			body: mpBody([2]string{`Content-Disposition: form-data; name="X"; filename*=UTF-8''x%2Emtx`, "m"}),
			want: want{status: 200, payload: "m", mime: "text/mtx", format: "mtx"}},
		{name: "unknown charset of a field (Werkzeug raises LookupError)", ct: []string{mp},
			body: mpBody([2]string{"Content-Disposition: form-data; name=\"f\"\r\nContent-Type: text/plain; charset=klingon", "x"},
				filePart("X", "a", csv5)),
			want: want{status: 500, body: `{"message":"ERROR: unknown encoding: klingon"}` + "\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newFake(predictor.Info{Hooks: tc.hooks})
			h := newTestHandler(config.Config{TargetType: config.TargetRegression}, p)
			var body io.Reader = strings.NewReader(tc.body)
			if tc.chunked {
				body = io.MultiReader(body) // unknown length: sent chunked
			}
			r := httptest.NewRequest(http.MethodPost, "/predict/", body)
			if tc.chunked {
				r.ContentLength = -1
			}
			for _, ct := range tc.ct {
				r.Header.Add("Content-Type", ct)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want.status, w.Body)
			}
			if tc.want.body != "" && w.Body.String() != tc.want.body {
				t.Errorf("body\n got %q\nwant %q", w.Body, tc.want.body)
			}
			req := p.lastRequest()
			if tc.want.status != 200 {
				if req != nil {
					t.Errorf("the predictor was called: %+v", req)
				}
				return
			}
			got := want{status: 200, payload: string(req.Payload), mime: req.MimeType, charset: req.Charset,
				format: req.Format, cols: req.SparseColNames}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("request\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	p := newFake(predictor.Info{})
	h := newTestHandler(config.Config{TargetType: config.TargetRegression}, p)
	h.maxBody = 10
	for _, chunked := range []bool{false, true} {
		r := httptest.NewRequest(http.MethodPost, "/predict/", strings.NewReader(strings.Repeat("x", 11)))
		if chunked {
			r.ContentLength = -1
		}
		r.Header.Set("Content-Type", "text/csv")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusRequestEntityTooLarge || !strings.Contains(w.Body.String(), "limit of 10 bytes") {
			t.Errorf("chunked=%v: %d %s", chunked, w.Code, w.Body)
		}
	}
	r := httptest.NewRequest(http.MethodPost, "/predict/", strings.NewReader(strings.Repeat("x", 10)))
	r.Header.Set("Content-Type", "text/csv")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Errorf("a body at the limit: %d %s", w.Code, w.Body)
	}
}

// TestInputWerkzeugCorpus replays requests whose answers Werkzeug 2.2.2 and DRUM's
// input code produced (testdata/werkzeug_input_gen.py).
func TestInputWerkzeugCorpus(t *testing.T) {
	f, err := os.Open("testdata/werkzeug_input.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	type result struct {
		Status                    int
		Msg, Payload, Mime, Chset string
		Cols                      []string
	}
	n := 0
	for sc.Scan() {
		n++
		var c struct {
			CT   *string
			Body string
			Want struct {
				Status                      int
				Msg, Payload, Mime, Charset string
				Cols                        []string
			}
		}
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		body, _ := base64.StdEncoding.DecodeString(c.Body)
		ct := ""
		if c.CT != nil {
			ct = *c.CT
		}
		var got result
		if in, herr := extractInput(ct, body); herr != nil {
			got = result{Status: herr.status, Msg: herr.msg}
		} else {
			got = result{Status: 200, Payload: base64.StdEncoding.EncodeToString(in.payload),
				Mime: in.mimeType, Chset: in.charset, Cols: in.sparseCols}
		}
		w := c.Want
		want := result{w.Status, w.Msg, w.Payload, w.Mime, w.Charset, w.Cols}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("case %d: Content-Type %q body %q\n got %+v\nwant %+v", n, ct, body, got, want)
		}
	}
	if n < 100 {
		t.Fatalf("only %d cases", n)
	}
}

func TestParseOptionsHeader(t *testing.T) {
	s := func(v string) *string { return &v }
	for _, tc := range []struct {
		in   string
		mime string
		opts options
		err  string
	}{
		{"", "", options{}, ""},
		{"text/csv", "text/csv", options{}, ""},
		{"text/csv; charset=utf-8", "text/csv", options{"charset": s("utf-8")}, ""},
		{`Text/CSV; Charset="a\"b"`, "Text/CSV", options{"charset": s(`a"b`)}, ""},
		{"text/csv ; charset=utf-8", "text/csv", options{}, ""}, // a space before ; ends the type
		{";charset=x", "", options{}, ""},
		{"multipart/form-data; boundary", "multipart/form-data", options{"boundary": nil}, ""},
		{"a/b; x*=utf-8''%C3%A9", "a/b", options{"x": s("é")}, ""},
		{"a/b; x*0=ab; x*1=cd", "a/b", options{"x": s("abcd")}, ""},
		{"a/b; x*=utf-8''%FF", "", nil, "'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"},
		{"a/b; x*=klingon''ab", "", nil, "unknown encoding: klingon"},
	} {
		mime, opts, err := parseOptionsHeader(tc.in)
		if (err != nil) != (tc.err != "") || (err != nil && err.msg != tc.err) {
			t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			continue
		}
		if err == nil && (mime != tc.mime || !reflect.DeepEqual(opts, tc.opts)) {
			t.Errorf("%q: got %q %v, want %q %v", tc.in, mime, opts, tc.mime, tc.opts)
		}
	}
}

func TestPythonHelpers(t *testing.T) {
	// CPython 3.11's messages for bytes.decode("utf-8").
	for in, want := range map[string]string{
		"ab\xff":           "'utf-8' codec can't decode byte 0xff in position 2: invalid start byte",
		"ab\xe2\x82":       "'utf-8' codec can't decode bytes in position 2-3: unexpected end of data",
		"\xe2(\xa1":        "'utf-8' codec can't decode byte 0xe2 in position 0: invalid continuation byte",
		"\xe2\x82(":        "'utf-8' codec can't decode bytes in position 0-1: invalid continuation byte",
		"\xed\xa0\x80":     "'utf-8' codec can't decode byte 0xed in position 0: invalid continuation byte",
		"\xf0\x9f\x98(":    "'utf-8' codec can't decode bytes in position 0-2: invalid continuation byte",
		"\xf4\x90\x80\x80": "'utf-8' codec can't decode byte 0xf4 in position 0: invalid continuation byte",
		"\xc0\x80":         "'utf-8' codec can't decode byte 0xc0 in position 0: invalid start byte",
		"\xe0\x80":         "'utf-8' codec can't decode byte 0xe0 in position 0: invalid continuation byte",
		"\xf0":             "'utf-8' codec can't decode byte 0xf0 in position 0: unexpected end of data",
	} {
		_, err := decodeUTF8([]byte(in))
		if err == nil || err.msg != want {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
	for name, want := range map[string]string{
		"utf-8": "utf_8", "UTF8": "utf_8", "utf--8": "utf_8", "Latin 1": "latin_1", "8859": "latin_1",
		"cp65001": "utf_8", "utf8é": "utf_8", "base64": "base64_codec", "klingon": "", "": "", "ü": "",
		"u.t.f.8": "", "mbcs": "",
	} {
		if got, _ := pyLookupCodec(name); got != want {
			t.Errorf("codec %q: %q, want %q", name, got, want)
		}
	}
	if got := splitExt("a/b.c/d"); got != "" {
		t.Errorf("splitExt: %q", got)
	}
	for in, want := range map[string][]string{"a\r\nb\rc\n": {"a", "b", "c"}, "\n\n": {"", ""}, "": nil} {
		var got []string
		for _, l := range bytesSplitLines([]byte(in)) {
			got = append(got, string(l))
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("splitlines %q: %q", in, got)
		}
	}

}
