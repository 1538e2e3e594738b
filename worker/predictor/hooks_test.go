package predictor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// kitchenModel exercises every structured hook; the "mode" column picks a behaviour.
const kitchenModel = `import io, json, sys
import pandas as pd

class CustomHTTPError(Exception):
    """Stands in for datarobot_drum.CustomHTTPError (same name, status_code attribute)."""
    def __init__(self, message, status_code=400):
        super().__init__(message)
        self.status_code = status_code

CALLS = []

def init(code_dir):
    CALLS.append("init")

def load_model(code_dir):
    CALLS.append("load_model")
    return {"scale": 2.0}

def read_input_data(raw):
    CALLS.append("read_input_data")
    if raw.startswith(b"{"):
        return pd.DataFrame(json.loads(raw))
    if raw.startswith(b"!"):
        raise ValueError("unreadable")
    return pd.read_csv(io.BytesIO(raw))

def transform(data, model):
    CALLS.append("transform")
    if data["mode"].iloc[0] == "transform_fail":
        raise KeyError("in transform")
    return data

def score(data, model, **kwargs):
    CALLS.append("score")
    mode = data["mode"].iloc[0]
    x = data["x"].astype(float)
    if mode == "print":
        print("hello from user code")
        print("user complaint", file=sys.stderr)
        import logging
        logging.getLogger("user").warning("user warning record")
    if mode == "user_error":
        raise CustomHTTPError("teapot says no", status_code=418)
    if mode == "list":
        return [1.0]
    if mode == "strings":
        return pd.DataFrame({"Predictions": ["abc"] * len(x)})
    if mode == "extra":
        return pd.DataFrame({"Predictions": x * model["scale"], "note": ["n%d" % i for i in range(len(x))]})
    if mode == "calls":
        raise CustomHTTPError(",".join(CALLS), status_code=299)
    if mode == "kwargs":
        shown = {k: (v.value if k == "target_type" else v) for k, v in kwargs.items() if k != "binary_data"}
        shown["binary_data"] = len(kwargs["binary_data"])
        raise CustomHTTPError(json.dumps(shown, sort_keys=True), status_code=299)
    return pd.DataFrame({"Predictions": x * model["scale"]})

def post_process(predictions, model):
    CALLS.append("post_process")
    return predictions + 0.5
`

// labelModel is a binary model whose score hook returns the columns the "mode" asks for.
const labelModel = `import pandas as pd

def load_model(code_dir):
    return "labels"

def score(data, model, **kwargs):
    mode = data["mode"].iloc[0]
    if mode == "bools":      # model labels False/True vs configured "yes"/"no"
        return pd.DataFrame([[0.25, 0.75]], columns=[False, True])
    if mode == "reversed":   # model order differs from the configured order
        return pd.DataFrame([[0.9, 0.1]], columns=["YES", "no"])
    if mode == "mismatch":
        return pd.DataFrame([[0.5, 0.5]], columns=["cat", "dog"])
    if mode == "sum":
        return pd.DataFrame([[0.5, 0.6]], columns=["no", "yes"])
    if mode == "negative":
        return pd.DataFrame([[-0.1, 1.1]], columns=["no", "yes"])
    if mode == "three":
        return pd.DataFrame([[0.4, 0.6, 0.5]], columns=["no", "yes", "extra"])
    raise ValueError("unknown mode " + mode)
`

var (
	kitchenOnce sync.Once
	kitchen     *Python
	kitchenLogs *lockedBuffer
	kitchenErr  error
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func kitchenPredictor(t *testing.T) *Python {
	t.Helper()
	needPython(t)
	kitchenOnce.Do(func() {
		dir := writeModel(t, map[string]string{"sub/custom.py": kitchenModel})
		cfg := modelConfig(t, dir, goldenModel{target: "regression"})
		kitchenLogs = &lockedBuffer{}
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: kitchenLogs})
		kitchen, kitchenErr = StartPython(context.Background(), cfg)
		if kitchenErr == nil {
			sharedMu.Lock()
			shared["kitchen"] = kitchen
			sharedMu.Unlock()
		}
	})
	if kitchenErr != nil {
		t.Fatal(kitchenErr)
	}
	return kitchen
}

func csvReq(rows string) *Request {
	return &Request{Op: "predict", MimeType: "text/csv", Format: "csv", Payload: []byte(rows)}
}

func wantModelError(t *testing.T, err error, status int, msg string, user bool) {
	t.Helper()
	var me *ModelError
	if !errors.As(err, &me) {
		t.Fatalf("want *ModelError, got %v", err)
	}
	if me.Status != status || me.Message != msg || me.UserError != user {
		t.Errorf("got %d %q user=%v\nwant %d %q user=%v", me.Status, me.Message, me.UserError, status, msg, user)
	}
}

func TestHooks(t *testing.T) {
	p := kitchenPredictor(t)
	ctx := context.Background()
	info := p.Info()
	if info.Predictor != "" || !info.HasHook("read_input_data") || !info.HasHook("post_process") || info.HasHook("chat") {
		t.Errorf("info %+v", info)
	}

	t.Run("pipeline", func(t *testing.T) {
		res, err := p.Call(ctx, csvReq("x,mode\n1,plain\n2.5,plain\n"))
		if err != nil {
			t.Fatal(err)
		}
		checkResult(t, res, []string{"Predictions"}, []float64{2.5, 5.5})
	})
	t.Run("read_input_data gets raw bytes", func(t *testing.T) {
		res, err := p.Call(ctx, &Request{Op: "predict", MimeType: "application/json", Payload: []byte(`{"x":[4],"mode":["plain"]}`)})
		if err != nil {
			t.Fatal(err)
		}
		checkResult(t, res, []string{"Predictions"}, []float64{8.5})
	})
	t.Run("call order", func(t *testing.T) {
		_, err := p.Call(ctx, csvReq("x,mode\n1,calls\n"))
		var me *ModelError
		if !errors.As(err, &me) || !strings.HasPrefix(me.Message, "init,load_model,") ||
			!strings.HasSuffix(me.Message, "read_input_data,transform,score") {
			t.Fatalf("hook calls: %v", err)
		}
	})
	t.Run("score kwargs", func(t *testing.T) {
		payload := "x,mode\n1,kwargs\n"
		_, err := p.Call(ctx, &Request{Op: "predict", MimeType: "text/csv", Charset: "utf-8", Format: "csv", Payload: []byte(payload)})
		var me *ModelError
		if !errors.As(err, &me) {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(me.Message), &got); err != nil {
			t.Fatalf("%q: %v", me.Message, err)
		}
		want := map[string]any{"binary_data": float64(len(payload)), "charset": "utf-8", "mimetype": "text/csv",
			"sparse_colnames": nil, "target_type": "regression"}
		if !jsonEqual(got, want) {
			t.Errorf("kwargs %v, want %v", got, want)
		}
		// A multipart file part: DRUM passes mimetype None.
		_, err = p.Call(ctx, &Request{Op: "predict", NoMimeType: true, Format: "csv", Payload: []byte(payload)})
		if !errors.As(err, &me) || !strings.Contains(me.Message, `"mimetype": null`) {
			t.Errorf("multipart kwargs: %v", err)
		}
	})
	t.Run("user error", func(t *testing.T) {
		_, err := p.Call(ctx, csvReq("x,mode\n1,user_error\n"))
		wantModelError(t, err, 418, "teapot says no", true)
	})
	t.Run("wrapped errors", func(t *testing.T) {
		_, err := p.Call(ctx, csvReq("x,mode\n1,transform_fail\n"))
		wantModelError(t, err, 500, `ERROR: Model 'transform hook' failed to transform dataset. Exception: KeyError('in transform')`, false)
		_, err = p.Call(ctx, &Request{Op: "predict", Payload: []byte("!")})
		wantModelError(t, err, 500, `ERROR: Model 'read_input_data' hook failed to read input data. Exception: ValueError('unreadable')`, false)
		_, err = p.Call(ctx, csvReq("x,mode\n1,list\n"))
		wantModelError(t, err, 500, `ERROR: score must return a dataframe, but received <class 'list'>`, false)
		_, err = p.Call(ctx, csvReq("x,mode\n1,strings\n"))
		wantModelError(t, err, 500, `ERROR: Model 'post_process' hook failed to post-process predictions. `+
			`Exception: TypeError('can only concatenate str (not "float") to str')`, false)
	})
	t.Run("extra model output", func(t *testing.T) {
		res, err := p.Call(ctx, csvReq("x,mode\n1,extra\n3,extra\n"))
		if err != nil {
			t.Fatal(err)
		}
		checkResult(t, res, []string{"Predictions"}, []float64{2.5, 6.5})
		if want := `{"columns":["note"],"index":[0,1],"data":[["n0"],["n1"]]}`; string(res.ExtraModelOutput) != want {
			t.Errorf("extra output %s, want %s", res.ExtraModelOutput, want)
		}
		res, err = p.Call(ctx, &Request{Op: "score", Format: "csv", ScoreOutput: "csv", Payload: []byte("x,mode\n1,extra\n")})
		if err != nil {
			t.Fatal(err)
		}
		if want := "Predictions,note\n2.5,n0\n"; string(res.Body) != want {
			t.Errorf("score CSV %q, want %q", res.Body, want)
		}
	})
	t.Run("user output is logged", func(t *testing.T) {
		if _, err := p.Call(ctx, csvReq("x,mode\n1,print\n")); err != nil {
			t.Fatal(err)
		}
		// Output travels on other pipes than the reply; give it a moment.
		for range 50 {
			if strings.Contains(kitchenLogs.String(), "user warning record") {
				break
			}
			sleepMs(20)
		}
		logs := kitchenLogs.String()
		for _, want := range []string{
			"[INFO]  hello from user code: predictor_pid=",
			"[WARN]  user complaint: predictor_pid=",
			"[WARN]  user warning record: predictor_pid=",
		} {
			if !strings.Contains(logs, want) {
				t.Errorf("logs lack %q:\n%s", want, logs)
			}
		}
	})
}

func TestLabelMatching(t *testing.T) {
	t.Parallel()
	cfg := modelConfig(t, writeModel(t, map[string]string{"custom.py": labelModel}),
		goldenModel{target: "binary", pos: "yes", neg: "no"})
	p, err := startTemp(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	call := func(mode string) (*Result, error) { return p.Call(ctx, csvReq("mode\n"+mode+"\n")) }

	// Model column order wins, renamed to the configured spelling (yes ≡ 1 ≡ True).
	res, err := call("bools")
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res, []string{"no", "yes"}, []float64{0.25, 0.75})
	res, err = call("reversed")
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res, []string{"yes", "no"}, []float64{0.9, 0.1})

	_, err = call("mismatch")
	wantModelError(t, err, 500, "ERROR: Expected predictions to have columns ['yes', 'no'], but encountered Index(['cat', 'dog'], dtype='object')", false)
	_, err = call("sum")
	wantModelError(t, err, 500, "ERROR: Your prediction probabilities do not add up to 1. \n[[0.5 0.6]]", false)
	_, err = call("negative")
	wantModelError(t, err, 500, "ERROR: Your prediction probabilities have negative values", false)
	res, err = call("three") // extra column split off by exact name, then labels match
	if err != nil {
		t.Fatalf("extra column: %v", err)
	}
	checkResult(t, res, []string{"no", "yes"}, []float64{0.4, 0.6})
	if want := `{"columns":["extra"],"index":[0],"data":[[0.5]]}`; string(res.ExtraModelOutput) != want {
		t.Errorf("extra output %s, want %s", res.ExtraModelOutput, want)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
