package config

import (
	"os"
	"sort"
	"strings"
)

// resolveLabels applies DRUM's class-label rules (spec §2.7): labels come from the CLI/env
// or model-metadata.yaml; when both are given they must agree (as sets for multiclass),
// and the CLI spelling and order win. Other target types drop any labels.
func resolveLabels(cfg *Config, f Flags, meta *metadata) error {
	if meta == nil {
		meta = &metadata{}
	}
	switch cfg.TargetType {
	case TargetBinary:
		if (f.PositiveClassLabel == "") != (f.NegativeClassLabel == "") {
			return usagef("--positive-class-label and --negative-class-label must be given together (or POSITIVE_CLASS_LABEL and NEGATIVE_CLASS_LABEL)")
		}
		cli := f.PositiveClassLabel != ""
		md := meta.PositiveClassLabel != "" && meta.NegativeClassLabel != ""
		switch {
		case !cli && !md:
			return usagef("Positive/negative class labels are missing. They must be provided with either one: --positive-class-label/--negative-class-label arguments, environment variables, model config file.")
		case cli && md && (f.PositiveClassLabel != meta.PositiveClassLabel || f.NegativeClassLabel != meta.NegativeClassLabel):
			return usagef("Positive/negative class labels provided with command arguments or environment variable don't match values from model config file. Use either one of them or make them match.")
		case cli:
			cfg.PositiveClassLabel, cfg.NegativeClassLabel = f.PositiveClassLabel, f.NegativeClassLabel
		default:
			cfg.PositiveClassLabel, cfg.NegativeClassLabel = meta.PositiveClassLabel, meta.NegativeClassLabel
		}
		if cfg.PositiveClassLabel == cfg.NegativeClassLabel {
			return usagef("--positive-class-label and --negative-class-label are both %q: a binary model needs two different labels", cfg.PositiveClassLabel)
		}
	case TargetMulticlass, TargetMultilabel:
		if len(f.ClassLabels) > 0 && f.ClassLabelsFile != "" {
			return usagef("--class-labels and --class-labels-file are mutually exclusive: pass one of them")
		}
		cli := f.ClassLabels
		if f.ClassLabelsFile != "" {
			var err error
			if cli, err = readLabelsFile("--class-labels-file", f.ClassLabelsFile); err != nil {
				return err
			}
		}
		md := meta.ClassLabels
		if meta.ClassLabelsFile != "" {
			// DRUM opens classLabelsFile relative to the working directory, not the code dir.
			var err error
			if md, err = readLabelsFile("model-metadata.yaml classLabelsFile", meta.ClassLabelsFile); err != nil {
				return err
			}
		}
		switch {
		case len(cli) == 0 && len(md) == 0:
			return usagef("Class labels are missing. They must be provided with either one: --class-labels/--class-labels-file arguments, environment variables, model config file.")
		case len(cli) > 0 && len(md) > 0 && !sameSet(cli, md):
			return usagef("Class labels provided with command arguments or environment variable don't match values from model config file. Use either one of them or make them match.")
		case len(cli) > 0:
			cfg.ClassLabels = cli
		default:
			cfg.ClassLabels = md
		}
		if len(cfg.ClassLabels) < 2 {
			return usagef("--class-labels: at least 2 class labels are required, got %d", len(cfg.ClassLabels))
		}
	}
	return nil
}

func readLabelsFile(what, path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("%s %s: %v", what, path, err)
	}
	var labels []string
	for _, line := range strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n") {
		if line != "" {
			labels = append(labels, line)
		}
	}
	if len(labels) < 2 {
		return nil, usagef("%s %s: at least 2 class labels (one per line) are required, found %d", what, path, len(labels))
	}
	return labels, nil
}

func sameSet(a, b []string) bool {
	x := uniqSorted(a)
	y := uniqSorted(b)
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}

func uniqSorted(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	out := c[:0]
	for i, v := range c {
		if i == 0 || v != c[i-1] {
			out = append(out, v)
		}
	}
	return out
}
