package table

import (
	"bytes"
	"strconv"
	"unicode/utf8"
)

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
	names := columnNames(rec.fields[:width])
	for j := 0; j < width; j++ {
		cells := make([][]byte, rows)
		for i := range cells {
			cells[i] = rec.fields[(i+1)*width+j]
		}
		col, why := inferColumn(cells)
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

// records is the tokenized body: every record's fields, row-major, all width long.
type records struct {
	fields     [][]byte
	width      int
	rows       int // records, header included
	blankLines int
}

// isSpace is the C tokenizer's isspace_ascii.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// tokenize splits body into records and fields as pandas' C tokenizer does for the
// subset handled: ',' separated, '"' quoting with "" escapes, \n or \r\n line ends,
// empty lines skipped. Fields with leading or trailing whitespace, stray quotes, lone
// \r and rows of a different width than the header are not handled.
func tokenize(b []byte) (records, string) {
	var r records
	pos := 0
	n := len(b)
	var row [][]byte
	for pos < n {
		if len(row) == 0 {
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
		var field []byte
		if b[pos] == '"' {
			var ok bool
			field, pos, ok = quoted(b, pos+1)
			if !ok {
				return r, "unterminated or irregular quoted field"
			}
		} else {
			start := pos
			for pos < n && b[pos] != ',' && b[pos] != '\n' && b[pos] != '\r' {
				if b[pos] == '"' {
					return r, "quote inside an unquoted field"
				}
				pos++
			}
			field = b[start:pos]
		}
		if len(field) > 0 && (isSpace(field[0]) || isSpace(field[len(field)-1])) {
			return r, "field with leading or trailing whitespace"
		}
		row = append(row, field)
		// After a field: a separator, a line end or the end of the body.
		switch {
		case pos >= n:
		case b[pos] == ',':
			pos++
			if pos >= n || b[pos] == '\n' || b[pos] == '\r' {
				row = append(row, b[pos:pos]) // a trailing separator ends with an empty field
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
		if r.rows == 0 {
			r.width = len(row)
		} else if len(row) != r.width {
			return r, "a row's field count differs from the header's"
		}
		r.fields = append(r.fields, row...)
		r.rows++
		row = row[:0]
	}
	return r, ""
}

// quoted reads a quoted field whose text starts at pos; it returns the field, the
// position after the closing quote, and ok=false when the quote is not closed or is
// followed by anything but a separator or line end.
func quoted(b []byte, pos int) ([]byte, int, bool) {
	start := pos
	var out []byte // only when the field holds "" escapes
	for pos < len(b) {
		c := b[pos]
		if c != '"' {
			if c == '\r' && (pos+1 >= len(b) || b[pos+1] != '\n') {
				return nil, pos, false // lone \r inside quotes: not verified
			}
			pos++
			continue
		}
		if pos+1 < len(b) && b[pos+1] == '"' {
			out = append(out, b[start:pos+1]...)
			pos += 2
			start = pos
			continue
		}
		field := b[start:pos]
		if out != nil {
			field = append(out, field...)
		}
		pos++
		if pos < len(b) && b[pos] != ',' && b[pos] != '\n' && b[pos] != '\r' {
			return nil, pos, false
		}
		return field, pos, true
	}
	return nil, pos, false
}

// columnNames turns the header fields into pandas' column names (TextReader._get_header):
// "Unnamed: i" for an empty one, then duplicates mangled to "a.1", "a.2", ..., skipping
// names present in the header, with the named columns renamed before the unnamed ones.
func columnNames(header [][]byte) []string {
	names := make([]string, len(header))
	present := make(map[string]int, len(header)) // how often each name is in names now
	order := make([]int, 0, len(header))
	var unnamed []int
	for i, h := range header {
		names[i] = string(h)
		if len(h) == 0 {
			names[i] = "Unnamed: " + strconv.Itoa(i)
			unnamed = append(unnamed, i)
		} else {
			order = append(order, i)
		}
		present[names[i]]++
	}
	order = append(order, unnamed...)
	counts := make(map[string]int, len(header))
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
