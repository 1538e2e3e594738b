package deploy

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drum-go/drum/internal/testnet"
	"github.com/drum-go/drum/worker/predictor"
)

// TestProbesAnswerOnRealServer starts the real drum binary with the pod's environment
// (image ENV + Deployment env, the Deployment's args) and GETs every probe path and the
// Prometheus scrape path on the container port's stand-in: each must answer 200.
func TestProbesAnswerOnRealServer(t *testing.T) {
	python, err := predictor.FindPython("")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no Python with pandas: %v", err)
		}
		t.Skipf("PYTHON WITH PANDAS NOT FOUND — TEST NOT RUN: %v", err)
	}
	ins := readDockerfile(t)
	model := tinyModel(t)
	p, err := loadPodSpec(loadManifests(t), ins, model)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "drum")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/drum").CombinedOutput(); err != nil {
		t.Fatalf("build drum: %v\n%s", err, out)
	}
	addr := testnet.FreeAddr(t)
	env := []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range p.env {
		env = append(env, k+"="+v)
	}
	// Stand-ins for what the pod provides: the mounted model, a writable /tmp, the
	// container port (on loopback), the image's Python.
	env = append(env, "CODE_DIR="+model, "TMPDIR="+dir, "HOME="+dir, "ADDRESS="+addr, "DRUM_PYTHON="+python)
	args := p.c.Args
	if len(args) == 0 {
		args = []string{"server"}
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})

	paths := map[string]string{"prometheus.io/path": p.dep.Spec.Template.Metadata.Annotations["prometheus.io/path"]}
	for name, pr := range p.probes() {
		paths[name+" probe"] = pr.HTTPGet.Path
	}
	client := &http.Client{Timeout: 5 * time.Second}
	get := func(path string) (int, string) {
		resp, err := client.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// The startup probe's own path tells when the model has loaded.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if st, _ := get(p.c.StartupProbe.HTTPGet.Path); st == http.StatusOK {
			break
		}
		select {
		case <-done:
			t.Fatalf("drum exited before it was ready:\n%s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("drum not ready after 60 s:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	for what, path := range paths {
		st, body := get(path)
		if st != http.StatusOK {
			t.Errorf("%s %s: %d %.200s", what, path, st, body)
		}
		if what == "prometheus.io/path" && !strings.Contains(body, "drum_build_info") {
			t.Errorf("%s %s is not drum's metrics: %.200s", what, path, body)
		}
	}
}
