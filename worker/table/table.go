// Package table is a THROWAWAY stand-in for the fastpath branch's package of the same
// name (same API), so the batcher compiles before that branch is merged. Delete before
// merging fastpath.
package table

type Kind uint8

const (
	Int64 Kind = iota
	Float64
	Bool
	Object
)

type Value = any

type Column struct {
	Name    string
	Kind    Kind
	Ints    []int64
	Floats  []float64
	Bools   []bool
	Objects []Value
}

type Table struct {
	Columns []Column
	Rows    int
}

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

func Concat(ts []*Table) *Table {
	out := &Table{}
	for i, c := range ts[0].Columns {
		nc := Column{Name: c.Name, Kind: c.Kind}
		for _, t := range ts {
			s := t.Columns[i]
			nc.Ints = append(nc.Ints, s.Ints...)
			nc.Floats = append(nc.Floats, s.Floats...)
			nc.Bools = append(nc.Bools, s.Bools...)
			nc.Objects = append(nc.Objects, s.Objects...)
		}
		out.Columns = append(out.Columns, nc)
	}
	for _, t := range ts {
		out.Rows += t.Rows
	}
	return out
}
