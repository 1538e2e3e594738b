package worker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net"
	"net/http/httputil"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drum-go/drum/config"
	"github.com/drum-go/drum/internal/goldentest"
	"github.com/drum-go/drum/worker/predictor"
	"github.com/drum-go/drum/worker/table"
)

// The golden recordings (shared/golden) are real DRUM exchanges. These tests replay
// them against a worker whose predictor is a fake that answers what the real model
// answered, and compare status, headers and body byte for byte.

// goldenDir is $DRUM_GOLDEN, else shared/golden beside the repository, else the
// workplace's copy.
var goldenDir = func() string {
	if d := os.Getenv("DRUM_GOLDEN"); d != "" {
		return d
	}
	if d := filepath.Join("..", "..", "shared", "golden"); dirExists(d) {
		return d
	}
	return "/work/shared/golden"
}()

func dirExists(d string) bool {
	st, err := os.Stat(d)
	return err == nil && st.IsDir()
}

type goldenCase struct {
	Case    string `json:"case"`
	Model   string `json:"model"`
	Request struct {
		Method       string      `json:"method"`
		Path         string      `json:"path"`
		Headers      [][2]string `json:"headers"`
		Body         *string     `json:"body"`
		BodyBase64   *string     `json:"body_base64"`
		BodyFile     *string     `json:"body_file"`
		BodyGen      *string     `json:"body_generator"`
		BodyTransfer string      `json:"body_transfer"`
	} `json:"request"`
	Response struct {
		Status        int         `json:"status"`
		Headers       [][2]string `json:"headers"`
		Body          *string     `json:"body"`
		BodyBase64    *string     `json:"body_base64"`
		BodyTruncated bool        `json:"body_truncated"`
		BodyHead      string      `json:"body_head"`
		BodyTail      string      `json:"body_tail"`
	} `json:"response"`
}

func (c *goldenCase) header(name string) (string, bool) {
	for _, h := range c.Response.Headers {
		if h[0] == name {
			return h[1], true
		}
	}
	return "", false
}

// requestBody rebuilds the recorded request body; ok is false for generated bodies.
func (c *goldenCase) requestBody(t *testing.T) ([]byte, bool) {
	r := c.Request
	switch {
	case r.Body != nil:
		return []byte(*r.Body), true
	case r.BodyBase64 != nil:
		b, err := base64.StdEncoding.DecodeString(*r.BodyBase64)
		if err != nil {
			t.Fatal(err)
		}
		return b, true
	case r.BodyFile != nil:
		b, err := os.ReadFile(filepath.Join(goldenDir, *r.BodyFile))
		if err != nil {
			t.Fatal(err)
		}
		return b, true
	case r.BodyGen != nil:
		return nil, false
	}
	return nil, true
}

func loadGolden(t *testing.T, model string) []*goldenCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(goldenDir, model, "*.json"))
	if err != nil || len(files) == 0 {
		goldentest.Missing(t, "golden recordings not found in %s", goldenDir)
	}
	var out []*goldenCase
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		c := &goldenCase{}
		if err := json.Unmarshal(b, c); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, c)
	}
	return out
}

// goldenConfigs are the recorded models' server settings (server.command) and what
// their predictor reports.
var goldenConfigs = map[string]struct {
	cfg  config.Config
	info predictor.Info
}{
	"regression": {config.Config{TargetType: config.TargetRegression}, predictor.Info{Predictor: "scikit-learn"}},
	"binary": {config.Config{TargetType: config.TargetBinary, PositiveClassLabel: "Iris-versicolor",
		NegativeClassLabel: "Iris-setosa"}, predictor.Info{Predictor: "scikit-learn"}},
	"multiclass": {config.Config{TargetType: config.TargetMulticlass,
		ClassLabels: []string{"class_0", "class_1", "class_2"}}, predictor.Info{Predictor: "scikit-learn"}},
	"custom":  {config.Config{TargetType: config.TargetRegression}, predictor.Info{Hooks: []string{"load_model", "score"}}},
	"anomaly": {config.Config{TargetType: config.TargetAnomaly}, predictor.Info{Predictor: "scikit-learn"}},
	"multilabel": {config.Config{TargetType: config.TargetMultilabel, ClassLabels: []string{"class_0", "class_1", "class_2"}},
		predictor.Info{Hooks: []string{"load_model", "score"}}},
	"sparse": {config.Config{TargetType: config.TargetRegression}, predictor.Info{Predictor: "scikit-learn"}},
	"textgen": {config.Config{TargetType: config.TargetTextGeneration},
		predictor.Info{Hooks: []string{"load_model", "score", "chat", "get_supported_llm_models"}}},
	"unstructured": {config.Config{TargetType: config.TargetUnstructured},
		predictor.Info{Hooks: []string{"load_model", "score_unstructured"}}},
	"transform": {config.Config{TargetType: config.TargetTransform}, predictor.Info{Hooks: []string{"load_model", "transform"}}},
}

// laterIssue reports recorded exchanges this replay cannot reproduce with a fake
// predictor: the /stats/ body is volatile (its shape is tested in stats_test.go).
func laterIssue(model string, c *goldenCase) bool {
	path, _, _ := strings.Cut(c.Request.Path, "?")
	return c.Response.Status == 200 && path == "/stats/"
}

// wholeBodyOp reports whether the recorded exchange reached the predictor through an op
// whose answer is a whole HTTP body (transform, unstructured, chat, models).
func wholeBodyOp(model string, c *goldenCase) bool {
	path, _, _ := strings.Cut(c.Request.Path, "?")
	switch {
	case model == "transform" && path == "/transform/":
		return c.Response.Status == 200 || c.Response.Status == 500
	case model == "unstructured" && (path == "/predictUnstructured/" || path == "/predictionsUnstructured/"):
		return c.Response.Status == 200 || c.Response.Status == 500
	case model == "textgen" && c.Response.Status == 200 && (strings.HasSuffix(path, "chat/completions") || strings.HasSuffix(path, "models")):
		return true
	}
	return false
}

// predictionsResult turns a recorded prediction body back into the predictor's Result.
func predictionsResult(t *testing.T, body []byte) *predictor.Result {
	t.Helper()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	var res *predictor.Result
	if p := raw["predictions"]; bytes.HasPrefix(p, []byte(`["`)) {
		res = &predictor.Result{JSON: p}
	} else {
		res = parsePredictions(t, []byte(`{"predictions":`+string(p)+`}`))
	}
	if e, ok := raw["extraModelOutput"]; ok {
		res.ExtraModelOutput = e
	}
	return res
}

// parsePredictions turns a DRUM prediction body back into a Result.
func parsePredictions(t *testing.T, body []byte) *predictor.Result {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok := func() json.Token {
		tk, err := dec.Token()
		if err != nil {
			t.Fatalf("parse %q: %v", body, err)
		}
		return tk
	}
	num := func(tk json.Token) float64 {
		if tk == nil {
			return math.NaN()
		}
		f, err := strconv.ParseFloat(string(tk.(json.Number)), 64)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	res := &predictor.Result{}
	tok() // {
	if k := tok(); k != "predictions" {
		t.Fatalf("unexpected key %v", k)
	}
	tok() // [
	for dec.More() {
		tk := tok()
		if tk != json.Delim('{') {
			if res.Rows == 0 {
				res.Columns = []string{"Predictions"}
			}
			res.Values = append(res.Values, num(tk))
			res.Rows++
			continue
		}
		var cols []string
		for dec.More() {
			cols = append(cols, tok().(string))
			res.Values = append(res.Values, num(tok()))
		}
		tok() // }
		res.Columns = cols
		res.Rows++
	}
	return res
}

// rawExchange sends raw request bytes and returns the status, the header lines in wire
// order (names as sent) and the body.
func rawExchange(t *testing.T, addr string, req []byte) (int, [][2]string, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	go func() { _, _ = conn.Write(req) }()
	br := bufio.NewReader(conn)
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("status line: %v", err)
	}
	parts := strings.SplitN(strings.TrimSpace(line), " ", 3)
	status, _ := strconv.Atoi(parts[1])
	var hdrs [][2]string
	length := -1
	chunked := false
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("headers: %v", err)
		}
		l = strings.TrimRight(l, "\r\n")
		if l == "" {
			break
		}
		k, v, _ := strings.Cut(l, ": ")
		hdrs = append(hdrs, [2]string{k, v})
		if k == "Content-Length" {
			length, _ = strconv.Atoi(v)
		}
		if k == "Transfer-Encoding" && v == "chunked" {
			chunked = true
		}
	}
	var body []byte
	if chunked {
		body, _ = io.ReadAll(httputil.NewChunkedReader(br))
	} else if length >= 0 {
		if !bytes.HasPrefix(req, []byte("HEAD ")) {
			body = make([]byte, length)
			if _, err := io.ReadFull(br, body); err != nil {
				t.Fatalf("body: %v", err)
			}
		}
	}
	return status, hdrs, body
}

func buildRequest(c *goldenCase, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\n", c.Request.Method, c.Request.Path)
	for _, h := range c.Request.Headers {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	b.WriteString("Connection: close\r\n\r\n")
	if strings.HasPrefix(c.Request.BodyTransfer, "chunked") {
		for len(body) > 0 {
			n := min(1000, len(body))
			fmt.Fprintf(&b, "%x\r\n%s\r\n", n, body[:n])
			body = body[n:]
		}
		b.WriteString("0\r\n\r\n")
	} else {
		b.Write(body)
	}
	return b.Bytes()
}

var uuid4Re = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestGoldenReplay(t *testing.T) {
	for _, model := range []string{"regression", "binary", "multiclass", "custom",
		"anomaly", "multilabel", "sparse", "textgen", "unstructured", "transform"} {
		t.Run(model, func(t *testing.T) {
			gc := goldenConfigs[model]
			var next struct {
				res *predictor.Result
				err error
			}
			f := &fakeFactory{info: gc.info}
			f.fn = func(context.Context, *fakePredictor, *predictor.Request) (*predictor.Result, error) {
				return next.res, next.err
			}
			w := startWorker(t, gc.cfg, f, nil, nil)
			fake := func() *fakePredictor { return f.predictors()[0] }

			for _, c := range loadGolden(t, model) {
				t.Run(c.Case, func(t *testing.T) {
					body, ok := c.requestBody(t)
					switch {
					case !ok:
						t.Skip("generated request body")
					case laterIssue(model, c):
						t.Skip("volatile /stats/ body (shape tested in stats_test.go)")
					}
					// The fake predictor answers what DRUM's model answered.
					want := []byte(nil)
					if c.Response.Body != nil {
						want = []byte(*c.Response.Body)
					}
					next.res, next.err = nil, nil
					ct, _ := c.header("Content-Type")
					if c.Response.BodyBase64 != nil {
						want, _ = base64.StdEncoding.DecodeString(*c.Response.BodyBase64)
					}
					whole := wholeBodyOp(model, c)
					if whole && c.Response.Status == 200 {
						next.res = &predictor.Result{Body: want, ContentType: ct,
							Stream: strings.HasPrefix(ct, "text/event-stream")}
					} else if whole {
						var m struct{ Message string }
						_ = json.Unmarshal(want, &m)
						next.err = &predictor.ModelError{Status: 500, Message: m.Message}
					} else if ct == contentTypeJSON && bytes.HasPrefix(want, []byte(`{"predictions":`)) {
						next.res = predictionsResult(t, want)
					} else if p, _, _ := strings.Cut(c.Request.Path, "?"); c.Response.Status == 500 &&
						(p == "/predict/" || p == "/predictions/" || p == "/invocations") {
						var m struct{ Message string }
						_ = json.Unmarshal(want, &m)
						next.err = &predictor.ModelError{Status: 500, Message: m.Message}
					}
					callsBefore := fake().calls.Load()

					status, hdrs, got := rawExchange(t, w.addr, buildRequest(c, body))

					if status != c.Response.Status {
						t.Fatalf("status %d, want %d (body %q)", status, c.Response.Status, got)
					}
					if p, _, _ := strings.Cut(c.Request.Path, "?"); p == "/info/" && c.Response.Status == 200 {
						checkInfo(t, got, want)
					} else if want != nil && !bytes.Equal(got, want) {
						t.Errorf("body\n got %q\nwant %q", got, want)
					}
					checkGoldenHeaders(t, c, hdrs)
					called := fake().calls.Load() > callsBefore
					if wantCall := next.res != nil || next.err != nil; called != wantCall {
						t.Errorf("predictor called: %v, want %v", called, wantCall)
					}
					if next.res != nil && !whole {
						checkPayload(t, c, body, gc.info, fake().lastRequest())
					}
				})
			}
		})
	}
}

// checkInfo compares /info/ answers without drum's extra drumMode key and with the
// recorded (rewritten) codeDir.
func checkInfo(t *testing.T, got, want []byte) {
	t.Helper()
	var g, w map[string]any
	if json.Unmarshal(got, &g) != nil || json.Unmarshal(want, &w) != nil {
		t.Fatalf("/info/ body %q is not JSON", got)
	}
	if _, ok := g["drumMode"]; !ok {
		t.Errorf("/info/ lacks drumMode")
	}
	delete(g, "drumMode")
	g["codeDir"], w["codeDir"] = "", ""
	gs, _ := json.Marshal(g)
	ws, _ := json.Marshal(w)
	if !bytes.Equal(gs, ws) {
		t.Errorf("/info/\n got %s\nwant %s", gs, ws)
	}
}

func checkGoldenHeaders(t *testing.T, c *goldenCase, hdrs [][2]string) {
	t.Helper()
	get := func(name string) (string, bool) {
		for _, h := range hdrs {
			if h[0] == name {
				return h[1], true
			}
		}
		return "", false
	}
	id, ok := get("X_Request_ID")
	if !ok {
		t.Errorf("no X_Request_ID header (exact spelling) in %v", hdrs)
	}
	if wantID, _ := c.header("X_Request_ID"); c.Case == "request_id_echo" {
		if id != wantID {
			t.Errorf("X_Request_ID %q, want the echoed %q", id, wantID)
		}
	} else if !uuid4Re.MatchString(id) {
		t.Errorf("X_Request_ID %q is not a uuid4", id)
	}
	for _, name := range []string{"X-Drum-Version", "Content-Type", "Location"} {
		want, wok := c.header(name)
		got, gok := get(name)
		if wok != gok || want != got {
			t.Errorf("%s: got %q (%v), want %q (%v)", name, got, gok, want, wok)
		}
	}
	// Allow lists a set; its order is volatile in the recordings.
	want, _ := c.header("Allow")
	got, _ := get("Allow")
	if sortedList(want) != sortedList(got) {
		t.Errorf("Allow: got %q, want %q", got, want)
	}
	if cl, _ := c.header("Content-Length"); c.Response.Body != nil && !strings.HasPrefix(c.Request.Path, "/info/") {
		if g, _ := get("Content-Length"); g != cl {
			t.Errorf("Content-Length %s, want %s", g, cl)
		}
	}
}

func sortedList(s string) string {
	if s == "" {
		return ""
	}
	l := strings.Split(s, ", ")
	sort.Strings(l)
	return strings.Join(l, ",")
}

// checkPayload verifies what reached the predictor for a successful prediction,
// finding the X part with Go's own multipart reader.
func checkPayload(t *testing.T, c *goldenCase, body []byte, info predictor.Info, req *predictor.Request) {
	t.Helper()
	ct := ""
	for _, h := range c.Request.Headers {
		if strings.EqualFold(h[0], "Content-Type") {
			ct = h[1]
		}
	}
	want := predictor.Request{Op: "predict", Payload: body}
	want.MimeType, _, _ = strings.Cut(ct, ";")
	mt, params, _ := mime.ParseMediaType(ct)
	if mt == "multipart/form-data" {
		want.MimeType, want.NoMimeType = "", true
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			data, _ := io.ReadAll(p)
			switch p.FormName() {
			case "X":
				if want.NoMimeType { // the first X
					want.Payload = data
					if strings.HasSuffix(p.FileName(), ".mtx") {
						want.MimeType, want.NoMimeType = "text/mtx", false
					}
				}
			case "X.colnames":
				for _, l := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
					want.SparseColNames = append(want.SparseColNames, strings.TrimSpace(l))
				}
			}
		}
	}
	if _, params, _ := mime.ParseMediaType(ct); mt != "multipart/form-data" {
		want.Charset = params["charset"]
	}
	want.Format = payloadFormat(want.MimeType)
	if !bytes.Equal(req.Payload, want.Payload) {
		t.Errorf("payload %q, want %q", req.Payload, want.Payload)
	}
	// The fast path (on in every test config) parses CSV payloads in the worker.
	if want.Format == "csv" {
		want.Table, _ = table.ParseCSV(want.Payload)
		want.OmitPayload = want.Table != nil && !info.HasHook("score") // a score hook sees binary_data
	}
	if fmt.Sprintf("%+v", req.Table) != fmt.Sprintf("%+v", want.Table) {
		t.Errorf("table\n got %+v\nwant %+v", req.Table, want.Table)
	}
	req.Payload, want.Payload = nil, nil
	req.Table, want.Table = nil, nil
	if fmt.Sprint(*req) != fmt.Sprint(want) {
		t.Errorf("request\n got %+v\nwant %+v", *req, want)
	}
}
