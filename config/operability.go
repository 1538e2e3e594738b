package config

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Operability is what drum adds for the people who run it: metrics, access log, log
// format, and the built-in equivalents of DRUM's Python web extensions (header-token
// auth, extra response headers, CORS). Its fields are promoted into Config.
type Operability struct {
	// MetricsAddress (DRUM_METRICS_ADDRESS) is a host:port where the master serves
	// /metrics on its own; "" for none (/metrics is always on the main port).
	MetricsAddress string `json:"metrics_address,omitempty"`
	// AccessLog (DRUM_ACCESS_LOG, default true) logs one line per request at info.
	AccessLog bool `json:"access_log"`
	// AuthHeader (DRUM_AUTH_HEADER) names the request header that must carry AuthToken
	// (credential runtime parameter DRUM_AUTH_TOKEN); "" means no authentication.
	AuthHeader string `json:"auth_header,omitempty"`
	AuthToken  Secret `json:"auth_token,omitempty"`
	// ExtraHeaders (DRUM_EXTRA_HEADERS, a JSON object) are added to every answer.
	ExtraHeaders map[string]string `json:"extra_headers,omitempty"`
	// CORSOrigins (DRUM_CORS_ORIGINS, comma- or space-separated; "*" for any) are the
	// browser origins allowed to call the server.
	CORSOrigins []string `json:"cors_origins,omitempty"`
	// ExtensionsStrict (DRUM_EXTENSIONS_STRICT) makes a custom_flask.py or
	// custom_fastapi.py in the code dir a start-up error instead of a warning.
	ExtensionsStrict bool `json:"extensions_strict,omitempty"`
}

// Secret is a value that must never be printed: fmt and hclog show it redacted. It
// still travels to the workers in the Config's JSON.
type Secret string

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString redacts %#v too.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// pythonExtensions are the files DRUM loads to extend its Python web server.
var pythonExtensions = []string{"custom_flask.py", "custom_fastapi.py"}

// ExtensionsAdvice names drum's built-in equivalents of Python web extensions.
const ExtensionsAdvice = "drum's workers are Go, so Python web extensions do not run; use the built-ins instead: " +
	"DRUM_AUTH_HEADER + credential runtime parameter DRUM_AUTH_TOKEN (header-token auth), " +
	"DRUM_EXTRA_HEADERS (static response headers), DRUM_CORS_ORIGINS (CORS), " +
	"/metrics (Prometheus); DRUM_EXTENSIONS_STRICT=true makes this an error"

// Probes for the log format, replaced in tests.
var (
	stderrIsTerminal = func() bool {
		_, err := unix.IoctlGetTermios(int(os.Stderr.Fd()), unix.TCGETS)
		return err == nil
	}
	inContainer = func(env LookupEnv) bool {
		if _, err := os.Stat("/.dockerenv"); err == nil {
			return true
		}
		if v, ok := env("container"); ok && v != "" {
			return true
		}
		b, err := os.ReadFile("/proc/1/cgroup")
		if err != nil {
			return false
		}
		s := string(b)
		for _, hint := range []string{"docker", "kubepods", "containerd", "libpod", "lxc"} {
			if strings.Contains(s, hint) {
				return true
			}
		}
		return false
	}
)

// plainOrParam reads NAME as a plain environment variable, else as runtime parameter.
func plainOrParam(env LookupEnv, name string) (string, bool, error) {
	if v, ok := env(name); ok {
		return strings.TrimSpace(v), true, nil
	}
	p, ok, err := GetRuntimeParam(env, name)
	if err != nil || !ok || p.Payload == nil {
		return "", false, err
	}
	return strings.TrimSpace(p.String()), true, nil
}

func boolSetting(env LookupEnv, name string, def bool) (bool, error) {
	v, ok, err := plainOrParam(env, name)
	if err != nil || !ok || v == "" {
		return def, err
	}
	b, err := strconv.ParseBool(strings.ToLower(v))
	if err != nil {
		return def, fmt.Errorf("%s=%q: want true or false", name, v)
	}
	return b, nil
}

// buildOperability reads the operability settings into cfg (Build calls it last).
func buildOperability(cfg *Config, cmd Command, env LookupEnv) error {
	// Log format: DRUM_LOG_FORMAT=json or text wins; unset, JSON when stderr is not a
	// terminal inside a container (log collectors parse it), text otherwise.
	switch v, _ := env("DRUM_LOG_FORMAT"); strings.ToLower(strings.TrimSpace(v)) {
	case "json":
		cfg.LogJSON = true
	case "text", "console":
		cfg.LogJSON = false
	case "":
		cfg.LogJSON = !stderrIsTerminal() && inContainer(env)
	default:
		return fmt.Errorf("DRUM_LOG_FORMAT=%q: want json or text", v)
	}

	o := &cfg.Operability
	var err error
	if o.AccessLog, err = boolSetting(env, "DRUM_ACCESS_LOG", true); err != nil {
		return err
	}
	if o.ExtensionsStrict, err = boolSetting(env, "DRUM_EXTENSIONS_STRICT", false); err != nil {
		return err
	}
	if v, ok, err := plainOrParam(env, "DRUM_METRICS_ADDRESS"); err != nil {
		return err
	} else if ok && v != "" {
		if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
			return fmt.Errorf("DRUM_METRICS_ADDRESS=%q: want host:port", v)
		}
		o.MetricsAddress = v
		if cfg.Mode() == ModeSingleProcess {
			cfg.Notes = append(cfg.Notes, "DRUM_METRICS_ADDRESS has no effect with server type flask (no master); /metrics is on the main port")
		}
	}

	// Header-token auth.
	if v, _, err := plainOrParam(env, "DRUM_AUTH_HEADER"); err != nil {
		return err
	} else if v != "" {
		if !validHeaderName(v) {
			return fmt.Errorf("DRUM_AUTH_HEADER=%q is not a header name", v)
		}
		o.AuthHeader = v
	}
	p, ok, err := GetRuntimeParam(env, "DRUM_AUTH_TOKEN")
	if err != nil {
		return fmt.Errorf("runtime parameter DRUM_AUTH_TOKEN is malformed") // never echo it
	}
	if ok && p.Payload != nil {
		tok, err := credentialToken(p)
		if err != nil {
			return err
		}
		o.AuthToken = Secret(tok)
	}
	switch {
	case o.AuthHeader != "" && o.AuthToken == "":
		return fmt.Errorf("DRUM_AUTH_HEADER=%s is set but the credential runtime parameter DRUM_AUTH_TOKEN is not: refusing to serve without the token", o.AuthHeader)
	case o.AuthHeader == "" && o.AuthToken != "":
		return fmt.Errorf("the runtime parameter DRUM_AUTH_TOKEN is set but DRUM_AUTH_HEADER is not: name the header that carries the token")
	}

	if v, ok, err := plainOrParam(env, "DRUM_EXTRA_HEADERS"); err != nil {
		return err
	} else if ok && v != "" {
		h, err := parseExtraHeaders(v)
		if err != nil {
			return fmt.Errorf("DRUM_EXTRA_HEADERS: %w", err)
		}
		o.ExtraHeaders = h
	}
	if v, ok, err := plainOrParam(env, "DRUM_CORS_ORIGINS"); err != nil {
		return err
	} else if ok && v != "" {
		for _, s := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
			s = strings.TrimRight(s, "/")
			if s != "*" && !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
				return fmt.Errorf("DRUM_CORS_ORIGINS: %q is not an origin (want * or scheme://host[:port])", s)
			}
			o.CORSOrigins = append(o.CORSOrigins, s)
		}
	}

	if cmd == CommandServer && cfg.CodeDir != "" {
		for _, name := range pythonExtensions {
			if _, err := os.Stat(filepath.Join(cfg.CodeDir, name)); err != nil {
				continue
			}
			msg := fmt.Sprintf("%s found in the code dir: %s", name, ExtensionsAdvice)
			if o.ExtensionsStrict {
				return usagef("%s", strings.Replace(msg, "; DRUM_EXTENSIONS_STRICT=true makes this an error", " (DRUM_EXTENSIONS_STRICT=true)", 1))
			}
			cfg.Notes = append(cfg.Notes, msg)
		}
	}
	return nil
}

// credentialToken takes the token out of a credential (or plain) runtime parameter.
// Errors never include the value.
func credentialToken(p RuntimeParam) (string, error) {
	switch v := p.Payload.(type) {
	case string:
		if v != "" {
			return v, nil
		}
	case map[string]any:
		for _, k := range []string{"apiToken", "token", "password", "key", "secret"} {
			if s, ok := v[k].(string); ok && s != "" {
				return s, nil
			}
		}
	}
	return "", fmt.Errorf("runtime parameter DRUM_AUTH_TOKEN holds no token (want a credential with apiToken, token or password, or a plain string)")
}

func parseExtraHeaders(v string) (map[string]string, error) {
	var m map[string]string
	if err := json.Unmarshal([]byte(v), &m); err != nil {
		return nil, fmt.Errorf("want a JSON object of header names to string values, e.g. {\"X-Team\": \"ml\"}: %v", err)
	}
	for k, val := range m {
		if !validHeaderName(k) {
			return nil, fmt.Errorf("%q is not a header name", k)
		}
		if strings.ContainsAny(val, "\r\n\x00") {
			return nil, fmt.Errorf("the value of %s holds a line break", k)
		}
	}
	return m, nil
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r > 0x7e || r <= ' ' || strings.ContainsRune("\"(),/:;<=>?@[\\]{}", r) {
			return false
		}
	}
	return true
}
