package config

import (
	"fmt"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"
)

// metadata is the part of model-metadata.yaml that start-up needs. Scalars are read as
// their literal text, as DRUM's strictyaml does (positiveClassLabel: 1 is the label "1").
type metadata struct {
	TargetType         string
	PositiveClassLabel string
	NegativeClassLabel string
	ClassLabels        []string
	ClassLabelsFile    string
}

type rawMetadata struct {
	TargetType     yaml.Node `yaml:"targetType"`
	InferenceModel struct {
		PositiveClassLabel yaml.Node `yaml:"positiveClassLabel"`
		NegativeClassLabel yaml.Node `yaml:"negativeClassLabel"`
		ClassLabels        yaml.Node `yaml:"classLabels"`
		ClassLabelsFile    yaml.Node `yaml:"classLabelsFile"`
	} `yaml:"inferenceModel"`
}

// readMetadata parses <codeDir>/model-metadata.yaml; a missing file is not an error.
func readMetadata(codeDir string) (*metadata, error) {
	path := filepath.Join(codeDir, "model-metadata.yaml")
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var raw rawMetadata
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%s is not valid YAML: %w", path, err)
	}
	m := &metadata{
		TargetType:         scalar(raw.TargetType),
		PositiveClassLabel: scalar(raw.InferenceModel.PositiveClassLabel),
		NegativeClassLabel: scalar(raw.InferenceModel.NegativeClassLabel),
		ClassLabelsFile:    scalar(raw.InferenceModel.ClassLabelsFile),
	}
	if n := raw.InferenceModel.ClassLabels; n.Kind == yaml.SequenceNode {
		for _, item := range n.Content {
			m.ClassLabels = append(m.ClassLabels, item.Value)
		}
	}
	return m, nil
}

func scalar(n yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		return n.Value
	}
	return ""
}
