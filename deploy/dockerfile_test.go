package deploy

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line int
	cmd  string // upper case
	args string
}

func parseDockerfile(text string) []instruction {
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() > 0 && strings.HasPrefix(trimmed, "#") {
			continue // comment inside a continued instruction
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// dockerEnv is the final stage's ENV, in KEY=VALUE form.
func dockerEnv(ins []instruction) map[string]string {
	env := map[string]string{}
	for _, in := range ins {
		switch in.cmd {
		case "FROM":
			env = map[string]string{}
		case "ENV":
			for _, kv := range strings.Fields(in.args) {
				if k, v, ok := strings.Cut(kv, "="); ok {
					env[k] = strings.Trim(v, `"`)
				}
			}
		}
	}
	return env
}

// dockerRule is a hadolint-style rule over the whole file.
type dockerRule struct {
	name  string
	check func([]instruction) error
}

var pinnedImage = regexp.MustCompile(`^[a-z0-9./_-]+(:[A-Za-z0-9._-]+|@sha256:[0-9a-f]{64})$`)

var dockerRules = []dockerRule{
	{"base images pinned, never latest (DL3006, DL3007)", func(ins []instruction) error {
		stages := map[string]bool{}
		for _, in := range ins {
			if in.cmd != "FROM" {
				continue
			}
			f := strings.Fields(in.args)
			if len(f) == 0 {
				return fmt.Errorf("line %d: FROM without an image", in.line)
			}
			img := f[0]
			if !stages[strings.ToLower(img)] && (!pinnedImage.MatchString(img) || strings.HasSuffix(img, ":latest")) {
				return fmt.Errorf("line %d: base image %q is not pinned to a tag other than latest", in.line, img)
			}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				stages[strings.ToLower(f[2])] = true // a later FROM may name this stage
			}
		}
		return nil
	}},
	{"multi-stage: Go build stage, runtime stage copies the binary", func(ins []instruction) error {
		froms, copied := 0, false
		for _, in := range ins {
			froms += b2i(in.cmd == "FROM")
			copied = copied || (in.cmd == "COPY" && strings.HasPrefix(in.args, "--from="))
		}
		if froms < 2 || !copied {
			return fmt.Errorf("%d FROM, COPY --from %v: want a build stage and a runtime stage", froms, copied)
		}
		return nil
	}},
	{"last USER is not root (DL3002)", func(ins []instruction) error {
		user := ""
		for _, in := range ins {
			if in.cmd == "FROM" {
				user = ""
			}
			if in.cmd == "USER" {
				user = in.args
			}
		}
		name, _, _ := strings.Cut(user, ":")
		if name == "" || name == "root" || name == "0" {
			return fmt.Errorf("the image runs as %q; want a non-root USER", user)
		}
		return nil
	}},
	{"STOPSIGNAL SIGTERM", func(ins []instruction) error {
		for _, in := range ins {
			if in.cmd == "STOPSIGNAL" && (in.args == "SIGTERM" || in.args == "15") {
				return nil
			}
		}
		return errors.New("no STOPSIGNAL SIGTERM: drum drains on TERM")
	}},
	{"ENTRYPOINT and CMD in exec form (DL3025), drum server", func(ins []instruction) error {
		var entry, cmd []string
		for _, in := range ins {
			var dst *[]string
			switch in.cmd {
			case "ENTRYPOINT":
				dst = &entry
			case "CMD":
				dst = &cmd
			default:
				continue
			}
			if err := json.Unmarshal([]byte(in.args), dst); err != nil {
				return fmt.Errorf("line %d: %s %s is not exec form (a JSON array): a shell would be PID 1 and swallow signals", in.line, in.cmd, in.args)
			}
		}
		all := append(append([]string(nil), entry...), cmd...)
		if len(all) < 2 || !strings.HasSuffix(all[0], "drum") || all[1] != "server" {
			return fmt.Errorf("ENTRYPOINT+CMD %q: want drum server", all)
		}
		return nil
	}},
	{"apt-get: -y, --no-install-recommends, lists removed in the same RUN (DL3014, DL3015, DL3009)", func(ins []instruction) error {
		installs := 0
		for _, in := range ins {
			if in.cmd != "RUN" || !strings.Contains(in.args, "apt-get") {
				continue
			}
			if strings.Contains(in.args, "apt-get update") && !strings.Contains(in.args, "apt-get install") {
				return fmt.Errorf("line %d: apt-get update in its own RUN (a cached layer installs stale lists)", in.line)
			}
			if !strings.Contains(in.args, "apt-get install") {
				continue
			}
			installs++
			for _, want := range []string{" -y", "--no-install-recommends", "rm -rf /var/lib/apt/lists/*"} {
				if !strings.Contains(in.args, want) {
					return fmt.Errorf("line %d: apt-get install without %q", in.line, want)
				}
			}
			for _, pkg := range []string{"python3-pandas", "python3-sklearn"} {
				if !strings.Contains(in.args, pkg) {
					return fmt.Errorf("line %d: %s not installed", in.line, pkg)
				}
			}
		}
		if installs == 0 {
			return errors.New("no apt-get install of Python's pandas and scikit-learn")
		}
		return nil
	}},
	{"COPY, not ADD, for local files (DL3020); WORKDIR, not cd (DL3003); no sudo (DL3004)", func(ins []instruction) error {
		for _, in := range ins {
			switch {
			case in.cmd == "ADD":
				return fmt.Errorf("line %d: ADD; use COPY", in.line)
			case in.cmd == "RUN" && regexp.MustCompile(`(^|&&|;)\s*cd\s`).MatchString(in.args):
				return fmt.Errorf("line %d: cd in RUN; use WORKDIR", in.line)
			case in.cmd == "RUN" && strings.Contains(in.args, "sudo "):
				return fmt.Errorf("line %d: sudo in RUN", in.line)
			}
		}
		return nil
	}},
	{"ENV: the model folder and the listen address", func(ins []instruction) error {
		env := dockerEnv(ins)
		if env["CODE_DIR"] == "" || env["ADDRESS"] == "" {
			return fmt.Errorf("ENV CODE_DIR=%q ADDRESS=%q: both need defaults", env["CODE_DIR"], env["ADDRESS"])
		}
		return nil
	}},
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func readDockerfile(t *testing.T) []instruction {
	t.Helper()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	return parseDockerfile(string(b))
}

func TestDockerfileRules(t *testing.T) {
	ins := readDockerfile(t)
	for _, r := range dockerRules {
		if err := r.check(ins); err != nil {
			t.Errorf("%s: %v", r.name, err)
		}
	}
}

// TestDockerfileRulesCatchBadFiles: each rule rejects a file that breaks it.
func TestDockerfileRulesCatchBadFiles(t *testing.T) {
	good, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	bad := map[string]func(string) string{
		"base images pinned, never latest (DL3006, DL3007)": func(s string) string {
			return strings.Replace(s, "FROM debian:12-slim", "FROM debian:latest", 1)
		},
		"multi-stage: Go build stage, runtime stage copies the binary": func(s string) string {
			return strings.Replace(s, "COPY --from=build /out/drum", "COPY drum", 1)
		},
		"last USER is not root (DL3002)": func(s string) string { return s + "\nUSER root\n" },
		"STOPSIGNAL SIGTERM":             func(s string) string { return strings.Replace(s, "STOPSIGNAL SIGTERM", "STOPSIGNAL SIGKILL", 1) },
		"ENTRYPOINT and CMD in exec form (DL3025), drum server": func(s string) string {
			return strings.Replace(s, `ENTRYPOINT ["/usr/local/bin/drum"]`, "ENTRYPOINT /usr/local/bin/drum", 1)
		},
		"apt-get: -y, --no-install-recommends, lists removed in the same RUN (DL3014, DL3015, DL3009)": func(s string) string {
			return strings.Replace(s, "--no-install-recommends", "", 1)
		},
		"COPY, not ADD, for local files (DL3020); WORKDIR, not cd (DL3003); no sudo (DL3004)": func(s string) string {
			return s + "\nRUN cd /tmp && ls\n"
		},
		"ENV: the model folder and the listen address": func(s string) string {
			return strings.Replace(s, "ADDRESS=0.0.0.0:8080", "X=1", 1)
		},
	}
	for _, r := range dockerRules {
		mutate, ok := bad[r.name]
		if !ok {
			t.Errorf("rule %q has no failing case", r.name)
			continue
		}
		text := mutate(string(good))
		if text == string(good) {
			t.Errorf("rule %q: the mutation did not change the file", r.name)
			continue
		}
		if err := r.check(parseDockerfile(text)); err == nil {
			t.Errorf("rule %q accepted a file that breaks it", r.name)
		}
	}
}

// TestHadolint runs hadolint when it is installed. DL3008 (pin apt package versions)
// is ignored: the image follows Debian 12's stable packages, as drum's tests do.
func TestHadolint(t *testing.T) {
	bin, err := exec.LookPath("hadolint")
	if err != nil {
		t.Skip("hadolint not installed; TestDockerfileRules applies its main rules")
	}
	if out, err := exec.Command(bin, "--ignore", "DL3008", "Dockerfile").CombinedOutput(); err != nil {
		t.Fatalf("hadolint: %v\n%s", err, out)
	}
}

// TestDockerfileGoMatchesGoMod: the build stage's Go is the one go.mod asks for.
func TestDockerfileGoMatchesGoMod(t *testing.T) {
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("no go directive in go.mod")
	}
	for _, in := range readDockerfile(t) {
		if in.cmd == "FROM" && strings.HasPrefix(in.args, "golang:") {
			if tag := strings.TrimPrefix(strings.Fields(in.args)[0], "golang:"); !strings.HasPrefix(tag, string(m[1])) {
				t.Fatalf("build stage golang:%s, go.mod wants go %s", tag, m[1])
			}
			return
		}
	}
	t.Fatal("no golang build stage")
}
