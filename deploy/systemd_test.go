package deploy

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// unitSettings reads a systemd unit's [Service] section: repeated keys (Environment)
// keep every value.
func unitSettings(text string) map[string][]string {
	out := map[string][]string{}
	section := ""
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "[") {
			section = line
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && section == "[Service]" {
			out[k] = append(out[k], v)
		}
	}
	return out
}

// TestSystemdUnitMatchesConfig: deploy/drum.service (systemd-analyze verifies it in
// cmd/drum's TestSystemdUnitVerifies) follows the master across upgrades and gives
// drum's real start and drain bounds room, for the configuration it sets.
func TestSystemdUnitMatchesConfig(t *testing.T) {
	b, err := os.ReadFile("drum.service")
	if err != nil {
		t.Fatal(err)
	}
	u := unitSettings(string(b))
	one := func(k string) string {
		if len(u[k]) != 1 {
			t.Errorf("%s set %d times, want once", k, len(u[k]))
			return ""
		}
		return u[k][0]
	}
	for k, want := range map[string]string{"Type": "notify", "NotifyAccess": "all", "KillSignal": "SIGTERM", "KillMode": "mixed"} {
		if got := one(k); got != want {
			t.Errorf("%s=%s, want %s", k, got, want)
		}
	}
	if exec := one("ExecStart"); !strings.Contains(exec, "drum server") {
		t.Errorf("ExecStart=%s does not run drum server", exec)
	}
	if r := one("ExecReload"); !strings.Contains(r, "-HUP") || !strings.Contains(r, "$MAINPID") {
		t.Errorf("ExecReload=%s: want SIGHUP to $MAINPID (the zero-downtime upgrade)", r)
	}
	env := map[string]string{}
	for _, e := range u["Environment"] {
		if k, v, ok := strings.Cut(e, "="); ok {
			env[k] = v
		}
	}
	cfg, err := podConfig(env, tinyModel(t))
	if err != nil {
		t.Fatalf("drum would not start with the unit's environment: %v", err)
	}
	seconds := func(k string) time.Duration {
		n, err := strconv.Atoi(one(k))
		if err != nil {
			t.Errorf("%s: %v", k, err)
		}
		return time.Duration(n) * time.Second
	}
	if stop := seconds("TimeoutStopSec"); stop <= cfg.GracefulTimeout {
		t.Errorf("TimeoutStopSec %s must exceed the graceful timeout %s, or systemd kills the drain", stop, cfg.GracefulTimeout)
	}
	if start := seconds("TimeoutStartSec"); start < cfg.ModelLoadTimeout {
		t.Errorf("TimeoutStartSec %s is below the model load timeout %s", start, cfg.ModelLoadTimeout)
	}
}
