package worker

import (
	"bytes"
	"regexp"
	"strings"
)

// A port of the multipart/form-data decoder of Werkzeug 2.2 (sansio/multipart.py plus
// formparser.MultiPartParser, as in Debian 12, the stack DRUM's recordings come from).
// It is lenient where Werkzeug is (bare CR or LF line breaks, a missing line break before
// the first boundary, trailing whitespace after boundaries) and fails where Werkzeug
// fails, so the same bodies yield an X part here as in DRUM. It works on the whole body
// at once and returns file parts as sub-slices of it (no copies).

// maxFormParts is Werkzeug's Request.max_form_parts.
const maxFormParts = 1000

var (
	mpBlankLineRe    = regexp.MustCompile(`\r\n\r\n|\r\r|\n\n`)
	mpContinuationRe = regexp.MustCompile(`(?:\r\n|\n|\r)[ \t]`)
)

const mpLineBreak = `(?:\r\n|\n|\r)`

// mpFile is a file part (one whose Content-Disposition has a filename).
type mpFile struct {
	name     *string // nil when the part has no name parameter
	filename string
	data     []byte
}

type mpState int

const (
	mpPreamble mpState = iota
	mpPart
	mpData
	mpEpilogue
	mpComplete
)

// mpField is the part whose data is being collected.
type mpField struct {
	file    bool
	name    *string
	fname   string
	headers [][2]string
	start   int // offset of its first data byte; -1 until data arrives
	end     int
}

// parseMultipart decodes body with the given boundary (non-empty, ASCII). A *pyError
// with class pyValueError is what Werkzeug swallows (the form is then empty); other
// classes escape to DRUM's error handler.
func parseMultipart(body []byte, boundary string) ([]mpFile, *pyError) {
	q := regexp.QuoteMeta(boundary)
	tail := `(--[ \t\f\v]*` + mpLineBreak + `?|[ \t\f\v]*` + mpLineBreak + `)`
	d := &mpDecoder{
		body:       body,
		boundary:   []byte("--" + boundary),
		preambleRe: regexp.MustCompile(mpLineBreak + `?--` + q + tail),
		boundaryRe: regexp.MustCompile(`^` + mpLineBreak + `--` + q + tail),
	}
	// Werkzeug feeds the body, drains events until it needs data, then signals the end
	// and drains again.
	for _, complete := range []bool{false, true} {
		d.complete = complete
		for {
			ev, err := d.next()
			if err != nil {
				return nil, err
			}
			if ev == evNeedData || ev == evEpilogue {
				break
			}
			if err := d.handle(ev); err != nil {
				return nil, err
			}
		}
	}
	return d.files, nil
}

type mpEvent int

const (
	evNeedData mpEvent = iota
	evPreamble
	evPartStart
	evData // d.dataStart/dataEnd/moreData describe it
	evEpilogue
)

type mpDecoder struct {
	body       []byte
	pos        int // start of the unconsumed buffer
	complete   bool
	state      mpState
	boundary   []byte // "--" + boundary
	preambleRe *regexp.Regexp
	boundaryRe *regexp.Regexp // anchored: tried only where the boundary text occurs (findBoundary)
	searchPos  int            // relative to pos
	parts      int

	cur       *mpField
	dataStart int
	dataEnd   int
	moreData  bool

	files []mpFile
}

func (d *mpDecoder) buf() []byte { return d.body[d.pos:] }

// lastNewline is the index of the earliest of the last \n and the last \r in the
// buffer, or its length.
func (d *mpDecoder) lastNewline() int {
	b := d.buf()
	nl := bytes.LastIndexByte(b, '\n')
	if nl < 0 {
		nl = len(b)
	}
	cr := bytes.LastIndexByte(b, '\r')
	if cr < 0 {
		cr = len(b)
	}
	return min(nl, cr)
}

// findBoundary is Werkzeug's boundary regex search (a line break, "--" boundary and its
// tail) over b, returning FindSubmatchIndex's answer. Running the unanchored regex over
// a large part costs ~25 ns a byte; every match holds the literal boundary text one or
// two bytes after its start, so only those starts are tried, leftmost first.
func (d *mpDecoder) findBoundary(b []byte) []int {
	for from := 0; ; {
		i := bytes.Index(b[from:], d.boundary)
		if i < 0 {
			return nil
		}
		i += from
		for _, start := range [2]int{i - 2, i - 1} {
			if start < 0 {
				continue
			}
			if m := d.boundaryRe.FindSubmatchIndex(b[start:]); m != nil {
				for k := range m {
					if m[k] >= 0 {
						m[k] += start
					}
				}
				return m
			}
		}
		from = i + 1
	}
}

// next is MultipartDecoder.next_event.
func (d *mpDecoder) next() (mpEvent, *pyError) {
	ev := evNeedData
	b := d.buf()
	switch d.state {
	case mpPreamble:
		if m := d.preambleRe.FindSubmatchIndex(b[d.searchPos:]); m != nil {
			if bytes.HasPrefix(b[d.searchPos+m[2]:], []byte("--")) {
				d.state = mpEpilogue
			} else {
				d.state = mpPart
			}
			d.pos += d.searchPos + m[1]
			d.searchPos = 0
			ev = evPreamble
		} else {
			d.searchPos = max(0, len(b)-len(d.boundary)+2-8)
		}
	case mpPart:
		if m := mpBlankLineRe.FindIndex(b[d.searchPos:]); m != nil {
			hdr := b[:d.searchPos+m[0]]
			d.pos += d.searchPos + m[1]
			f, err := parsePartHeaders(hdr)
			if err != nil {
				return 0, err
			}
			d.cur = f
			d.state = mpData
			d.searchPos = 0
			d.parts++
			if d.parts > maxFormParts {
				return 0, &pyError{class: pyTooLarge,
					msg: "413 Request Entity Too Large: The data value transmitted exceeds the capacity limit."}
			}
			ev = evPartStart
		} else {
			d.searchPos = max(0, len(b)-8)
		}
	case mpData:
		var dataLen, del int
		var more bool
		if bytes.Index(b, d.boundary) == -1 {
			dataLen = d.lastNewline()
			del = dataLen
			if len(b)-dataLen > len(d.boundary)+1 {
				dataLen, del = len(b), len(b)
			}
			more = true
		} else if m := d.findBoundary(b); m != nil {
			if bytes.HasPrefix(b[m[2]:], []byte("--")) {
				d.state = mpEpilogue
			} else {
				d.state = mpPart
			}
			dataLen, del = m[0], m[1]
		} else {
			dataLen = d.lastNewline()
			del = dataLen
			more = true
		}
		d.dataStart, d.dataEnd, d.moreData = d.pos, d.pos+dataLen, more
		d.pos += del
		if dataLen > 0 || !more {
			ev = evData
		}
	case mpEpilogue:
		if d.complete {
			d.pos = len(d.body)
			d.state = mpComplete
			ev = evEpilogue
		}
	}
	if d.complete && ev == evNeedData {
		return 0, valueError("Invalid form-data cannot parse beyond " + d.stateName())
	}
	return ev, nil
}

func (d *mpDecoder) stateName() string {
	return [...]string{"State.PREAMBLE", "State.PART", "State.DATA", "State.EPILOGUE", "State.COMPLETE"}[d.state]
}

// handle is the event loop body of MultiPartParser.parse.
func (d *mpDecoder) handle(ev mpEvent) *pyError {
	if ev != evData {
		return nil
	}
	f := d.cur
	if f.start < 0 {
		f.start = d.dataStart
	}
	f.end = d.dataEnd // Data events of one part are contiguous in the body
	if d.moreData {
		return nil
	}
	if !f.file {
		// Werkzeug decodes a field's value with its charset (errors="replace"); only the
		// charset lookup can fail.
		charset := "utf-8"
		if ct := headerGet(f.headers, "content-type"); ct != "" {
			_, opts, err := parseOptionsHeader(ct)
			if err != nil {
				return err
			}
			if v, found := opts.get("charset"); found {
				if v == nil {
					return &pyError{class: pyTypeError, msg: "decode() argument 'encoding' must be str, not None"}
				}
				charset = *v
			}
		}
		var data []byte
		if f.start >= 0 {
			data = d.body[f.start:f.end]
		}
		if _, err := pyDecode(data, charset, false); err != nil {
			return err
		}
		return nil
	}
	d.files = append(d.files, mpFile{name: f.name, filename: f.fname, data: d.body[f.start:f.end:f.end]})
	return nil
}

// parsePartHeaders is MultipartDecoder._parse_headers plus the Content-Disposition
// handling that follows it.
func parsePartHeaders(raw []byte) (*mpField, *pyError) {
	raw = mpContinuationRe.ReplaceAll(raw, []byte(" "))
	var headers [][2]string
	for _, line := range bytesSplitLines(raw) {
		if len(bytesStrip(line)) == 0 {
			continue
		}
		s, err := decodeUTF8(line)
		if err != nil {
			return nil, err
		}
		name, value, ok := strings.Cut(pyStrip(s), ":")
		if !ok {
			return nil, valueError("not enough values to unpack (expected 2, got 1)")
		}
		headers = append(headers, [2]string{pyStrip(name), pyStrip(value)})
	}
	cd, ok := headerLookup(headers, "content-disposition")
	if !ok {
		return nil, valueError("Missing Content-Disposition header")
	}
	_, opts, err := parseOptionsHeader(cd)
	if err != nil {
		return nil, err
	}
	f := &mpField{headers: headers, start: -1}
	f.name, _ = opts.get("name")
	if fn, _ := opts.get("filename"); fn != nil {
		f.file, f.fname = true, *fn
	}
	return f, nil
}

// headerLookup finds a header as werkzeug's Headers does (case-insensitive, first wins).
func headerLookup(h [][2]string, key string) (string, bool) {
	for _, kv := range h {
		if pyLower(kv[0]) == key {
			return kv[1], true
		}
	}
	return "", false
}

// headerGet is Headers.get(key) with "" for a missing header.
func headerGet(h [][2]string, key string) string {
	v, _ := headerLookup(h, key)
	return v
}
