package config

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// RuntimeParamPrefix is how DataRobot passes runtime parameters: MLOPS_RUNTIME_PARAM_<NAME>.
const RuntimeParamPrefix = "MLOPS_RUNTIME_PARAM_"

// LookupEnv is the environment seam (os.LookupEnv in production, a map in tests).
type LookupEnv func(key string) (string, bool)

// RuntimeParam is one runtime parameter as found in the environment.
type RuntimeParam struct {
	Name    string
	Type    string // "string", "numeric", "boolean", "credential", "deployment", or "" for a plain value
	Payload any    // decoded payload (nil for a JSON null)
}

// runtimeParamTypes are the envelope types DRUM accepts.
var runtimeParamTypes = map[string]bool{
	"string": true, "numeric": true, "boolean": true, "credential": true, "deployment": true,
}

// GetRuntimeParam reads MLOPS_RUNTIME_PARAM_<name>. DRUM accepts only the JSON envelope
// {"type": T, "payload": P}; drum also accepts a plain value (e.g. "gunicorn" or "4"),
// which DRUM users set by mistake and DRUM then crashes on. A JSON object that is not a
// valid envelope is an error naming the parameter, as in DRUM.
func GetRuntimeParam(env LookupEnv, name string) (RuntimeParam, bool, error) {
	raw, ok := env(RuntimeParamPrefix + name)
	if !ok {
		return RuntimeParam{}, false, nil
	}
	p := RuntimeParam{Name: name}
	trimmed := strings.TrimSpace(raw)
	if !strings.HasPrefix(trimmed, "{") {
		// Plain value: a JSON scalar ("gunicorn" with quotes, 4) or bare text.
		var scalar any
		if err := json.Unmarshal([]byte(trimmed), &scalar); err == nil {
			if _, isMap := scalar.(map[string]any); !isMap {
				p.Payload = scalar
				return p, true, nil
			}
		}
		p.Payload = trimmed
		return p, true, nil
	}
	var env2 map[string]json.RawMessage
	if err := json.Unmarshal([]byte(trimmed), &env2); err != nil {
		return p, true, fmt.Errorf("runtime parameter %s: Invalid runtime parameter json payload. %v", name, err)
	}
	typRaw, hasType := env2["type"]
	payRaw, hasPayload := env2["payload"]
	if !hasType || !hasPayload || len(env2) != 2 {
		return p, true, fmt.Errorf("runtime parameter %s: Invalid runtime parameter! the value must be a JSON object with exactly the keys \"type\" and \"payload\", got %s", name, trimmed)
	}
	if err := json.Unmarshal(typRaw, &p.Type); err != nil || !runtimeParamTypes[p.Type] {
		return p, true, fmt.Errorf("runtime parameter %s: Invalid runtime parameter! type must be one of string, numeric, boolean, credential, deployment, got %s", name, typRaw)
	}
	if err := json.Unmarshal(payRaw, &p.Payload); err != nil {
		return p, true, fmt.Errorf("runtime parameter %s: Invalid runtime parameter json payload. %v", name, err)
	}
	if err := checkPayload(p); err != nil {
		return p, true, fmt.Errorf("runtime parameter %s: Invalid runtime parameter! %v", name, err)
	}
	return p, true, nil
}

func checkPayload(p RuntimeParam) error {
	if p.Payload == nil {
		return nil
	}
	switch p.Type {
	case "string", "deployment":
		s, ok := p.Payload.(string)
		if !ok || s == "" {
			return fmt.Errorf("%s payload must be a non-empty string, got %v", p.Type, p.Payload)
		}
	case "boolean":
		if _, ok := p.Payload.(bool); !ok {
			return fmt.Errorf("value should be True or False, got %v", p.Payload)
		}
	case "numeric":
		switch v := p.Payload.(type) {
		case float64:
		case string:
			if _, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
				return fmt.Errorf("value can't be converted to float: %q", v)
			}
		default:
			return fmt.Errorf("value can't be converted to float: %v", v)
		}
	case "credential":
		m, ok := p.Payload.(map[string]any)
		if !ok {
			return fmt.Errorf("credential payload must be an object")
		}
		if _, ok := m["credentialType"].(string); !ok {
			return fmt.Errorf("{'credentialType': DataError('is required')}")
		}
	}
	return nil
}

// String returns the payload as text (plain values, string and numeric payloads).
func (p RuntimeParam) String() string {
	switch v := p.Payload.(type) {
	case nil:
		return ""
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	b, _ := json.Marshal(p.Payload)
	return string(b)
}

// Int returns the payload as an integer, truncating like Python's int() (4.9 -> 4).
func (p RuntimeParam) Int() (int, error) {
	var f float64
	switch v := p.Payload.(type) {
	case float64:
		f = v
	case string:
		var err error
		f, err = strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return 0, fmt.Errorf("runtime parameter %s: %q is not a number", p.Name, v)
		}
	default:
		return 0, fmt.Errorf("runtime parameter %s: %v is not a number", p.Name, p.Payload)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || f > math.MaxInt32 || f < math.MinInt32 {
		return 0, fmt.Errorf("runtime parameter %s: %v is out of range", p.Name, p.Payload)
	}
	return int(f), nil
}

// intParam reads an integer runtime parameter and checks it against [min, max].
func intParam(env LookupEnv, name string, min, max, def int) (int, error) {
	p, ok, err := GetRuntimeParam(env, name)
	if err != nil {
		return 0, err
	}
	if !ok || p.Payload == nil {
		return def, nil
	}
	n, err := p.Int()
	if err != nil {
		return 0, err
	}
	if n < min || n > max {
		return 0, fmt.Errorf("runtime parameter %s: %d is out of range; accepted values are %d to %d", name, n, min, max)
	}
	return n, nil
}
