package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseMetadata(t *testing.T) {
	cases := []struct {
		name, yaml string
		err        string // substring of the error; "" = valid
		doc        string // JSON of the document, when valid
	}{
		{"binary", "name: m\ntype: inference\ntargetType: binary\ninferenceModel:\n  positiveClassLabel: 1\n  negativeClassLabel: 0\n", "",
			`{"inferenceModel":{"negativeClassLabel":"0","positiveClassLabel":"1"},"name":"m","targetType":"binary","type":"inference"}`},
		{"typed scalars", "name: 7\ntype: training\ntargetType: regression\nmajorVersion: yes\ninferenceModel:\n  predictionThreshold: 3\ncustomPredictor:\n  a: 1.5\n  b:\n    - true\n", "",
			`{"customPredictor":{"a":"1.5","b":["true"]},"inferenceModel":{"predictionThreshold":3},"majorVersion":true,"name":"7","targetType":"regression","type":"training"}`},
		{"empty", "", "empty", ""},
		{"unknown top key", "name: m\ntype: inference\ntargetType: regression\nfoo: 1\n", "unexpected key not in schema 'foo'", ""},
		{"unknown inferenceModel key", "name: m\ntype: inference\ntargetType: regression\ninferenceModel:\n  bar: 1\n", "unexpected key not in schema 'bar'", ""},
		{"missing required", "name: m\ntargetType: regression\n", "required key(s) ['type'] not found", ""},
		{"flow style", "name: m\ntype: inference\ntargetType: multiclass\ninferenceModel:\n  classLabels: [a, b]\n", "flow style", ""},
		{"binary missing labels", "name: m\ntype: inference\ntargetType: binary\ninferenceModel:\n  positiveClassLabel: y\n",
			"The following keys are missing in model-metadata.yaml file.\nMissing keys: ['negativeClassLabel']", ""},
		{"binary no inferenceModel", "name: m\ntype: inference\ntargetType: binary\n", "Missing keys: ['inferenceModel']", ""},
		{"multiclass both", "name: m\ntype: inference\ntargetType: multiclass\ninferenceModel:\n  classLabels:\n    - a\n    - b\n  classLabelsFile: x.txt\n", "but not both", ""},
		{"multiclass neither", "name: m\ntype: inference\ntargetType: multilabel\ninferenceModel:\n  targetName: t\n", "must be provided", ""},
		{"training skips label checks", "name: m\ntype: training\ntargetType: binary\n", "",
			`{"name":"m","targetType":"binary","type":"training"}`},
		{"bad bool", "name: m\ntype: inference\ntargetType: regression\nmajorVersion: maybe\n", "expected a boolean", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := parseMetadata([]byte(c.yaml))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one containing %q", err, c.err)
				}
				if !IsMetadataError(err) {
					t.Errorf("%T is not a MetadataError", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(m.Doc)
			if string(b) != c.doc {
				t.Errorf("doc %s\nwant %s", b, c.doc)
			}
		})
	}
}

func TestMetadataClassLabelsFile(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir) // DRUM opens classLabelsFile relative to the working directory
	if err := os.WriteFile(filepath.Join(dir, "labels.txt"), []byte("a\nb\n\nc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := parseMetadata([]byte("name: m\ntype: inference\ntargetType: multiclass\ninferenceModel:\n  classLabelsFile: labels.txt\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(m.Doc["inferenceModel"])
	if string(b) != `{"classLabels":["a","b","c"],"classLabelsFile":null}` {
		t.Errorf("inferenceModel %s", b)
	}
	if strings.Join(m.ClassLabels, ",") != "a,b,c" || m.ClassLabelsFile != "" {
		t.Errorf("labels %v file %q", m.ClassLabels, m.ClassLabelsFile)
	}
	if err := os.WriteFile(filepath.Join(dir, "one.txt"), []byte("a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := parseMetadata([]byte("name: m\ntype: inference\ntargetType: multiclass\ninferenceModel:\n  classLabelsFile: one.txt\n")); err == nil {
		t.Error("a one-label file was accepted")
	}
}
