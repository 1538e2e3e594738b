package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// model-metadata.yaml as DRUM reads it (spec §9): strictyaml with a fixed schema. Scalars
// are strings unless the schema types them (majorVersion: bool, predictionThreshold:
// int), unknown keys of the checked maps are errors, flow style and empty documents are
// rejected, and for "type: inference" the labels the target type needs must be there.

// metadata is the part of model-metadata.yaml that start-up needs. Scalars are read as
// their literal text, as DRUM's strictyaml does (positiveClassLabel: 1 is the label "1").
type metadata struct {
	TargetType         string
	PositiveClassLabel string
	NegativeClassLabel string
	ClassLabels        []string
	ClassLabelsFile    string
	// Doc is the whole document as /info/ reports it (modelMetadata): maps, lists,
	// strings, and the schema's bools and ints; classLabelsFile resolved into classLabels.
	Doc map[string]any
}

// MetadataError is an invalid model-metadata.yaml: DRUM logs it and exits 1.
type MetadataError struct{ Msg string }

func (e *MetadataError) Error() string { return e.Msg }

func metaErrorf(format string, a ...any) error {
	return &MetadataError{Msg: fmt.Sprintf(format, a...)}
}

// schema of the maps whose keys strictyaml checks; nil means any keys (DRUM's Any).
var (
	topKeys = map[string]bool{
		"name": true, "type": true, "targetType": true, "environmentID": true, "modelID": true,
		"description": true, "majorVersion": true, "validation": true, "inferenceModel": true,
		"trainingModel": true, "hyperparameters": true, "typeSchema": true, "customPredictor": true,
		"runtimeParameterDefinitions": true, "userCredentialSpecifications": true,
		"lazyLoading": true, "inputSchema": true,
	}
	sectionKeys = map[string]map[string]bool{
		"inferenceModel": {"targetName": true, "positiveClassLabel": true, "negativeClassLabel": true,
			"classLabels": true, "classLabelsFile": true, "predictionThreshold": true},
		"validation":    {"input": true, "targetName": true},
		"trainingModel": {"trainOnProject": true},
		"inputSchema":   {"type": true, "properties": true, "title": true, "required": true},
	}
	requiredTop = []string{"name", "type", "targetType"}
)

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
	m, err := parseMetadata(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// ReadModelMetadata is the modelMetadata value of /info/: the parsed document of
// <codeDir>/model-metadata.yaml, nil when there is none. DRUM re-reads it on each request.
func ReadModelMetadata(codeDir string) (map[string]any, error) {
	m, err := readMetadata(codeDir)
	if err != nil || m == nil {
		return nil, err
	}
	return m.Doc, nil
}

func parseMetadata(b []byte) (*metadata, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, metaErrorf("not valid YAML: %v", err)
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return nil, metaErrorf("the document is empty")
	}
	top := root.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, metaErrorf("line %d: expected a mapping of keys (name, type, targetType, ...)", top.Line)
	}
	if err := checkStrict(top); err != nil {
		return nil, err
	}
	doc := map[string]any{}
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		if !topKeys[k.Value] {
			return nil, metaErrorf("line %d: unexpected key not in schema '%s'", k.Line, k.Value)
		}
		if allowed, ok := sectionKeys[k.Value]; ok {
			if v.Kind != yaml.MappingNode {
				return nil, metaErrorf("line %d: %s must be a mapping", v.Line, k.Value)
			}
			for j := 0; j < len(v.Content); j += 2 {
				if sk := v.Content[j]; !allowed[sk.Value] {
					return nil, metaErrorf("line %d: unexpected key not in schema '%s' (in %s)", sk.Line, sk.Value, k.Value)
				}
			}
		}
		val, err := typedValue(k.Value, v)
		if err != nil {
			return nil, err
		}
		doc[k.Value] = val
	}
	var missing []string
	for _, k := range requiredTop {
		if _, ok := doc[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return nil, metaErrorf("required key(s) %s not found", pyList(missing))
	}
	m := &metadata{Doc: doc}
	m.TargetType, _ = doc["targetType"].(string)
	if im, ok := doc["inferenceModel"].(map[string]any); ok {
		m.PositiveClassLabel, _ = im["positiveClassLabel"].(string)
		m.NegativeClassLabel, _ = im["negativeClassLabel"].(string)
		m.ClassLabelsFile, _ = im["classLabelsFile"].(string)
		if l, ok := im["classLabels"].([]any); ok {
			for _, x := range l {
				s, ok := x.(string)
				if !ok {
					return nil, metaErrorf("inferenceModel.classLabels must be a list of strings")
				}
				m.ClassLabels = append(m.ClassLabels, s)
			}
		}
	}
	if doc["type"] == "inference" {
		if err := m.validateInference(); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// validateInference is DRUM's validate_config_fields for "type: inference".
func (m *metadata) validateInference() error {
	im, _ := m.Doc["inferenceModel"].(map[string]any)
	switch m.TargetType {
	case TargetBinary:
		var missing []string
		if im == nil {
			missing = []string{"inferenceModel"}
		} else {
			for _, k := range []string{"positiveClassLabel", "negativeClassLabel"} {
				if _, ok := im[k]; !ok {
					missing = append(missing, k)
				}
			}
		}
		if len(missing) > 0 {
			return metaErrorf("The following keys are missing in model-metadata.yaml file.\nMissing keys: %s", pyList(missing))
		}
	case TargetMulticlass, TargetMultilabel:
		if im == nil {
			return metaErrorf("The following keys are missing in model-metadata.yaml file.\nMissing keys: ['inferenceModel']")
		}
		_, hasList := im["classLabels"]
		_, hasFile := im["classLabelsFile"]
		switch {
		case hasList && hasFile:
			return metaErrorf("Error - for multiclass classification, either the class labels or a class labels file should be provided in model-metadata.yaml file, but not both.")
		case !hasList && !hasFile:
			return metaErrorf("Error - for multiclass classification, either the class labels or a class labels file must be provided in model-metadata.yaml file.")
		case hasFile:
			// Opened relative to the working directory, as DRUM does.
			b, err := os.ReadFile(m.ClassLabelsFile)
			if err != nil {
				return metaErrorf("inferenceModel.classLabelsFile %s: %v", m.ClassLabelsFile, err)
			}
			var labels []any
			m.ClassLabels = nil
			for _, line := range strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n") {
				if line != "" {
					labels = append(labels, line)
					m.ClassLabels = append(m.ClassLabels, line)
				}
			}
			if len(labels) < 2 {
				return metaErrorf("Multiclass classification requires at least 2 labels.")
			}
			im["classLabels"] = labels
			im["classLabelsFile"] = nil
			m.ClassLabelsFile = ""
		}
	}
	return nil
}

// checkStrict rejects what strictyaml refuses anywhere in the document: flow style,
// anchors/aliases, tags, and empty lists.
func checkStrict(n *yaml.Node) error {
	if n.Style&yaml.FlowStyle != 0 {
		return metaErrorf("line %d: flow style is not allowed (strictyaml): write the mapping or list in block style", n.Line)
	}
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return metaErrorf("line %d: anchors and aliases are not allowed (strictyaml)", n.Line)
	}
	if n.Style&yaml.TaggedStyle != 0 {
		return metaErrorf("line %d: tags are not allowed (strictyaml)", n.Line)
	}
	for _, c := range n.Content {
		if err := checkStrict(c); err != nil {
			return err
		}
	}
	return nil
}

// typedValue converts a node as strictyaml's schema does for the given top-level key.
func typedValue(key string, n *yaml.Node) (any, error) {
	v := plainValue(n)
	switch key {
	case "name", "type", "targetType", "environmentID", "modelID", "description":
		if n.Kind != yaml.ScalarNode {
			return nil, metaErrorf("line %d: %s must be a string", n.Line, key)
		}
	case "majorVersion":
		b, err := strictBool(n)
		if err != nil {
			return nil, err
		}
		return b, nil
	case "inferenceModel":
		im := v.(map[string]any)
		if s, ok := im["predictionThreshold"].(string); ok {
			i, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				return nil, metaErrorf("inferenceModel.predictionThreshold: found %q, expected an integer", s)
			}
			im["predictionThreshold"] = i
		}
		if cl, ok := im["classLabels"]; ok {
			if _, ok := cl.([]any); !ok {
				return nil, metaErrorf("inferenceModel.classLabels must be a list of strings")
			}
		}
	}
	return v, nil
}

func strictBool(n *yaml.Node) (bool, error) {
	switch strings.ToLower(n.Value) {
	case "true", "yes", "on", "1", "y":
		return true, nil
	case "false", "no", "off", "0", "n":
		return false, nil
	}
	return false, metaErrorf("line %d: majorVersion: found %q, expected a boolean", n.Line, n.Value)
}

// plainValue is a node with every scalar as its text (strictyaml's Any/Str).
func plainValue(n *yaml.Node) any {
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			m[n.Content[i].Value] = plainValue(n.Content[i+1])
		}
		return m
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			l = append(l, plainValue(c))
		}
		return l
	}
	return n.Value
}

// pyList renders names as Python prints a list of str.
func pyList(s []string) string {
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = "'" + x + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// IsMetadataError reports whether err is an invalid model-metadata.yaml.
func IsMetadataError(err error) bool {
	var me *MetadataError
	return errors.As(err, &me)
}
