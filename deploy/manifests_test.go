package deploy

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The Kubernetes manifests, decoded with only the fields the checks read.

type meta struct {
	Name        string            `yaml:"name"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// intOrString is a port (or targetPort): a number or a container port's name.
type intOrString struct {
	num  int
	name string
}

func (p *intOrString) UnmarshalYAML(n *yaml.Node) error {
	if n.Tag == "!!int" {
		v, err := strconv.Atoi(n.Value)
		p.num = v
		return err
	}
	p.name = n.Value
	return nil
}

type probe struct {
	HTTPGet *struct {
		Path string      `yaml:"path"`
		Port intOrString `yaml:"port"`
	} `yaml:"httpGet"`
	PeriodSeconds    int `yaml:"periodSeconds"`
	FailureThreshold int `yaml:"failureThreshold"`
}

type container struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	} `yaml:"env"`
	StartupProbe   *probe `yaml:"startupProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	Lifecycle      struct {
		PreStop *struct {
			Exec *struct {
				Command []string `yaml:"command"`
			} `yaml:"exec"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		RunAsUser                *int  `yaml:"runAsUser"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type labelSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type deployment struct {
	Spec struct {
		Replicas *int          `yaml:"replicas"`
		Selector labelSelector `yaml:"selector"`
		Template struct {
			Metadata meta `yaml:"metadata"`
			Spec     struct {
				TerminationGracePeriodSeconds *int `yaml:"terminationGracePeriodSeconds"`
				SecurityContext               struct {
					RunAsNonRoot *bool `yaml:"runAsNonRoot"`
					RunAsUser    *int  `yaml:"runAsUser"`
				} `yaml:"securityContext"`
				Containers []container `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type service struct {
	Spec struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Name       string      `yaml:"name"`
			Port       int         `yaml:"port"`
			TargetPort intOrString `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type pdb struct {
	Spec struct {
		MinAvailable   *intOrString  `yaml:"minAvailable"`
		MaxUnavailable *intOrString  `yaml:"maxUnavailable"`
		Selector       labelSelector `yaml:"selector"`
	} `yaml:"spec"`
}

type hpa struct {
	Spec struct {
		ScaleTargetRef struct {
			APIVersion string `yaml:"apiVersion"`
			Kind       string `yaml:"kind"`
			Name       string `yaml:"name"`
		} `yaml:"scaleTargetRef"`
		MinReplicas int `yaml:"minReplicas"`
		MaxReplicas int `yaml:"maxReplicas"`
		Metrics     []struct {
			Type string `yaml:"type"`
		} `yaml:"metrics"`
	} `yaml:"spec"`
}

// object is one manifest document: its header and its raw node for a typed decode.
type object struct {
	file       string
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   meta   `yaml:"metadata"`
	Resources  []string
	node       yaml.Node
}

func (o object) String() string { return o.file + ": " + o.Kind + " " + o.Metadata.Name }

// kinds are the apiVersion each manifest kind must use (the stable ones).
var kinds = map[string]string{
	"Deployment":              "apps/v1",
	"Service":                 "v1",
	"PodDisruptionBudget":     "policy/v1",
	"HorizontalPodAutoscaler": "autoscaling/v2",
	"Kustomization":           "kustomize.config.k8s.io/v1beta1",
}

// manifestTexts reads every kubernetes/*.yaml file.
func manifestTexts(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("kubernetes", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/kubernetes (%v)", err)
	}
	texts := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		texts[filepath.Base(f)] = string(b)
	}
	return texts
}

// parseManifests decodes every document of every file.
func parseManifests(texts map[string]string) ([]object, error) {
	names := make([]string, 0, len(texts))
	for f := range texts {
		names = append(names, f)
	}
	sort.Strings(names)
	var objs []object
	for _, f := range names {
		dec := yaml.NewDecoder(strings.NewReader(texts[f]))
		for {
			var o object
			if err := dec.Decode(&o.node); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			if err := o.node.Decode(&o); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			var k struct {
				Resources []string `yaml:"resources"`
			}
			_ = o.node.Decode(&k)
			o.file, o.Resources = f, k.Resources
			objs = append(objs, o)
		}
	}
	return objs, nil
}

func loadManifests(t *testing.T) []object {
	t.Helper()
	objs, err := parseManifests(manifestTexts(t))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// checkHeaders: every document has a known kind with its stable apiVersion and a name,
// each kind appears once, and the Kustomization lists every other file.
func checkHeaders(objs []object) error {
	var errs []error
	seen := map[string]bool{}
	files := map[string]bool{}
	var kust *object
	for i, o := range objs {
		want, ok := kinds[o.Kind]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s: unexpected kind %q", o, o.Kind))
		case o.APIVersion != want:
			errs = append(errs, fmt.Errorf("%s: apiVersion %q, want %q", o, o.APIVersion, want))
		case seen[o.Kind]:
			errs = append(errs, fmt.Errorf("%s: a second %s", o, o.Kind))
		}
		seen[o.Kind] = true
		if o.Kind == "Kustomization" {
			kust = &objs[i]
			continue
		}
		files[o.file] = true
		if o.Metadata.Name == "" {
			errs = append(errs, fmt.Errorf("%s: no metadata.name", o))
		}
	}
	for k := range kinds {
		if !seen[k] {
			errs = append(errs, fmt.Errorf("no %s manifest", k))
		}
	}
	if kust != nil {
		var want []string
		for f := range files {
			want = append(want, f)
		}
		got := append([]string(nil), kust.Resources...)
		sort.Strings(want)
		sort.Strings(got)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			errs = append(errs, fmt.Errorf("kustomization.yaml lists %v, want %v", got, want))
		}
	}
	return errors.Join(errs...)
}

func TestManifestHeaders(t *testing.T) {
	if err := checkHeaders(loadManifests(t)); err != nil {
		t.Fatal(err)
	}
}

// TestManifestHeaderChecksFail: the header check rejects what it should.
func TestManifestHeaderChecksFail(t *testing.T) {
	good := loadManifests(t)
	for name, mutate := range map[string]func([]object) []object{
		"beta HPA":     func(o []object) []object { return setKind(o, "HorizontalPodAutoscaler", "autoscaling/v2beta2") },
		"no PDB":       func(o []object) []object { return drop(o, "PodDisruptionBudget") },
		"unknown kind": func(o []object) []object { return append(o, object{file: "x.yaml", Kind: "Ingres", APIVersion: "v1"}) },
		"kustomize miss": func(o []object) []object {
			return append(o, object{file: "extra.yaml", Kind: "Service", APIVersion: "v1"})
		},
	} {
		objs := mutate(append([]object(nil), good...))
		if err := checkHeaders(objs); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func setKind(objs []object, kind, apiVersion string) []object {
	for i := range objs {
		if objs[i].Kind == kind {
			objs[i].APIVersion = apiVersion
		}
	}
	return objs
}

func drop(objs []object, kind string) []object {
	var out []object
	for _, o := range objs {
		if o.Kind != kind {
			out = append(out, o)
		}
	}
	return out
}

// decodeKind decodes the one manifest of kind into v.
func decodeKind(objs []object, kind string, v any) error {
	for _, o := range objs {
		if o.Kind == kind {
			if err := o.node.Decode(v); err != nil {
				return fmt.Errorf("%s: %w", o, err)
			}
			return nil
		}
	}
	return fmt.Errorf("no %s manifest", kind)
}

// subset reports whether every label of sel is in labels (and sel is not empty).
func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestKustomizeBuilds renders the kustomization with kubectl (offline) when kubectl is
// installed: it must yield exactly the four workload manifests.
func TestKustomizeBuilds(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not installed; TestManifestHeaders checks the kustomization's file list")
	}
	out, err := exec.Command(kubectl, "kustomize", "kubernetes").Output()
	if err != nil {
		t.Fatalf("kubectl kustomize: %v", err)
	}
	objs, err := parseManifests(map[string]string{"rendered.yaml": string(out)})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs {
		got = append(got, o.Kind)
	}
	sort.Strings(got)
	if want := "Deployment HorizontalPodAutoscaler PodDisruptionBudget Service"; strings.Join(got, " ") != want {
		t.Fatalf("kustomize rendered %v, want %s", got, want)
	}
}
