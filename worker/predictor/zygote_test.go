package predictor

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestZygoteEnvCapsPools(t *testing.T) {
	env := []string{"PATH=/bin", "OMP_NUM_THREADS=4", "OPENBLAS_NUM_THREADSX=9"}
	got := zygoteEnv(env)
	for _, want := range []string{"PATH=/bin", "OPENBLAS_NUM_THREADSX=9", "OMP_NUM_THREADS=1", "OPENBLAS_NUM_THREADS=1",
		"MKL_NUM_THREADS=1", "NUMEXPR_NUM_THREADS=1", "PYTHONUNBUFFERED=1"} {
		if !slices.Contains(got, want) {
			t.Errorf("zygote env %v lacks %s", got, want)
		}
	}
	if slices.Contains(got, "OMP_NUM_THREADS=4") {
		t.Errorf("zygote env %v keeps the user's pool size", got)
	}

	meta, err := zygoteMeta("/models/m", env, "debug")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		CodeDir  string             `json:"code_dir"`
		LogLevel string             `json:"log_level"`
		Pools    map[string]*string `json:"pool_env"`
	}
	if err := json.Unmarshal(meta, &m); err != nil {
		t.Fatal(err)
	}
	if m.CodeDir != "/models/m" || m.LogLevel != "debug" || len(m.Pools) != len(poolVars) ||
		m.Pools["OMP_NUM_THREADS"] == nil || *m.Pools["OMP_NUM_THREADS"] != "4" || m.Pools["OPENBLAS_NUM_THREADS"] != nil {
		t.Fatalf("zygote meta %s", meta)
	}
}

// fakeZygote answers each fork request on the returned ForkServer with answer (nil: it
// closes the status socket without a word); it checks the request's shape first.
func fakeZygote(t *testing.T, answer func(status int)) *ForkServer {
	t.Helper()
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := NewForkServer(os.NewFile(uintptr(pair[0]), "fork"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close(); unix.Close(pair[1]) })
	go func() {
		buf, oob := make([]byte, 1<<16), make([]byte, unix.CmsgSpace(8*4))
		for {
			n, oobn, _, _, err := unix.Recvmsg(pair[1], buf, oob, 0)
			if err != nil || n == 0 {
				return
			}
			msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
			var fds []int
			for _, m := range msgs {
				got, _ := unix.ParseUnixRights(&m)
				fds = append(fds, got...)
			}
			var req forkRequest
			if err := json.Unmarshal(buf[:n], &req); err != nil || len(fds) != 6 || req.WorkerPid != os.Getpid() ||
				!json.Valid(req.Boot) || !slices.Contains(req.Env, "PYTHONUNBUFFERED=1") {
				t.Errorf("fork request %s with %d fds", buf[:n], len(fds))
			}
			for _, fd := range fds[:5] {
				unix.Close(fd)
			}
			if answer != nil {
				answer(fds[5])
			}
			unix.Close(fds[5])
		}
	}()
	return fs
}

func TestForkServerUnavailable(t *testing.T) {
	cfg := Config{Python: "/nonexistent/python", CodeDir: "/m", TargetType: "regression", LoadTimeout: 10 * time.Second}
	for name, tc := range map[string]struct {
		answer func(int)
		want   string
	}{
		"refusal":        {func(fd int) { unix.Sendmsg(fd, []byte(`{"error":"not single-threaded"}`), nil, nil, 0) }, "not single-threaded"},
		"silent exit":    {nil, "the zygote exited"},
		"garbage":        {func(fd int) { unix.Sendmsg(fd, []byte(`pid=4`), nil, nil, 0) }, "undecodable zygote answer"},
		"pid, no pidfd":  {func(fd int) { unix.Sendmsg(fd, []byte(`{"pid":4}`), nil, nil, 0) }, "malformed answer (pid 4, 0 descriptors)"},
		"no pid, a pidf": {func(fd int) { unix.Sendmsg(fd, []byte(`{}`), unix.UnixRights(0), nil, 0) }, "malformed answer (pid 0, 1 descriptors)"},
	} {
		t.Run(name, func(t *testing.T) {
			fs := fakeZygote(t, tc.answer)
			_, err := fs.Start(context.Background(), cfg)
			var fu *ForkUnavailableError
			if !errors.As(err, &fu) || !strings.Contains(fu.Reason, tc.want) {
				t.Fatalf("got %v, want *ForkUnavailableError containing %q", err, tc.want)
			}
		})
	}
}

func TestForkServerGone(t *testing.T) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(pair[1]) // no zygote at the other end
	fs, err := NewForkServer(os.NewFile(uintptr(pair[0]), "fork"))
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	_, err = fs.Start(context.Background(), Config{Python: "python3", CodeDir: "/m", TargetType: "regression"})
	var fu *ForkUnavailableError
	if !errors.As(err, &fu) || !strings.Contains(fu.Reason, "send fork request") {
		t.Fatalf("got %v, want *ForkUnavailableError about the send", err)
	}
}

func TestForkServerTimesOut(t *testing.T) {
	fs := fakeZygote(t, func(int) { time.Sleep(2 * time.Second) }) // busy: never answers in time
	_, err := fs.Start(context.Background(), Config{Python: "python3", CodeDir: "/m", TargetType: "regression",
		LoadTimeout: 200 * time.Millisecond})
	var fu *ForkUnavailableError
	if errors.As(err, &fu) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want a deadline error (not a fallback)", err)
	}
}

func TestNewForkServerRejectsNonSocket(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := NewForkServer(r); err == nil {
		t.Fatal("a pipe was accepted as the fork socket")
	}
}
