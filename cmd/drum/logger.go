package main

import (
	"io"
	"os"

	"github.com/hashicorp/go-hclog"
)

// newLogger logs human-readable text, or JSON lines when asked (DRUM_LOG_FORMAT=json);
// workers always log JSON so their master can re-log them with their ids.
func newLogger(name, level string, json bool) hclog.Logger {
	return newLoggerTo(os.Stderr, name, level, json)
}

func newLoggerTo(out io.Writer, name, level string, json bool) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       name,
		Level:      hclog.LevelFromString(level),
		Output:     out,
		JSONFormat: json,
		TimeFormat: "2006-01-02T15:04:05.000Z0700",
	})
}
