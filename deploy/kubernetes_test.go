package deploy

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drum-go/drum/config"
)

// podEnv is the drum container's environment in the pod: the image's ENV overlaid with
// the Deployment's env.
func podEnv(ins []instruction, c container) map[string]string {
	env := dockerEnv(ins)
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	return env
}

// podConfig is the Config drum builds inside the pod, read by the real config package;
// codeDir stands in for the mounted model folder.
func podConfig(env map[string]string, codeDir string) (*config.Config, error) {
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	return config.Build(config.Flags{Command: config.CommandServer, CodeDir: codeDir,
		TargetType: env["TARGET_TYPE"], Address: env["ADDRESS"]}, lookup)
}

// tinyModel is a model folder drum can load with pandas alone.
func tinyModel(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	code := "import pandas as pd\n\ndef load_model(code_dir):\n    return 'm'\n\n" +
		"def score(data, model, **kwargs):\n    return pd.DataFrame({'Predictions': [1.0] * len(data)})\n"
	if err := os.WriteFile(filepath.Join(dir, "custom.py"), []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// podSpec is what the checks read from the manifests and the Dockerfile.
type podSpec struct {
	dep     deployment
	depName string
	svc     service
	pdb     pdb
	hpa     hpa
	c       container
	port    int // the container port named http
	env     map[string]string
	cfg     *config.Config
}

func loadPodSpec(objs []object, ins []instruction, codeDir string) (*podSpec, error) {
	p := &podSpec{}
	for kind, v := range map[string]any{"Deployment": &p.dep, "Service": &p.svc, "PodDisruptionBudget": &p.pdb, "HorizontalPodAutoscaler": &p.hpa} {
		if err := decodeKind(objs, kind, v); err != nil {
			return nil, err
		}
	}
	for _, o := range objs {
		if o.Kind == "Deployment" {
			p.depName = o.Metadata.Name
		}
	}
	cs := p.dep.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		return nil, fmt.Errorf("Deployment has %d containers, want drum alone", len(cs))
	}
	p.c = cs[0]
	for _, port := range p.c.Ports {
		if port.Name == "http" {
			p.port = port.ContainerPort
		}
	}
	p.env = podEnv(ins, p.c)
	var err error
	if p.cfg, err = podConfig(p.env, codeDir); err != nil {
		return nil, fmt.Errorf("drum would not start with the pod's environment: %w", err)
	}
	return p, nil
}

// probePort resolves a probe's or Service's port against the container's ports.
func (p *podSpec) resolve(port intOrString) int {
	if port.name == "" {
		return port.num
	}
	for _, cp := range p.c.Ports {
		if cp.Name == port.name {
			return cp.ContainerPort
		}
	}
	return 0
}

func (p *podSpec) probes() map[string]*probe {
	return map[string]*probe{"startup": p.c.StartupProbe, "liveness": p.c.LivenessProbe, "readiness": p.c.ReadinessProbe}
}

// preStopSeconds is the preStop sleep, the time the endpoints controller gets to take
// the pod out of the Service before SIGTERM starts the drain.
func (p *podSpec) preStopSeconds() (int, error) {
	ps := p.c.Lifecycle.PreStop
	if ps == nil || ps.Exec == nil || len(ps.Exec.Command) != 2 || filepath.Base(ps.Exec.Command[0]) != "sleep" {
		return 0, errors.New("no preStop sleep: the pod would stop taking requests before the Service stops sending them")
	}
	return strconv.Atoi(ps.Exec.Command[1])
}

// checkPod checks the manifests against each other, the image and drum's real config.
func checkPod(p *podSpec, ins []instruction) error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	tmpl := p.dep.Spec.Template.Metadata.Labels

	// Labels and selectors.
	if !subset(p.dep.Spec.Selector.MatchLabels, tmpl) {
		fail("Deployment selector %v does not match its pod labels %v", p.dep.Spec.Selector.MatchLabels, tmpl)
	}
	if !subset(p.svc.Spec.Selector, tmpl) {
		fail("Service selector %v does not select the pods (%v)", p.svc.Spec.Selector, tmpl)
	}
	if !subset(p.pdb.Spec.Selector.MatchLabels, tmpl) {
		fail("PodDisruptionBudget selector %v does not select the pods (%v)", p.pdb.Spec.Selector.MatchLabels, tmpl)
	}
	ref := p.hpa.Spec.ScaleTargetRef
	if ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || ref.Name != p.depName {
		fail("HPA scales %s %s %s, not the Deployment %s", ref.APIVersion, ref.Kind, ref.Name, p.depName)
	}
	if p.hpa.Spec.MinReplicas < 2 || p.hpa.Spec.MaxReplicas < p.hpa.Spec.MinReplicas || len(p.hpa.Spec.Metrics) == 0 {
		fail("HPA replicas %d-%d with %d metrics: want at least 2 and a metric", p.hpa.Spec.MinReplicas, p.hpa.Spec.MaxReplicas, len(p.hpa.Spec.Metrics))
	}
	if m := p.pdb.Spec.MinAvailable; m == nil || m.name != "" || m.num >= p.hpa.Spec.MinReplicas {
		fail("PDB minAvailable must be a number below the HPA's minReplicas (%d), or node drains block", p.hpa.Spec.MinReplicas)
	}

	// Ports: drum's address, the container port, probes, Service and scrape annotation.
	_, addrPort, _ := net.SplitHostPort(p.cfg.Address)
	if p.port == 0 || strconv.Itoa(p.port) != addrPort {
		fail("container port http=%d, drum listens on %s (ADDRESS)", p.port, p.cfg.Address)
	}
	for _, in := range ins {
		if in.cmd == "EXPOSE" && strings.Fields(in.args)[0] != addrPort {
			fail("Dockerfile EXPOSE %s, drum listens on %s", in.args, addrPort)
		}
	}
	for name, pr := range p.probes() {
		if pr == nil || pr.HTTPGet == nil {
			fail("no %s probe (httpGet)", name)
			continue
		}
		if p.resolve(pr.HTTPGet.Port) != p.port {
			fail("%s probe port %+v is not drum's port %d", name, pr.HTTPGet.Port, p.port)
		}
		if !strings.HasPrefix(pr.HTTPGet.Path, p.cfg.URLPrefix+"/") {
			fail("%s probe path %s is outside URL_PREFIX %q", name, pr.HTTPGet.Path, p.cfg.URLPrefix)
		}
	}
	if l, r := p.c.LivenessProbe, p.c.ReadinessProbe; l != nil && r != nil && l.HTTPGet != nil && r.HTTPGet != nil && l.HTTPGet.Path == r.HTTPGet.Path {
		fail("liveness and readiness probe the same route %s: a busy or draining pod would be restarted", l.HTTPGet.Path)
	}
	for _, sp := range p.svc.Spec.Ports {
		if p.resolve(sp.TargetPort) != p.port {
			fail("Service port %s targets %+v, not drum's port %d", sp.Name, sp.TargetPort, p.port)
		}
	}
	ann := p.dep.Spec.Template.Metadata.Annotations
	if ann["prometheus.io/scrape"] == "true" && ann["prometheus.io/port"] != strconv.Itoa(p.port) {
		fail("prometheus.io/port %q is not drum's port %d", ann["prometheus.io/port"], p.port)
	}

	// Stopping: the kubelet's grace covers the preStop sleep and drum's whole drain.
	sleep, err := p.preStopSeconds()
	if err != nil {
		fail("%v", err)
	}
	grace := p.dep.Spec.Template.Spec.TerminationGracePeriodSeconds
	drain := int(p.cfg.GracefulTimeout / time.Second)
	if grace == nil || *grace <= sleep+drain {
		fail("terminationGracePeriodSeconds %v must exceed preStop %d s + graceful timeout %d s (DRUM_GUNICORN_GRACEFUL_TIMEOUT)", grace, sleep, drain)
	}
	// Starting: the startup probe waits as long as drum lets the model load.
	if sp := p.c.StartupProbe; sp != nil && time.Duration(sp.PeriodSeconds*sp.FailureThreshold)*time.Second < p.cfg.ModelLoadTimeout {
		fail("startup probe gives up after %d s, drum allows %s to load the model", sp.PeriodSeconds*sp.FailureThreshold, p.cfg.ModelLoadTimeout)
	}

	// Security, resources, storage.
	sc := p.dep.Spec.Template.Spec.SecurityContext
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || (sc.RunAsUser != nil && *sc.RunAsUser == 0) {
		fail("pod securityContext must run as non-root")
	}
	if ape := p.c.SecurityContext.AllowPrivilegeEscalation; ape == nil || *ape {
		fail("container securityContext must set allowPrivilegeEscalation: false")
	}
	if p.c.Resources.Requests["cpu"] == "" || p.c.Resources.Requests["memory"] == "" || p.c.Resources.Limits["memory"] == "" {
		fail("resources: want cpu and memory requests (the HPA scales on CPU) and a memory limit")
	}
	if !pinnedImage.MatchString(p.c.Image) || strings.HasSuffix(p.c.Image, ":latest") {
		fail("image %q is not pinned to a tag other than latest", p.c.Image)
	}
	mounts := map[string]bool{}
	for _, m := range p.c.VolumeMounts {
		mounts[m.MountPath] = true
	}
	if !mounts[p.env["CODE_DIR"]] {
		fail("the model folder CODE_DIR=%s is not a volume mount", p.env["CODE_DIR"])
	}
	if tmp := p.env["TMPDIR"]; !mounts[tmp] {
		fail("TMPDIR=%s (PID file, control socket, spooled bodies) is not a writable volume mount", tmp)
	}
	return errors.Join(errs...)
}

func TestKubernetesPod(t *testing.T) {
	objs := loadManifests(t)
	ins := readDockerfile(t)
	p, err := loadPodSpec(objs, ins, tinyModel(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := checkPod(p, ins); err != nil {
		t.Fatal(err)
	}
}

// TestKubernetesPodChecksFail: each kind of inconsistency is caught.
func TestKubernetesPodChecksFail(t *testing.T) {
	ins := readDockerfile(t)
	model := tinyModel(t)
	for name, c := range map[string]struct{ file, old, new string }{
		"grace below drain":  {"deployment.yaml", "terminationGracePeriodSeconds: 45", "terminationGracePeriodSeconds: 30"},
		"longer drain":       {"deployment.yaml", `"payload": 30}`, `"payload": 60}`},
		"probe port":         {"deployment.yaml", "path: /ping/\n              port: http", "path: /ping/\n              port: 9090"},
		"service target":     {"service.yaml", "targetPort: http", "targetPort: 9090"},
		"address":            {"deployment.yaml", "value: 0.0.0.0:8080", "value: 0.0.0.0:8081"},
		"pdb selector":       {"pdb.yaml", "      app.kubernetes.io/name: drum", "      app.kubernetes.io/name: other"},
		"hpa target":         {"hpa.yaml", "    name: drum", "    name: drum-old"},
		"same probe route":   {"deployment.yaml", "path: /ping/", "path: /health/"},
		"no preStop":         {"deployment.yaml", `command: ["/bin/sleep", "5"]`, `command: ["/bin/true"]`},
		"root":               {"deployment.yaml", "runAsNonRoot: true", "runAsNonRoot: false"},
		"short startup":      {"deployment.yaml", "failureThreshold: 120", "failureThreshold: 10"},
		"model not mounted":  {"deployment.yaml", "mountPath: /opt/model", "mountPath: /model"},
		"scrape port":        {"deployment.yaml", `prometheus.io/port: "8080"`, `prometheus.io/port: "9090"`},
		"latest image":       {"deployment.yaml", "drum:0.1.0", "drum:latest"},
		"pdb blocks drains":  {"pdb.yaml", "minAvailable: 1", "minAvailable: 2"},
		"memory limit unset": {"deployment.yaml", "limits:\n              memory: 2Gi", "limits: {}"},
	} {
		texts := manifestTexts(t)
		if !strings.Contains(texts[c.file], c.old) {
			t.Errorf("%s: %q not in %s", name, c.old, c.file)
			continue
		}
		texts[c.file] = strings.Replace(texts[c.file], c.old, c.new, 1)
		objs, err := parseManifests(texts)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		p, err := loadPodSpec(objs, ins, model)
		if err == nil {
			err = checkPod(p, ins)
		}
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
