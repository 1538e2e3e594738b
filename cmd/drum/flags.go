package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/drum-go/drum/config"
	"github.com/drum-go/drum/worker/predictor"
)

// Flags shared by server and score; EnvVars are DRUM's environment equivalents.
func modelFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "code-dir", Aliases: []string{"cd"}, EnvVars: []string{"CODE_DIR"}, Usage: "model folder (custom.py and/or the model artifact)"},
		&cli.StringFlag{Name: "target-type", EnvVars: []string{"TARGET_TYPE"}, Usage: "one of " + strings.Join(config.TargetTypes, ", ")},
		&cli.StringFlag{Name: "positive-class-label", EnvVars: []string{"POSITIVE_CLASS_LABEL"}, Usage: "binary: positive class label"},
		&cli.StringFlag{Name: "negative-class-label", EnvVars: []string{"NEGATIVE_CLASS_LABEL"}, Usage: "binary: negative class label"},
		// CLASS_LABELS is read by hand: DRUM splits it on whitespace, urfave on commas.
		&cli.StringSliceFlag{Name: "class-labels", Usage: "multiclass/multilabel: the class labels (--class-labels A B C)"},
		&cli.StringFlag{Name: "class-labels-file", EnvVars: []string{"CLASS_LABELS_FILE"}, Usage: "file with one class label per line"},
		&cli.StringFlag{Name: "python", EnvVars: []string{"DRUM_PYTHON"}, Usage: "Python interpreter for the model (default: the first of python3 on PATH, /usr/bin/python3 that imports pandas)"},
		&cli.StringFlag{Name: "logging-level", Usage: "all, debug, info, warn, warning, error, critical, fatal"},
		&cli.StringFlag{Name: "language", Usage: "model language; only python is supported"},
		&cli.BoolFlag{Name: "verbose", Usage: "accepted for DRUM compatibility; use --logging-level debug"},
		&cli.BoolFlag{Name: "show-stacktrace", EnvVars: []string{"SHOW_STACKTRACE"}, Usage: "accepted for DRUM compatibility"},
		&cli.BoolFlag{Name: "show-perf", Usage: "accepted for DRUM compatibility"},
	}
}

// flagsFrom collects what the user gave into config.Flags.
func flagsFrom(c *cli.Context, cmd config.Command) config.Flags {
	f := config.Flags{
		Command:            cmd,
		CodeDir:            c.String("code-dir"),
		TargetType:         c.String("target-type"),
		PositiveClassLabel: c.String("positive-class-label"),
		NegativeClassLabel: c.String("negative-class-label"),
		ClassLabels:        c.StringSlice("class-labels"),
		ClassLabelsFile:    c.String("class-labels-file"),
		Python:             c.String("python"),
		LogLevel:           c.String("logging-level"),
	}
	// DRUM skips CLASS_LABELS when --class-labels-file is given, and vice versa.
	if len(f.ClassLabels) == 0 && !c.IsSet("class-labels-file") {
		if v := os.Getenv("CLASS_LABELS"); strings.TrimSpace(v) != "" {
			f.ClassLabels = strings.Fields(v)
			if os.Getenv("CLASS_LABELS_FILE") != "" {
				f.ClassLabelsFile = ""
			}
		}
	}
	return f
}

// listFlags take several values after one flag, as DRUM's argparse nargs="+" does.
var listFlags = map[string]bool{"--class-labels": true}

// normaliseArgs rewrites "--class-labels A B C" into "--class-labels A --class-labels B
// --class-labels C", the form urfave/cli parses, so DRUM command lines work unchanged.
func normaliseArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !listFlags[a] {
			out = append(out, a)
			continue
		}
		for i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			i++
			out = append(out, a, args[i])
		}
	}
	return out
}

// buildConfig validates the command's flags (set adds the command's own) into a Config
// and finds the Python interpreter the model will run under.
func buildConfig(c *cli.Context, cmd config.Command, set func(*config.Flags)) (*config.Config, error) {
	if l := c.String("language"); l != "" && l != "python" {
		return nil, &config.UsageError{Msg: fmt.Sprintf("--language %s: drum serves Python models only (R and Java are not supported yet)", l)}
	}
	f := flagsFrom(c, cmd)
	set(&f)
	cfg, err := config.Build(f, os.LookupEnv)
	if err != nil {
		return nil, err
	}
	if cfg.Python, err = predictor.FindPython(cfg.Python); err != nil {
		return nil, err
	}
	return cfg, nil
}
