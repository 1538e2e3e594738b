package main

import (
	"io"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/drum-go/drum/config"
)

// newLogger logs human-readable text, or JSON lines (config: DRUM_LOG_FORMAT=json, or
// unset with stderr not a terminal inside a container); workers always log JSON so
// their master can re-log them with their ids.
func newLogger(name, level string, json bool) hclog.Logger {
	return newLoggerTo(os.Stderr, name, level, json)
}

func newLoggerTo(out io.Writer, name, level string, json bool) hclog.Logger {
	return plainArgs{hclog.New(&hclog.LoggerOptions{
		Name:       name,
		Level:      hclog.LevelFromString(level),
		Output:     out,
		JSONFormat: json,
		TimeFormat: "2006-01-02T15:04:05.000Z0700",
	})}
}

// plainArgs rewrites log arguments that JSON would render badly or dangerously:
// durations become Go duration strings ("1.5s", not 1500000000 nanoseconds) and
// secrets their redacted form.
type plainArgs struct{ hclog.Logger }

func fixArgs(args []any) []any {
	var out []any
	for i, a := range args {
		var v any
		switch x := a.(type) {
		case time.Duration:
			v = x.String()
		case config.Secret:
			v = x.String()
		default:
			continue
		}
		if out == nil {
			out = append([]any(nil), args...)
		}
		out[i] = v
	}
	if out == nil {
		return args
	}
	return out
}

func (l plainArgs) Log(level hclog.Level, msg string, args ...any) {
	l.Logger.Log(level, msg, fixArgs(args)...)
}
func (l plainArgs) Trace(msg string, args ...any) { l.Logger.Trace(msg, fixArgs(args)...) }
func (l plainArgs) Debug(msg string, args ...any) { l.Logger.Debug(msg, fixArgs(args)...) }
func (l plainArgs) Info(msg string, args ...any)  { l.Logger.Info(msg, fixArgs(args)...) }
func (l plainArgs) Warn(msg string, args ...any)  { l.Logger.Warn(msg, fixArgs(args)...) }
func (l plainArgs) Error(msg string, args ...any) { l.Logger.Error(msg, fixArgs(args)...) }
func (l plainArgs) With(args ...any) hclog.Logger {
	return plainArgs{l.Logger.With(fixArgs(args)...)}
}
func (l plainArgs) Named(name string) hclog.Logger      { return plainArgs{l.Logger.Named(name)} }
func (l plainArgs) ResetNamed(name string) hclog.Logger { return plainArgs{l.Logger.ResetNamed(name)} }
