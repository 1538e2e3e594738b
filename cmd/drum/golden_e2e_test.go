package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/drum-go/drum/internal/goldentest"
)

// TestGoldenReplayE2E replays every recorded DRUM exchange (shared/golden/<model>/*.json)
// against the real binary serving the same model folder with the same arguments, and
// compares status, Content-Type, Location and the body: byte for byte, except for the
// volatile parts golden/README.md lists (the /stats/ body, the multipart boundary of
// /transform/ answers) and numbers that differ only in their last digits (within 1e-9,
// BLAS differences). /info/ carries drum's extra "drumMode" key and the real codeDir.

// goldenE2EAllowed lists recorded exchanges drum deliberately answers differently, with
// the reason. The test fails on any other mismatch.
var goldenE2EAllowed = map[string]string{}

// How cases matched, for the summary line.
var e2eHow = map[string]int{}

type e2eCase struct {
	Case   string `json:"case"`
	Server struct {
		Command string            `json:"command"`
		Env     map[string]string `json:"env"`
	} `json:"server"`
	Request struct {
		Method       string      `json:"method"`
		Path         string      `json:"path"`
		Headers      [][2]string `json:"headers"`
		Body         *string     `json:"body"`
		BodyB64      *string     `json:"body_base64"`
		BodyFile     *string     `json:"body_file"`
		BodyGen      string      `json:"body_generator"`
		BodyTransfer string      `json:"body_transfer"`
		BodySHA256   string      `json:"body_sha256"`
	} `json:"request"`
	Response struct {
		Status     int         `json:"status"`
		Headers    [][2]string `json:"headers"`
		Body       *string     `json:"body"`
		BodyB64    *string     `json:"body_base64"`
		BodySHA256 string      `json:"body_sha256"`
		Truncated  bool        `json:"body_truncated"`
	} `json:"response"`
}

func (c *e2eCase) respHeader(name string) string {
	for _, h := range c.Response.Headers {
		if h[0] == name {
			return h[1]
		}
	}
	return ""
}

func goldenDirE2E() string { return filepath.Join(sharedDir, "golden") }

// requestBody rebuilds the recorded request body, generating the 10 MiB ones.
func (c *e2eCase) requestBody(t *testing.T) []byte {
	t.Helper()
	r := c.Request
	var b []byte
	switch {
	case r.Body != nil:
		b = []byte(*r.Body)
	case r.BodyB64 != nil:
		var err error
		if b, err = base64.StdEncoding.DecodeString(*r.BodyB64); err != nil {
			t.Fatal(err)
		}
	case r.BodyFile != nil:
		var err error
		if b, err = os.ReadFile(filepath.Join(goldenDirE2E(), *r.BodyFile)); err != nil {
			t.Fatal(err)
		}
	case strings.HasPrefix(r.BodyGen, "header of "):
		src := strings.Fields(r.BodyGen)[2]
		src = strings.TrimSuffix(src, ",")
		raw, err := os.ReadFile(filepath.Join(goldenDirE2E(), src))
		if err != nil {
			t.Fatal(err)
		}
		head, rows, _ := bytes.Cut(raw, []byte("\n"))
		var buf bytes.Buffer
		buf.Write(head)
		buf.WriteByte('\n')
		for buf.Len() < 10485760 {
			buf.Write(rows)
		}
		b = buf.Bytes()
	case strings.Contains(r.BodyGen, "repeated 400 times, cut to 10485760 bytes"):
		raw, err := os.ReadFile(filepath.Join(goldenDirE2E(), strings.Fields(r.BodyGen)[0]))
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.Repeat(raw, 400)[:10485760]
	case r.BodyGen != "":
		t.Fatalf("cannot rebuild body: %s", r.BodyGen)
	}
	if r.BodySHA256 != "" {
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != r.BodySHA256 {
			t.Fatalf("rebuilt request body does not match its recorded sha256")
		}
	}
	return b
}

// serverArgs turns server.command into drum arguments (code dir and address replaced).
func serverArgs(command string) []string {
	f := strings.Fields(command)
	var out []string
	for i := 2; i < len(f); i++ {
		switch f[i] {
		case "--code-dir", "--address":
			i++
		default:
			out = append(out, f[i])
		}
	}
	return out
}

func TestGoldenReplayE2E(t *testing.T) {
	needPython(t)
	models := []string{"regression", "binary", "multiclass", "custom", "anomaly",
		"multilabel", "sparse", "textgen", "unstructured", "transform"}
	type modelRun struct {
		cases   []*e2eCase
		codeDir string
		s       *server
	}
	runs := map[string]*modelRun{}
	// Each model is served with the arguments and environment (server.env) its
	// recordings name.
	for _, model := range models {
		files, _ := filepath.Glob(filepath.Join(goldenDirE2E(), model, "*.json"))
		if len(files) == 0 {
			goldentest.Missing(t, "no golden recordings in %s", goldenDirE2E())
		}
		run := &modelRun{}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			c := &e2eCase{}
			if err := json.Unmarshal(b, c); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			run.cases = append(run.cases, c)
		}
		run.codeDir, _ = filepath.Abs(goldenModel(model))
		runs[model] = run
	}
	total, passed := 0, 0
	for _, model := range models {
		run := runs[model]
		t.Run(model, func(t *testing.T) {
			// One server at a time: on a small machine, loading ten models at once is
			// slower than one after the other.
			for k, v := range run.cases[0].Server.Env {
				t.Setenv(k, v)
			}
			run.s = startServerNoWait(t, run.codeDir, 1, serverArgs(run.cases[0].Server.Command)...)
			run.s.waitReady(60 * time.Second)
			ok := 0
			for _, c := range run.cases {
				key := model + "/" + c.Case
				t.Run(c.Case, func(t *testing.T) {
					err := replayE2E(t, run.s.addr, run.codeDir, c)
					switch {
					case err == nil:
						ok++
					case goldenE2EAllowed[key] != "":
						ok++
						t.Logf("allowed difference (%s): %v", goldenE2EAllowed[key], err)
					default:
						t.Error(err)
					}
				})
			}
			t.Logf("%s: passed %d/%d", model, ok, len(run.cases))
			total += len(run.cases)
			passed += ok
		})
	}
	t.Logf("golden replay through the real binary: passed %d/%d", passed, total)
	hows := make([]string, 0, len(e2eHow))
	for how := range e2eHow {
		hows = append(hows, how)
	}
	sort.Strings(hows)
	for _, how := range hows {
		t.Logf("  %3d %s", e2eHow[how], how)
	}
}

// replayE2E sends one recorded request on a fresh connection and compares the answer.
func replayE2E(t *testing.T, addr, codeDir string, c *e2eCase) error {
	body := c.requestBody(t)
	var req bytes.Buffer
	fmt.Fprintf(&req, "%s %s HTTP/1.1\r\n", c.Request.Method, c.Request.Path)
	hasHost := false
	for _, h := range c.Request.Headers {
		if strings.EqualFold(h[0], "Host") {
			hasHost = true
		}
		fmt.Fprintf(&req, "%s: %s\r\n", h[0], h[1])
	}
	if !hasHost {
		fmt.Fprintf(&req, "Host: 127.0.0.1:18090\r\n")
	}
	req.WriteString("Connection: close\r\n\r\n")
	if strings.HasPrefix(c.Request.BodyTransfer, "chunked") {
		for len(body) > 0 {
			n := min(1000, len(body))
			fmt.Fprintf(&req, "%x\r\n%s\r\n", n, body[:n])
			body = body[n:]
		}
		req.WriteString("0\r\n\r\n")
	} else {
		req.Write(body)
	}

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	go func() { _, _ = conn.Write(req.Bytes()) }()
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: c.Request.Method})
	if err != nil {
		return fmt.Errorf("read response: %v", err)
	}
	got, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	if rerr != nil && c.Response.Status == 200 && !strings.Contains(c.Case, "midway") {
		return fmt.Errorf("read body: %v", rerr)
	}

	if resp.StatusCode != c.Response.Status {
		return fmt.Errorf("status %d, want %d (body %.300q)", resp.StatusCode, c.Response.Status, got)
	}
	if resp.Header.Get("X-Drum-Version") == "" {
		return fmt.Errorf("no X-Drum-Version header")
	}
	if want := c.respHeader("Location"); want != resp.Header.Get("Location") {
		return fmt.Errorf("Location %q, want %q", resp.Header.Get("Location"), want)
	}
	gotCT, wantCT := resp.Header.Get("Content-Type"), c.respHeader("Content-Type")
	path, _, _ := strings.Cut(c.Request.Path, "?")
	var want []byte
	switch {
	case c.Response.Body != nil:
		want = []byte(*c.Response.Body)
	case c.Response.BodyB64 != nil:
		want, _ = base64.StdEncoding.DecodeString(*c.Response.BodyB64)
	case c.Response.Truncated:
		sum := sha256.Sum256(got)
		if hex.EncodeToString(sum[:]) != c.Response.BodySHA256 {
			return fmt.Errorf("body (%d bytes) differs from the recorded one (sha256)", len(got))
		}
		if gotCT != wantCT {
			return fmt.Errorf("Content-Type %q, want %q", gotCT, wantCT)
		}
		e2eHow["byte-identical (sha256 of a large body)"]++
		return nil
	}
	multipartBoundary := false
	if mt, params, _ := mime.ParseMediaType(wantCT); mt == "multipart/form-data" && c.Response.Status == 200 {
		multipartBoundary = true
		_, gparams, _ := mime.ParseMediaType(gotCT)
		gb, wb := gparams["boundary"], params["boundary"]
		if gb == "" {
			return fmt.Errorf("Content-Type %q, want a multipart answer", gotCT)
		}
		gotCT = strings.ReplaceAll(gotCT, gb, wb)
		got = bytes.ReplaceAll(got, []byte(gb), []byte(wb))
	}
	if gotCT != wantCT {
		return fmt.Errorf("Content-Type %q, want %q", gotCT, wantCT)
	}
	if path == "/stats/" && c.Response.Status == 200 {
		var v map[string]any
		if err := json.Unmarshal(got, &v); err != nil {
			return fmt.Errorf("/stats/ body is not JSON: %v", err)
		}
		e2eHow["/stats/ (volatile body: JSON only)"]++
		return nil
	}
	if path == "/info/" && c.Response.Status == 200 {
		var g, w map[string]any
		if json.Unmarshal(got, &g) != nil || json.Unmarshal(want, &w) != nil {
			return fmt.Errorf("/info/ body %q is not JSON", got)
		}
		// DRUM reports the code dir with symlinks resolved (os.path.realpath).
		want, err := filepath.EvalSymlinks(codeDir)
		if err != nil {
			return err
		}
		if g["codeDir"] != want {
			return fmt.Errorf("codeDir %v, want %s", g["codeDir"], want)
		}
		delete(g, "drumMode") // drum's deliberate addition: the real server mode
		g["codeDir"], w["codeDir"] = "", ""
		ws, _ := json.Marshal(w)
		gs, _ := json.Marshal(g)
		if !bytes.Equal(gs, ws) {
			return fmt.Errorf("/info/\n got %s\nwant %s", gs, ws)
		}
		e2eHow["/info/ (equal without drumMode, real codeDir)"]++
		return nil
	}
	if bytes.Equal(got, want) {
		if multipartBoundary {
			e2eHow["byte-identical after substituting the multipart boundary"]++
		} else {
			e2eHow["byte-identical"]++
		}
		return nil
	}
	if closeNumbers(got, want) {
		e2eHow["numbers within 1e-9"]++
		return nil
	}
	return fmt.Errorf("body\n got %.600q\nwant %.600q", got, want)
}

// closeNumbers reports whether a and b are the same text except for numbers that agree
// within 1e-9 (relative, or absolute near zero).
func closeNumbers(a, b []byte) bool {
	ta, tb := numTokens(string(a)), numTokens(string(b))
	if len(ta) != len(tb) {
		return false
	}
	for i := range ta {
		if ta[i] == tb[i] {
			continue
		}
		var x, y float64
		if _, err := fmt.Sscan(ta[i], &x); err != nil {
			return false
		}
		if _, err := fmt.Sscan(tb[i], &y); err != nil {
			return false
		}
		if math.Abs(x-y) > 1e-9*math.Max(1, math.Max(math.Abs(x), math.Abs(y))) {
			return false
		}
	}
	return true
}

// numTokens splits s into runs of number characters and runs of anything else.
func numTokens(s string) []string {
	isNum := func(c byte) bool {
		return c >= '0' && c <= '9' || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E'
	}
	var out []string
	start := 0
	for i := 1; i <= len(s); i++ {
		if i == len(s) || isNum(s[i]) != isNum(s[i-1]) {
			out = append(out, s[start:i])
			start = i
		}
	}
	return out
}

// TestErrorServerE2E: with --with-error-server a model that fails to load is served by
// DRUM's error server (spec §4.9): 513 with the load error on the liveness and prediction
// routes, 404 elsewhere, and the server counts as ready.
func TestErrorServerE2E(t *testing.T) {
	needPython(t)
	dir := t.TempDir()
	code := "def load_model(code_dir):\n    raise ValueError('boom')\n\ndef score(data, model, **kw):\n    pass\n"
	if err := os.WriteFile(filepath.Join(dir, "custom.py"), []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServerNoWait(t, dir, 1, "--target-type", "regression", "--with-error-server")
	s.waitReady(30 * time.Second)
	want := `{"message":"ERROR: An error occurred when loading your artifact: 'load_model' hook failed to load the model. Exception: ValueError('boom')"}` + "\n"
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/", 513}, {"GET", "/ping/", 513}, {"GET", "/ping", 513}, {"GET", "/health/", 513},
		{"POST", "/predict/", 513}, {"POST", "/predictions/", 513}, {"POST", "/invocations", 513},
		{"POST", "/transform/", 513}, {"POST", "/predictUnstructured/", 513},
		{"GET", "/info/", 404}, {"GET", "/capabilities/", 404}, {"POST", "/chat/completions", 404},
	} {
		req, _ := http.NewRequest(c.method, s.url(c.path), strings.NewReader("a\n1\n"))
		status, _, body := s.do(req)
		if status != c.status {
			t.Errorf("%s %s: status %d, want %d", c.method, c.path, status, c.status)
		}
		if c.status == 513 && string(body) != want {
			t.Errorf("%s %s: body %q, want %q", c.method, c.path, body, want)
		}
	}
}

// TestScoreUnstructuredAndTransformE2E: drum score for the unstructured and transform
// golden models (spec §2.3): raw hook output for unstructured (with --content-type and
// --query), the transformed frame as CSV for transform.
func TestScoreUnstructuredAndTransformE2E(t *testing.T) {
	needPython(t)
	out := filepath.Join(t.TempDir(), "out")
	run := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(drumBin, append([]string{"score"}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("drum score %v: %v\n%s", args, err, stderr.String())
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	u := goldenModel("unstructured")
	got := run("--code-dir", u, "--target-type", "unstructured", "--input", filepath.Join(u, "requests", "X_5.txt"),
		"--query", "a=1&a=2", "--output", out)
	var doc map[string]any
	if err := json.Unmarshal(got, &doc); err != nil {
		t.Fatalf("unstructured output %q: %v", got, err)
	}
	if doc["mimetype"] != "text/plain" || doc["charset"] != "utf8" || fmt.Sprint(doc["query"]) != "map[a:2]" {
		t.Errorf("hook kwargs as reported: %s", got)
	}
	in, _ := os.ReadFile(filepath.Join(u, "requests", "X_5.txt"))
	got = run("--code-dir", u, "--target-type", "unstructured", "--input", filepath.Join(u, "requests", "X_5.txt"),
		"--content-type", "application/octet-stream", "--output", out)
	for i := range in {
		if len(got) != len(in) || got[i] != in[len(in)-1-i] {
			t.Fatalf("bytes output %q is not the input reversed", got)
		}
	}
	tr := goldenModel("transform")
	got = run("--code-dir", tr, "--target-type", "transform", "--input", filepath.Join(tr, "requests", "X_1.csv"), "--output", out)
	want := "alcohol,malic_acid,ash,alcalinity_of_ash,magnesium,total_phenols,flavanoids,nonflavanoid_phenols,proanthocyanins,color_intensity,hue,od280/od315_of_diluted_wines,proline\n" +
		"1.518613,-0.56225,0.232053,-1.169593,1.913905,0.808997,1.034819,-0.659563,1.224884,0.251717,0.362177,1.84792,1.013009\n"
	if string(got) != want {
		t.Errorf("transform output\n got %q\nwant %q", got, want)
	}
}

// TestChatStreamingE2E: a streamed chat answer reaches the client chunk by chunk, while
// the hook is still producing (the hook waits for a file the test writes only after the
// first chunk arrived), and a hook that fails midway cuts the answer off without
// "data: [DONE]" and without the terminating chunk.
func TestChatStreamingE2E(t *testing.T) {
	needPython(t)
	dir := t.TempDir()
	code := `import json, os, time

class Chunk:
    object = "chat.completion.chunk"
    def __init__(self, c):
        self.c = c
    def to_json(self, indent=None):
        return json.dumps({"c": self.c}, separators=(",", ":"))

def load_model(code_dir):
    return code_dir

def score(data, model, **kwargs):
    raise NotImplementedError

def chat(params, model, **kwargs):
    def gen():
        yield Chunk("first")
        if params.get("fail"):
            raise RuntimeError("failing midway as asked")
        gate = os.path.join(model, "gate")
        for _ in range(300):
            if os.path.exists(gate):
                break
            time.sleep(0.1)
        yield Chunk("second")
    return gen()
`
	if err := os.WriteFile(filepath.Join(dir, "custom.py"), []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TARGET_NAME", "completion")
	s := startServerNoWait(t, dir, 1, "--target-type", "textgeneration")
	s.waitReady(30 * time.Second)

	send := func(body string) (*bufio.Reader, net.Conn) {
		conn, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		fmt.Fprintf(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		return bufio.NewReader(conn), conn
	}

	br, conn := send(`{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"datarobot_association_id":"a1"}`)
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second)) // the gate is never written before "first"
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream; charset=utf-8" || resp.ContentLength != -1 {
		t.Fatalf("answer %d %q length %d", resp.StatusCode, ct, resp.ContentLength)
	}
	rd := bufio.NewReader(resp.Body)
	first, err := rd.ReadString('\n')
	if err != nil {
		t.Fatalf("first chunk not delivered while the hook was still running: %v", err)
	}
	if !strings.HasPrefix(first, `data: {"c":"first"`) {
		t.Fatalf("first line %q", first)
	}
	if err := os.WriteFile(filepath.Join(dir, "gate"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(rd)
	if err != nil {
		t.Fatalf("rest of the stream: %v", err)
	}
	if !strings.Contains(string(rest), `"c":"second"`) || !strings.HasSuffix(string(rest), "data: [DONE]\n\n") {
		t.Errorf("rest of the stream %q", rest)
	}

	br, conn = send(`{"model":"m","messages":[],"stream":true,"fail":true,"datarobot_association_id":"a1"}`)
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || err == nil || !strings.HasPrefix(string(got), `data: {"c":"first"`) || strings.Contains(string(got), "[DONE]") {
		t.Errorf("failing stream: %d %q (read error %v), want the first chunk, then a cut", resp.StatusCode, got, err)
	}
}
