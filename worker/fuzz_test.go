package worker

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/drum-go/drum/config"
	"github.com/drum-go/drum/worker/predictor"
)

// FuzzExtractInput sends arbitrary Content-Types and bodies through the predict route:
// it must never panic and always answer with DRUM's JSON shapes.
func FuzzExtractInput(f *testing.F) {
	f.Add("multipart/form-data; boundary=bnd", []byte(mpBody(filePart("X", "x.mtx", "m"), filePart("X.colnames", "c", "a\nb"))))
	f.Add("multipart/form-data; boundary=bnd", []byte("--bnd\nContent-Disposition: form-data; name=X; filename*=utf-8''a\n\nx\n--bnd--"))
	f.Add("text/csv; charset*=utf-8''%FF", []byte("a\n1\n"))
	f.Add("multipart/form-data", []byte("a\n1\n"))
	f.Add("application/x-www-form-urlencoded", []byte("X=1"))
	f.Add("", []byte{})
	if file, err := os.Open("testdata/werkzeug_input.jsonl"); err == nil {
		sc := bufio.NewScanner(file)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for i := 0; sc.Scan() && i < 60; i++ {
			var c struct {
				CT   *string
				Body string
			}
			if json.Unmarshal(sc.Bytes(), &c) == nil && c.CT != nil {
				b, _ := base64.StdEncoding.DecodeString(c.Body)
				f.Add(*c.CT, b)
			}
		}
		file.Close()
	}

	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		p := newFake(predictor.Info{})
		h := newTestHandler(config.Config{TargetType: config.TargetRegression}, p)
		r := httptest.NewRequest(http.MethodPost, "/predict/", strings.NewReader(string(body)))
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)

		switch w.Code {
		case 200:
			if p.calls.Load() != 1 || w.Body.String() != `{"predictions":[1.0]}` {
				t.Fatalf("200 without a prediction: %q", w.Body)
			}
			req := p.lastRequest()
			if req.Format != "csv" && req.Format != "mtx" {
				t.Fatalf("format %q", req.Format)
			}
		case 422, 500:
			var m map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil || len(m) != 1 || m["message"] == "" ||
				!strings.HasSuffix(w.Body.String(), "\n") {
				t.Fatalf("%d body %q", w.Code, w.Body)
			}
			if p.calls.Load() != 0 {
				t.Fatal("an error answer after calling the predictor")
			}
		default:
			t.Fatalf("status %d: %q", w.Code, w.Body)
		}
		if w.Header()["X_Request_ID"] == nil || w.Header().Get("Content-Type") != contentTypeJSON {
			t.Fatalf("headers %v", w.Header())
		}
	})
}
