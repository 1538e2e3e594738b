package worker

import (
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"
)

// DRUM reads requests with Werkzeug and Python's codecs; the edge cases of their
// parsers show up in DRUM's answers (a 422 for a ValueError, a 500 with str(exc) for
// anything else). The helpers here reproduce the few Python behaviours those answers
// depend on.

// pyClass is the Python exception class family that decides how DRUM answers.
type pyClass int

const (
	pyValueError pyClass = iota // includes UnicodeDecodeError and UnicodeError
	pyLookupError
	pyTypeError
	pyTooLarge // werkzeug RequestEntityTooLarge
)

// pyError is a Python exception as str(exc) renders it.
type pyError struct {
	class pyClass
	msg   string
}

func (e *pyError) Error() string { return e.msg }

func valueError(msg string) *pyError { return &pyError{class: pyValueError, msg: msg} }

// pyIsSpace is str.isspace (and \s in str regular expressions) for one code point.
func pyIsSpace(r rune) bool {
	switch {
	case r >= '\t' && r <= '\r', r >= 0x1c && r <= ' ':
		return true
	case r < 0x85:
		return false
	}
	switch r {
	case 0x85, 0xa0, 0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000:
		return true
	}
	return r >= 0x2000 && r <= 0x200a
}

// pyWS is pyIsSpace as a regular-expression class body.
const pyWS = `\t\n\x0b\x0c\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}`

// pyStrip is str.strip().
func pyStrip(s string) string { return strings.TrimFunc(s, pyIsSpace) }

// pyLower is str.lower() for the strings compared here: Go's simple case mapping plus
// the one full mapping in the Latin range Python applies (İ -> i̇).
func pyLower(s string) string {
	return strings.ToLower(strings.ReplaceAll(s, "\u0130", "i\u0307"))
}

// isBytesSpace is bytes.isspace() for one byte (ASCII whitespace).
func isBytesSpace(b byte) bool {
	return b == ' ' || (b >= '\t' && b <= '\r')
}

// bytesStrip is bytes.strip().
func bytesStrip(b []byte) []byte {
	for len(b) > 0 && isBytesSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isBytesSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// bytesSplitLines is bytes.splitlines(): \n, \r and \r\n end a line; a final line
// break does not start an empty line.
func bytesSplitLines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != '\n' && b[i] != '\r' {
			i++
		}
		out = append(out, b[:i])
		if i == len(b) {
			break
		}
		if b[i] == '\r' && i+1 < len(b) && b[i+1] == '\n' {
			i++
		}
		b = b[i+1:]
	}
	return out
}

// latin1 decodes bytes as ISO-8859-1, as the WSGI server decodes header values.
func latin1(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			r := make([]rune, len(s))
			for j := 0; j < len(s); j++ {
				r[j] = rune(s[j])
			}
			return string(r)
		}
	}
	return s
}

// decodeUTF8 is bytes.decode("utf-8") (strict) with CPython's error message.
func decodeUTF8(b []byte) (string, *pyError) {
	if utf8.Valid(b) {
		return string(b), nil
	}
	start, end, reason := utf8ErrorRange(b)
	return "", unicodeDecodeError("utf-8", b, start, end, reason)
}

func unicodeDecodeError(codec string, b []byte, start, end int, reason string) *pyError {
	if end-start == 1 {
		return valueError(fmt.Sprintf("'%s' codec can't decode byte 0x%02x in position %d: %s",
			codec, b[start], start, reason))
	}
	return valueError(fmt.Sprintf("'%s' codec can't decode bytes in position %d-%d: %s",
		codec, start, end-1, reason))
}

// utf8ErrorRange finds the first invalid sequence as CPython's UTF-8 decoder reports it
// (Objects/stringlib/codecs.h): the byte range and the reason.
func utf8ErrorRange(b []byte) (start, end int, reason string) {
	cont := func(c byte) bool { return c&0xc0 == 0x80 }
	for i := 0; i < len(b); {
		c := b[i]
		n := len(b) - i
		switch {
		case c < 0x80:
			i++
			continue
		case c < 0xc2:
			return i, i + 1, "invalid start byte"
		case c < 0xe0:
			if n < 2 {
				return i, len(b), "unexpected end of data"
			}
			if !cont(b[i+1]) {
				return i, i + 1, "invalid continuation byte"
			}
			i += 2
			continue
		case c < 0xf0:
			bad2 := func(c2 byte) bool {
				return !cont(c2) || (c == 0xe0 && c2 < 0xa0) || (c == 0xed && c2 >= 0xa0)
			}
			if n < 3 {
				if n >= 2 && bad2(b[i+1]) {
					return i, i + 1, "invalid continuation byte"
				}
				return i, len(b), "unexpected end of data"
			}
			if bad2(b[i+1]) {
				return i, i + 1, "invalid continuation byte"
			}
			if !cont(b[i+2]) {
				return i, i + 2, "invalid continuation byte"
			}
			i += 3
			continue
		case c < 0xf5:
			bad2 := func(c2 byte) bool {
				return !cont(c2) || (c == 0xf0 && c2 < 0x90) || (c == 0xf4 && c2 >= 0x90)
			}
			if n < 4 {
				if n >= 2 && bad2(b[i+1]) {
					return i, i + 1, "invalid continuation byte"
				}
				if n >= 3 && !cont(b[i+2]) {
					return i, i + 2, "invalid continuation byte"
				}
				return i, len(b), "unexpected end of data"
			}
			if bad2(b[i+1]) {
				return i, i + 1, "invalid continuation byte"
			}
			if !cont(b[i+2]) {
				return i, i + 2, "invalid continuation byte"
			}
			if !cont(b[i+3]) {
				return i, i + 3, "invalid continuation byte"
			}
			i += 4
			continue
		default:
			return i, i + 1, "invalid start byte"
		}
	}
	return len(b), len(b), ""
}

// codec kinds for pyLookupCodec.
const (
	codecUnknown = iota
	codecText
	codecBinary // bytes-to-bytes codecs such as base64: not usable by bytes.decode
)

var pyCodecs struct {
	once    sync.Once
	kind    map[string]int
	aliases map[string]string
}

func loadPyCodecs() {
	pyCodecs.kind = map[string]int{}
	for _, m := range strings.Fields(pyTextCodecs) {
		pyCodecs.kind[m] = codecText
	}
	for _, m := range strings.Fields(pyBinaryCodecs) {
		pyCodecs.kind[m] = codecBinary
	}
	pyCodecs.aliases = map[string]string{}
	for _, kv := range strings.Fields(pyCodecAliases) {
		k, v, _ := strings.Cut(kv, "=")
		pyCodecs.aliases[k] = v
	}
}

// normalizeEncoding is CPython's _Py_normalize_encoding: ASCII letters, digits and dots
// are kept (lower-cased), every other run becomes one "_" between kept characters.
func normalizeEncoding(name string) string {
	var b strings.Builder
	punct := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		isAlnum := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
		if isAlnum || c == '.' {
			if punct && b.Len() > 0 {
				b.WriteByte('_')
			}
			punct = false
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			b.WriteByte(c)
		} else {
			punct = true
		}
	}
	return b.String()
}

// pyLookupCodec resolves a codec name as codecs.lookup does and returns its module name
// and kind.
func pyLookupCodec(name string) (string, int) {
	pyCodecs.once.Do(loadPyCodecs)
	norm := normalizeEncoding(name)
	candidates := []string{norm}
	alias, ok := pyCodecs.aliases[norm]
	if !ok {
		alias, ok = pyCodecs.aliases[strings.ReplaceAll(norm, ".", "_")]
	}
	if ok {
		candidates = []string{alias, norm}
	}
	for _, m := range candidates {
		if m == "" || strings.Contains(m, ".") {
			continue
		}
		if k := pyCodecs.kind[m]; k != codecUnknown {
			return m, k
		}
	}
	return "", codecUnknown
}

// pyDecode is bytes.decode(encoding) as far as request parsing needs it: the exceptions
// Python raises (strict, or with errors="replace" when !strict) and, for strict
// decoding, the text. utf-8 and ascii are exact; other text codecs are decoded byte by
// byte, which only matters for the rare RFC 2231 parameter value.
func pyDecode(b []byte, encoding string, strict bool) (string, *pyError) {
	if strings.IndexByte(encoding, 0) >= 0 {
		return "", valueError("embedded null character")
	}
	if len(b) == 0 {
		return "", nil // CPython returns "" before looking the codec up
	}
	mod, kind := pyLookupCodec(encoding)
	switch kind {
	case codecUnknown:
		return "", &pyError{class: pyLookupError, msg: "unknown encoding: " + encoding}
	case codecBinary:
		return "", &pyError{class: pyLookupError,
			msg: fmt.Sprintf("'%s' is not a text encoding; use codecs.decode() to handle arbitrary codecs", encoding)}
	}
	switch mod {
	case "undefined":
		return "", valueError("decoding with 'undefined' codec failed (UnicodeError: undefined encoding)")
	case "idna":
		if !strict {
			return "", valueError("decoding with 'idna' codec failed (UnicodeError: Unsupported error handling replace)")
		}
	}
	if !strict {
		return "", nil // the callers discard replaced text
	}
	switch mod {
	case "utf_8", "utf_8_sig":
		if mod == "utf_8_sig" {
			b = trimBOM(b)
		}
		return decodeUTF8(b)
	case "ascii":
		for i, c := range b {
			if c >= 0x80 {
				return "", unicodeDecodeError("ascii", b, i, i+1, "ordinal not in range(128)")
			}
		}
	}
	return latin1(string(b)), nil
}

func trimBOM(b []byte) []byte {
	if len(b) >= 3 && b[0] == 0xef && b[1] == 0xbb && b[2] == 0xbf {
		return b[3:]
	}
	return b
}
