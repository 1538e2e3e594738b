package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/drum-go/drum/config"
)

// JSON logs show durations as Go duration strings and secrets redacted, also through
// With and Named.
func TestLoggerPlainArgs(t *testing.T) {
	var b bytes.Buffer
	log := newLoggerTo(&b, "drum", "info", true).With("timeout", 1500*time.Millisecond).Named("x")
	log.Info("hello", "took", 42*time.Microsecond, "token", config.Secret("tok-1"), "n", 3)
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatalf("%v: %s", err, b.String())
	}
	if m["timeout"] != "1.5s" || m["took"] != "42µs" || m["token"] != "[redacted]" || m["n"] != 3.0 {
		t.Fatalf("fields: %v", m)
	}
	if strings.Contains(b.String(), "tok-1") {
		t.Fatal("secret logged")
	}
}
