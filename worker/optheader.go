package worker

import (
	"regexp"
	"strings"
)

// Werkzeug 2.2's parse_options_header, which DRUM uses for the request Content-Type and
// Werkzeug uses for every multipart part header. Its regular expressions are kept as
// they are (with Python's Unicode \s and \d) so odd headers split the same way.

var (
	optStartRe = regexp.MustCompile(`^,[` + pyWS + `]*([^;,` + pyWS + `]+)([;,][` + pyWS + `]*.+)?`)
	optPieceRe = regexp.MustCompile(`^;[` + pyWS + `]*,?[` + pyWS + `]*` +
		`("[^"\\]*(?:\\.[^"\\]*)*"|[^` + pyWS + `;,=*]+)` + // key
		`(?:\*(\p{Nd}+))?` + // continuation count
		`[` + pyWS + `]*` +
		`(?:(?:\*[` + pyWS + `]*=[` + pyWS + `]*(?:([^` + pyWS + `]+?)'([^` + pyWS + `]*?)')?|=[` + pyWS + `]*)` +
		`("[^"\\]*(?:\\.[^"\\]*)*"|[^;,]+)?)?` + // value
		`[` + pyWS + `]*`)
)

// options are the parameters of an options header. A key present without a value maps
// to nil, as Python's None.
type options map[string]*string

// get is dict.get(key): found reports presence, v is nil for a None value.
func (o options) get(key string) (v *string, found bool) {
	v, found = o[key]
	return v, found
}

// parseOptionsHeader splits value into its first item and that item's options. Decoding
// an RFC 2231 extended value (key*=charset'lang'value) can raise, as in Python.
func parseOptionsHeader(value string) (string, options, *pyError) {
	if value == "" {
		return "", options{}, nil
	}
	value = "," + strings.ReplaceAll(value, "\n", ",")
	m := optStartRe.FindStringSubmatchIndex(value)
	if m == nil {
		return "", options{}, nil
	}
	mimetype := value[m[2]:m[3]]
	opts := options{}
	if m[4] < 0 {
		return mimetype, opts, nil
	}
	rest := value[m[4]:m[5]]
	var continued *string // encoding of an ongoing continuation
	for rest != "" {
		g := optPieceRe.FindStringSubmatchIndex(rest)
		if g == nil {
			break
		}
		group := func(i int) *string {
			if g[2*i] < 0 {
				return nil
			}
			s := rest[g[2*i]:g[2*i+1]]
			return &s
		}
		key, count, encoding, val := *group(1), group(2), group(3), group(5)
		if count == nil {
			continued = nil
		} else {
			if encoding == nil || *encoding == "" {
				encoding = continued
			}
			continued = encoding
		}
		key = pyLower(unquoteHeaderValue(key, false))
		if val != nil {
			v := unquoteHeaderValue(*val, key == "filename")
			if encoding != nil {
				dec, err := pyDecode(unquoteToBytes(v), *encoding, true)
				if err != nil {
					return "", nil, err
				}
				v = dec
			}
			val = &v
		}
		if count != nil {
			if val != nil {
				prev, found := opts[key]
				if found && prev == nil {
					// options.get(option, "") + value with a None value
					return "", nil, &pyError{class: pyTypeError,
						msg: "unsupported operand type(s) for +: 'NoneType' and 'str'"}
				}
				joined := *val
				if prev != nil {
					joined = *prev + joined
				}
				opts[key] = &joined
			}
		} else {
			opts[key] = val
		}
		rest = rest[g[1]:]
	}
	return mimetype, opts, nil
}

// unquoteHeaderValue is werkzeug.http.unquote_header_value (browser-style unquoting).
func unquoteHeaderValue(v string, isFilename bool) string {
	if v != "" && v[0] == '"' && v[len(v)-1] == '"' {
		if len(v) == 1 {
			v = "" // Python's '"'[1:-1]
		} else {
			v = v[1 : len(v)-1]
		}
		if !isFilename || !strings.HasPrefix(v, `\\`) {
			return strings.ReplaceAll(strings.ReplaceAll(v, `\\`, `\`), `\"`, `"`)
		}
	}
	return v
}

// unquoteToBytes is urllib.parse.unquote_to_bytes: %XX escapes become bytes, anything
// else (including malformed escapes) is kept.
func unquoteToBytes(s string) []byte {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			out = append(out, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		out = append(out, s[i])
	}
	return out
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}
