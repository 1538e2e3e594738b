// Package table holds a parsed structured request as typed columns: what pandas.read_csv
// would have produced, so the predictor can build the DataFrame from arrays instead of
// parsing CSV text again.
package table

import "fmt"

// Kind is a column's pandas dtype, one of those read_csv gives with default options.
type Kind uint8

const (
	Int64   Kind = iota + 1 // int64
	Float64                 // float64 (NaN for missing)
	Bool                    // bool
	Object                  // object: str, float nan, or Python bool cells
)

func (k Kind) String() string {
	switch k {
	case Int64:
		return "int64"
	case Float64:
		return "float64"
	case Bool:
		return "bool"
	case Object:
		return "object"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// ValueTag says what Python object an object-column cell is.
type ValueTag uint8

const (
	Str   ValueTag = iota // a str (Value.S)
	NaN                   // float('nan'), a missing value
	True                  // the Python bool True
	False                 // the Python bool False
)

// Value is one object-column cell.
type Value struct {
	Tag ValueTag
	S   string // Tag Str only
}

// Column is one named column; only the slice matching Kind is set, holding Rows values.
type Column struct {
	Name    string
	Kind    Kind
	Ints    []int64   // Kind Int64
	Floats  []float64 // Kind Float64 (NaN for missing)
	Bools   []bool    // Kind Bool
	Objects []Value   // Kind Object
}

// Len is the number of values the column holds for its kind.
func (c *Column) Len() int {
	switch c.Kind {
	case Int64:
		return len(c.Ints)
	case Float64:
		return len(c.Floats)
	case Bool:
		return len(c.Bools)
	case Object:
		return len(c.Objects)
	}
	return 0
}

// Table is a whole frame: columns in order, every one Rows long, with a RangeIndex.
type Table struct {
	Columns []Column
	Rows    int
}

// SameSchema reports whether u has the same column names, order and kinds as t.
func (t *Table) SameSchema(u *Table) bool {
	if len(t.Columns) != len(u.Columns) {
		return false
	}
	for i := range t.Columns {
		if t.Columns[i].Name != u.Columns[i].Name || t.Columns[i].Kind != u.Columns[i].Kind {
			return false
		}
	}
	return true
}

// Concat appends the rows of ts in order into one new table. All tables must share a
// schema; Concat panics otherwise (callers group by SameSchema first).
func Concat(ts []*Table) *Table {
	if len(ts) == 0 {
		return &Table{}
	}
	rows := 0
	for _, t := range ts {
		if !ts[0].SameSchema(t) {
			panic("table.Concat: tables do not share a schema")
		}
		rows += t.Rows
	}
	out := &Table{Columns: make([]Column, len(ts[0].Columns)), Rows: rows}
	for i, c := range ts[0].Columns {
		dst := Column{Name: c.Name, Kind: c.Kind}
		switch c.Kind {
		case Int64:
			dst.Ints = make([]int64, 0, rows)
			for _, t := range ts {
				dst.Ints = append(dst.Ints, t.Columns[i].Ints...)
			}
		case Float64:
			dst.Floats = make([]float64, 0, rows)
			for _, t := range ts {
				dst.Floats = append(dst.Floats, t.Columns[i].Floats...)
			}
		case Bool:
			dst.Bools = make([]bool, 0, rows)
			for _, t := range ts {
				dst.Bools = append(dst.Bools, t.Columns[i].Bools...)
			}
		case Object:
			dst.Objects = make([]Value, 0, rows)
			for _, t := range ts {
				dst.Objects = append(dst.Objects, t.Columns[i].Objects...)
			}
		}
		out.Columns[i] = dst
	}
	return out
}
