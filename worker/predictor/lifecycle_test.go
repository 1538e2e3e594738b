package predictor

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"
)

// echoRequest asks echoModel for the value v, after sleeping s seconds.
func echoRequest(v string, sleep string) *Request {
	return &Request{Op: "predict", Format: "csv", Payload: []byte("x,sleep\n" + v + "," + sleep + "\n")}
}

func startEcho(t *testing.T) *Python {
	t.Helper()
	cfg := modelConfig(t, writeModel(t, map[string]string{"custom.py": echoModel}), goldenModel{target: "regression"})
	cfg.Logger = testLogger(t)
	p, err := startTemp(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func callValue(t *testing.T, p *Python, ctx context.Context, req *Request) float64 {
	t.Helper()
	res, err := p.Call(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Values) != 1 {
		t.Fatalf("got %+v", res)
	}
	return res.Values[0]
}

func TestKilledMidCall(t *testing.T) {
	t.Parallel()
	p := startEcho(t)
	go func() {
		time.Sleep(300 * time.Millisecond)
		syscall.Kill(p.Pid(), syscall.SIGKILL)
	}()
	_, err := p.Call(context.Background(), echoRequest("1", "30"))
	var de *DiedError
	if !errors.As(err, &de) {
		t.Fatalf("want *DiedError, got %v", err)
	}
	if de.Pid != p.Pid() || de.Reason != "signal: killed" {
		t.Errorf("got %+v", de)
	}
	select {
	case <-p.Done():
	default:
		t.Error("Done not closed after the predictor died")
	}
	if _, err := p.Call(context.Background(), echoRequest("1", "0")); !errors.As(err, &de) {
		t.Errorf("call on a dead predictor: want *DiedError, got %v", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close of a dead predictor: %v", err)
	}
}

func TestDeadlineKillsPredictor(t *testing.T) {
	t.Parallel()
	p := startEcho(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := p.Call(ctx, echoRequest("1", "30"))
	var te *TimeoutError
	if !errors.As(err, &te) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want *TimeoutError wrapping DeadlineExceeded, got %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("timeout took %s", d)
	}
	select {
	case <-p.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("timed-out predictor still running")
	}
	// An expired context fails at once, without sending anything.
	if _, err := p.Call(ctx, echoRequest("1", "0")); err == nil {
		t.Error("call with an expired deadline succeeded")
	}
	// The owner replaces it; the fresh one works.
	fresh := startEcho(t)
	if v := callValue(t, fresh, context.Background(), echoRequest("42", "0")); v != 42 {
		t.Errorf("fresh predictor answered %v", v)
	}
}

// A cancelled (not timed-out) call leaves the predictor running; its late reply must be
// dropped, never handed to the next call.
func TestCancelledCallReplyIsDropped(t *testing.T) {
	t.Parallel()
	p := startEcho(t)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(200 * time.Millisecond); cancel() }()
	_, err := p.Call(ctx, echoRequest("1", "0.8"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	if v := callValue(t, p, context.Background(), echoRequest("2", "0")); v != 2 {
		t.Fatalf("next call got %v: a stale reply was delivered", v)
	}
	if v := callValue(t, p, context.Background(), echoRequest("3", "0")); v != 3 {
		t.Fatalf("third call got %v", v)
	}
	// A context that expired before the call is refused without harming the predictor.
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	if _, err := p.Call(expired, echoRequest("4", "0")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("expired context: %v", err)
	}
	if v := callValue(t, p, context.Background(), echoRequest("5", "0")); v != 5 {
		t.Fatalf("call after an expired context got %v", v)
	}
}

// A reply frame with an id nobody waits for (written by user code straight onto fd 4)
// is dropped.
func TestStrayReplyIsDropped(t *testing.T) {
	t.Parallel()
	p := startEcho(t)
	if v := callValue(t, p, context.Background(), echoRequest("5", "0")); v != 5 {
		t.Fatalf("got %v", v)
	}
	res, err := p.Call(context.Background(), &Request{Op: "predict", Format: "csv", Payload: []byte("x,stray\n6,1\n")})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Values) != 1 || res.Values[0] != 6 {
		t.Fatalf("got %+v, want the real reply (6)", res)
	}
}

func TestCloseIsClean(t *testing.T) {
	t.Parallel()
	p := startEcho(t)
	start := time.Now()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Close took %s", d)
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
	if p.proc.state == nil || p.proc.state.ExitCode() != 0 {
		t.Errorf("predictor exit: %v", p.proc.reason())
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestCloseKillsBusyPredictor(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the 5 s close timeout")
	}
	t.Parallel()
	p := startEcho(t)
	go p.Call(context.Background(), echoRequest("1", "60"))
	time.Sleep(300 * time.Millisecond)
	err := p.Close()
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("Close of a busy predictor: %v", err)
	}
}
