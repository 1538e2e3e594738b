package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drum-go/drum/config"
	"github.com/drum-go/drum/worker/predictor"
)

func TestQueryPairs(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", "[]"},
		{"a=1&b=two&a=3", "[[a 1] [b two] [a 3]]"},
		{"x&&y=", "[[x ] [y ]]"},
		{"q=a+b%20c&bad=%zz", "[[q a b c] [bad %zz]]"},
	} {
		if got := fmt.Sprint(queryPairs(c.in)); got != c.want {
			t.Errorf("queryPairs(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestHookHeaders(t *testing.T) {
	r := httptest.NewRequest("POST", "/chat/completions", nil)
	r.Host = "h:1"
	r.Header.Set("x-golden-suffix", "s")
	r.Header["X_Drop_Me"] = []string{"dropped"} // underscores never reach WSGI apps
	r.Header.Add("Accept", "a")
	r.Header.Add("Accept", "b")
	got := fmt.Sprint(hookHeaders(r))
	if want := "[[Host h:1] [Accept a,b] [X-Golden-Suffix s]]"; got != want {
		t.Errorf("hookHeaders = %s, want %s", got, want)
	}
	if got := titleHeader("x-api-key2b"); got != "X-Api-Key2B" {
		t.Errorf("titleHeader = %q (Python's str.title gives X-Api-Key2B)", got)
	}
}

// wholeBodyWorker starts a worker whose fake predictor answers every call with res and
// records the request.
func wholeBodyWorker(t *testing.T, cfg config.Config, hooks []string, res *predictor.Result, err error) (*runningWorker, func() *predictor.Request) {
	f := &fakeFactory{info: predictor.Info{Hooks: hooks}}
	f.fn = func(context.Context, *fakePredictor, *predictor.Request) (*predictor.Result, error) { return res, err }
	w := startWorker(t, cfg, f, nil, nil)
	return w, func() *predictor.Request { return f.predictors()[0].lastRequest() }
}

func TestUnstructuredRequest(t *testing.T) {
	res := &predictor.Result{Body: []byte("out"), ContentType: "text/plain; charset=utf-8"}
	w, last := wholeBodyWorker(t, config.Config{TargetType: config.TargetUnstructured},
		[]string{"load_model", "score_unstructured"}, res, nil)
	req, _ := http.NewRequest("POST", "http://"+w.addr+"/predictionsUnstructured/?k=1&k=2", strings.NewReader("--b\r\nnot a form"))
	req.Header.Set("Content-Type", "multipart/form-data; boundary=b; charset=latin-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "out" || resp.Header.Get("Content-Type") != res.ContentType {
		t.Fatalf("answer %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	r := last()
	if r.Op != "unstructured" || string(r.Payload) != "--b\r\nnot a form" || r.MimeType != "multipart/form-data" ||
		r.Charset != "latin-1" || fmt.Sprint(r.Query) != "[[k 1] [k 2]]" {
		t.Errorf("request %+v", r)
	}
}

func TestTransformRequestWithY(t *testing.T) {
	res := &predictor.Result{Body: []byte("--x--\r\n"), ContentType: "multipart/form-data; boundary=x"}
	w, last := wholeBodyWorker(t, config.Config{TargetType: config.TargetTransform},
		[]string{"load_model", "transform"}, res, nil)
	body := "--B\r\nContent-Disposition: form-data; name=\"X\"; filename=\"X.csv\"\r\n\r\na,b\n1,2\n\r\n" +
		"--B\r\nContent-Disposition: form-data; name=\"y\"; filename=\"y.csv\"\r\n\r\nt\n0\n\r\n--B--\r\n"
	resp, err := http.Post("http://"+w.addr+"/transform/", "multipart/form-data; boundary=B", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != res.ContentType {
		t.Fatalf("answer %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	r := last()
	if r.Op != "transform" || string(r.Payload) != "a,b\n1,2\n" || string(r.Y) != "t\n0\n" || !r.NoMimeType {
		t.Errorf("request %+v", r)
	}
}

// A chat stream whose iterator fails midway is cut off: no "data: [DONE]", no
// terminating chunk.
func TestChatStreamCutOff(t *testing.T) {
	res := &predictor.Result{Body: []byte("data: {\"a\":1}\n\n"), ContentType: "text/event-stream; charset=utf-8",
		Stream: true, StreamError: "boom"}
	w, _ := wholeBodyWorker(t, config.Config{TargetType: config.TargetTextGeneration},
		[]string{"load_model", "chat"}, res, nil)
	resp, err := http.Post("http://"+w.addr+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"m","messages":[],"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != string(res.Body) || rerr == nil {
		t.Errorf("answer %d %q (read error %v), want the first chunk and a broken stream", resp.StatusCode, body, rerr)
	}
	if resp.ContentLength != -1 {
		t.Errorf("a stream has no Content-Length, got %d", resp.ContentLength)
	}
}

func TestInfoModelMetadata(t *testing.T) {
	dir := t.TempDir()
	md := "name: m\ntype: inference\ntargetType: regression\nmajorVersion: true\n"
	if err := os.WriteFile(filepath.Join(dir, "model-metadata.yaml"), []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	w, _ := wholeBodyWorker(t, config.Config{TargetType: config.TargetRegression, CodeDir: dir}, nil, nil, nil)
	get := func() string {
		resp, err := http.Get("http://" + w.addr + "/info/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return string(b)
	}
	if got := get(); !strings.Contains(got, `"modelMetadata":{"majorVersion":true,"name":"m","targetType":"regression","type":"inference"}`) {
		t.Errorf("/info/ %s", got)
	}
	// Re-read on every request, as DRUM does.
	if err := os.WriteFile(filepath.Join(dir, "model-metadata.yaml"), []byte(md+"description: d\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := get(); !strings.Contains(got, `"description":"d"`) {
		t.Errorf("/info/ after an edit %s", got)
	}
}

func TestErrorServerRoutes(t *testing.T) {
	le := &predictor.LoadError{Message: "An error occurred when loading your artifact: boom"}
	h := newErrorHandler("/p", fmt.Errorf("worker 1: start predictor: %w", le), nil, errorStatus())
	want := `{"message":"ERROR: An error occurred when loading your artifact: boom"}` + "\n"
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/p/", 513}, {"GET", "/p/ping", 513}, {"GET", "/p/ping/", 513}, {"GET", "/p/health/", 513},
		{"POST", "/p/predict/", 513}, {"POST", "/p/transform/", 513}, {"POST", "/p/invocations", 513},
		{"POST", "/p/predictionsUnstructured/", 513},
		{"GET", "/p/info/", 404}, {"GET", "/predict/", 404}, {"GET", "/p/predict/", 405},
		{"POST", "/p/predict", 308},
		{"GET", "/p/v2/health/live", 513}, {"GET", "/p/v2/health/ready", 513}, {"GET", "/p/metrics", 200},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
		if rec.Code != c.status {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, rec.Code, c.status)
		}
		if c.status == 513 && rec.Body.String() != want {
			t.Errorf("%s %s: body %q", c.method, c.path, rec.Body.String())
		}
	}
	if h := newErrorHandler("", errors.New("plain"), nil, errorStatus()); h.msg != "ERROR: plain" {
		t.Errorf("msg %q", h.msg)
	}
}
