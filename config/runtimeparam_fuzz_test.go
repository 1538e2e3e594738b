package config

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzRuntimeParam: any environment value gives a value or an error that names the
// parameter, never a panic; an accepted envelope's payload has its declared type.
func FuzzRuntimeParam(f *testing.F) {
	for _, seed := range []string{
		`{"type": "string", "payload": "gunicorn"}`, `{"type":"numeric","payload":4}`,
		`{"type":"numeric","payload":"2.5"}`, `{"type":"boolean","payload":true}`,
		`{"type":"credential","payload":{"credentialType":"s3","awsAccessKeyId":"x"}}`,
		`{"type":"deployment","payload":null}`, `gunicorn`, `"gunicorn"`, `4`, ``, `{`, `{"type":1}`,
		`{"type":"string","payload":""}`, `[1,2]`, `{"type":"numeric","payload":1e309}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		env := func(k string) (string, bool) { return raw, k == RuntimeParamPrefix+"P" }
		p, ok, err := GetRuntimeParam(env, "P")
		if !ok {
			t.Fatal("a set variable was reported missing")
		}
		if err != nil {
			if !strings.Contains(err.Error(), "runtime parameter P") {
				t.Fatalf("error does not name the parameter: %v", err)
			}
			return
		}
		switch p.Type {
		case "string", "deployment":
			if s, isStr := p.Payload.(string); p.Payload != nil && (!isStr || s == "") {
				t.Fatalf("%s payload %#v accepted", p.Type, p.Payload)
			}
		case "boolean":
			if _, isBool := p.Payload.(bool); p.Payload != nil && !isBool {
				t.Fatalf("boolean payload %#v accepted", p.Payload)
			}
		case "credential":
			if m, isMap := p.Payload.(map[string]any); p.Payload != nil && (!isMap || m["credentialType"] == nil) {
				t.Fatalf("credential payload %#v accepted", p.Payload)
			}
		case "":
			// A plain value: never a JSON object.
			if _, isMap := p.Payload.(map[string]any); isMap {
				t.Fatalf("plain value decoded as an object: %q", raw)
			}
		}
		_ = p.String()
		if _, err := p.Int(); err == nil {
			if _, isNum := p.Payload.(float64); !isNum {
				if _, isStr := p.Payload.(string); !isStr {
					t.Fatalf("Int accepted %#v", p.Payload)
				}
			}
		}
		_, _ = json.Marshal(p.Payload)
	})
}
