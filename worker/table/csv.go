package table

import (
	"bytes"
	"slices"
	"strconv"
	"unicode/utf8"
)

// PandasVersion is the pandas whose read_csv ParseCSV reproduces; with another one the
// predictor must parse the bytes itself.
const PandasVersion = "1.5.3"

// ParseCSV reads body the way the predictor's read_structured_input does with pandas 1.5.3
// (pd.read_csv with default options, re-read with skip_blank_lines=False when the frame
// has one column) and returns the same frame as a Table.
//
// It handles only inputs whose result it can reproduce exactly; for anything else it
// returns nil and a short reason, and the caller lets pandas parse the bytes. Falling back
// is always correct: the fast path exists for speed only.
func ParseCSV(body []byte) (*Table, string) {
	if len(body) == 0 {
		return nil, "empty body"
	}
	if bytes.IndexByte(body, 0) >= 0 {
		return nil, "NUL byte"
	}
	if len(body) > 1<<31 {
		return nil, "body over 2 GiB"
	}
	if !utf8.Valid(body) {
		return nil, "not UTF-8"
	}
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	rec, why := tokenize(body)
	if why != "" {
		return nil, why
	}
	width := rec.width
	rows := rec.rows - 1
	if rows <= 0 {
		return nil, "no data rows"
	}
	if width == 1 && rec.blankLines > 0 {
		return nil, "one column with blank lines"
	}
	if !oneChunk(rows, width) {
		return nil, "more rows than pandas reads in one chunk"
	}
	t := &Table{Rows: rows, Columns: make([]Column, width)}
	names := columnNames(&rec)
	for j := 0; j < width; j++ {
		col, why := inferColumn(column{&rec, j})
		if why != "" {
			return nil, "column " + strconv.Itoa(j) + ": " + why
		}
		col.Name = names[j]
		t.Columns[j] = col
	}
	return t, ""
}

// oneChunk reports whether pandas' C reader (low_memory=True) infers the dtypes from all
// rows at once. It reads in chunks of buffer_lines rows, the largest power of two below
// 2**20 / width, and infers per chunk; the last chunk boundary is left a margin.
func oneChunk(rows, width int) bool {
	heuristic := (1 << 20) / width
	lines := 1
	for lines*2 < heuristic {
		lines *= 2
	}
	return rows+2 <= lines/2
}

// records is the tokenized body: every record's fields, row-major, all width long, as
// spans of the body (or of arena for quoted fields with "" escapes): no pointers for the
// garbage collector to scan.
type records struct {
	body, arena []byte
	spans       []span
	width       int
	rows        int // records, header included
	blankLines  int
}

type span struct {
	lo, hi  uint32
	inArena bool
}

// field returns field i (row-major, header first).
func (r *records) field(i int) []byte {
	s := r.spans[i]
	if s.inArena {
		return r.arena[s.lo:s.hi]
	}
	return r.body[s.lo:s.hi]
}

// column is one column of the data rows.
type column struct {
	rec *records
	j   int
}

func (c column) len() int { return c.rec.rows - 1 }

// cell is the column's field in data row i.
func (c column) cell(i int) []byte { return c.rec.field((i+1)*c.rec.width + c.j) }

// special are the bytes that end an unquoted field (or make it unhandled).
var special = [256]bool{',': true, '\n': true, '\r': true, '"': true}

// isSpace is the C tokenizer's isspace_ascii.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// tokenize splits body into records and fields as pandas' C tokenizer does for the
// subset handled: ',' separated, '"' quoting with "" escapes, \n or \r\n line ends,
// empty lines skipped. Fields with leading or trailing whitespace, stray quotes, lone
// \r and rows of a different width than the header are not handled.
func tokenize(b []byte) (records, string) {
	r := records{body: b}
	// Every separator and line end may end a field: enough room for all fields.
	r.spans = make([]span, 0, bytes.Count(b, []byte{','})+bytes.Count(b, []byte{'\n'})+1)
	pos := 0
	n := len(b)
	rowStart := 0 // index in r.spans of the current record's first field
	for pos < n {
		if len(r.spans) == rowStart {
			// Start of a line: an empty one is skipped.
			if b[pos] == '\n' {
				r.blankLines++
				pos++
				continue
			}
			if b[pos] == '\r' && pos+1 < n && b[pos+1] == '\n' {
				r.blankLines++
				pos += 2
				continue
			}
		}
		var field span
		if b[pos] == '"' {
			var ok bool
			field, pos, ok = r.quoted(pos + 1)
			if !ok {
				return r, "unterminated or irregular quoted field"
			}
		} else {
			start := pos
			for pos < n && !special[b[pos]] {
				pos++
			}
			if pos < n && b[pos] == '"' {
				return r, "quote inside an unquoted field"
			}
			field = span{lo: uint32(start), hi: uint32(pos)}
		}
		r.spans = append(r.spans, field)
		if f := r.field(len(r.spans) - 1); len(f) > 0 && (isSpace(f[0]) || isSpace(f[len(f)-1])) {
			return r, "field with leading or trailing whitespace"
		}
		// After a field: a separator, a line end or the end of the body.
		switch {
		case pos >= n:
		case b[pos] == ',':
			pos++
			if pos >= n || b[pos] == '\n' || b[pos] == '\r' {
				// A trailing separator ends with an empty field.
				r.spans = append(r.spans, span{lo: uint32(pos), hi: uint32(pos)})
			} else {
				continue
			}
		}
		if pos < n {
			switch {
			case b[pos] == '\n':
				pos++
			case b[pos] == '\r' && pos+1 < n && b[pos+1] == '\n':
				pos += 2
			default:
				return r, "lone carriage return"
			}
		}
		width := len(r.spans) - rowStart
		if r.rows == 0 {
			r.width = width
		} else if width != r.width {
			return r, "a row's field count differs from the header's"
		}
		r.rows++
		rowStart = len(r.spans)
	}
	return r, ""
}

// quoted reads a quoted field whose text starts at pos; it returns the field, the
// position after the closing quote, and ok=false when the quote is not closed or is
// followed by anything but a separator or line end. A field with "" escapes is
// unescaped into the arena.
func (r *records) quoted(pos int) (span, int, bool) {
	b := r.body
	start := pos
	arenaStart := -1
	for pos < len(b) {
		c := b[pos]
		if c != '"' {
			if c == '\r' && (pos+1 >= len(b) || b[pos+1] != '\n') {
				return span{}, pos, false // lone \r inside quotes: not verified
			}
			pos++
			continue
		}
		if pos+1 < len(b) && b[pos+1] == '"' {
			if arenaStart < 0 {
				arenaStart = len(r.arena)
			}
			r.arena = append(r.arena, b[start:pos+1]...)
			pos += 2
			start = pos
			continue
		}
		field := span{lo: uint32(start), hi: uint32(pos)}
		if arenaStart >= 0 {
			r.arena = append(r.arena, b[start:pos]...)
			field = span{lo: uint32(arenaStart), hi: uint32(len(r.arena)), inArena: true}
		}
		pos++
		if pos < len(b) && b[pos] != ',' && b[pos] != '\n' && b[pos] != '\r' {
			return span{}, pos, false
		}
		return field, pos, true
	}
	return span{}, pos, false
}

// columnNames turns the header fields into pandas' column names (TextReader._get_header):
// "Unnamed: i" for an empty one, then duplicates mangled to "a.1", "a.2", ..., skipping
// names present in the header, with the named columns renamed before the unnamed ones.
func columnNames(rec *records) []string {
	names := make([]string, rec.width)
	var unnamed []int
	for i := range names {
		h := rec.field(i)
		names[i] = string(h)
		if len(h) == 0 {
			names[i] = "Unnamed: " + strconv.Itoa(i)
			unnamed = append(unnamed, i)
		}
	}
	if len(unnamed) == 0 && distinct(names) {
		return names // the usual header: nothing to rename
	}
	present := make(map[string]int, rec.width) // how often each name is in names now
	order := make([]int, 0, rec.width)
	for i, name := range names {
		present[name]++
		if len(rec.field(i)) > 0 {
			order = append(order, i)
		}
	}
	order = append(order, unnamed...)
	counts := make(map[string]int, rec.width)
	for _, i := range order {
		col := names[i]
		cur := counts[col]
		if cur > 0 {
			old := col
			for cur > 0 {
				counts[old] = cur + 1
				col = old + "." + strconv.Itoa(cur)
				if present[col] > 0 {
					cur++
				} else {
					cur = counts[col]
				}
			}
			present[old]--
			present[col]++
			names[i] = col
		}
		counts[col] = cur + 1
	}
	return names
}

// distinct reports whether no name repeats.
func distinct(names []string) bool {
	sorted := slices.Clone(names)
	slices.Sort(sorted)
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return false
		}
	}
	return true
}
