package table

import (
	"math"
	"reflect"
	"testing"
)

func sample(rows int, base int64) *Table {
	t := &Table{Rows: rows, Columns: []Column{
		{Name: "i", Kind: Int64}, {Name: "f", Kind: Float64},
		{Name: "b", Kind: Bool}, {Name: "o", Kind: Object},
	}}
	for r := 0; r < rows; r++ {
		t.Columns[0].Ints = append(t.Columns[0].Ints, base+int64(r))
		t.Columns[1].Floats = append(t.Columns[1].Floats, float64(base)+0.5)
		t.Columns[2].Bools = append(t.Columns[2].Bools, r%2 == 0)
		t.Columns[3].Objects = append(t.Columns[3].Objects, Value{Tag: ValueTag(r % 4), S: "x"})
	}
	return t
}

func TestSameSchema(t *testing.T) {
	a, b := sample(1, 0), sample(3, 5)
	if !a.SameSchema(b) {
		t.Fatal("tables with equal names and kinds differ")
	}
	b.Columns[2].Kind = Object
	if a.SameSchema(b) {
		t.Fatal("a kind change went unnoticed")
	}
	c := sample(1, 0)
	c.Columns[0].Name = "j"
	if a.SameSchema(c) {
		t.Fatal("a name change went unnoticed")
	}
	c = sample(1, 0)
	c.Columns = c.Columns[:3]
	if a.SameSchema(c) {
		t.Fatal("a missing column went unnoticed")
	}
}

func TestConcat(t *testing.T) {
	got := Concat([]*Table{sample(2, 0), sample(1, 10), sample(0, 20)})
	if got.Rows != 3 {
		t.Fatalf("rows %d, want 3", got.Rows)
	}
	if want := []int64{0, 1, 10}; !reflect.DeepEqual(got.Columns[0].Ints, want) {
		t.Fatalf("ints %v, want %v", got.Columns[0].Ints, want)
	}
	if want := []float64{0.5, 0.5, 10.5}; !reflect.DeepEqual(got.Columns[1].Floats, want) {
		t.Fatalf("floats %v, want %v", got.Columns[1].Floats, want)
	}
	if want := []bool{true, false, true}; !reflect.DeepEqual(got.Columns[2].Bools, want) {
		t.Fatalf("bools %v, want %v", got.Columns[2].Bools, want)
	}
	if want := []Value{{Str, "x"}, {NaN, "x"}, {Str, "x"}}; !reflect.DeepEqual(got.Columns[3].Objects, want) {
		t.Fatalf("objects %v, want %v", got.Columns[3].Objects, want)
	}
	for i := range got.Columns {
		if got.Columns[i].Len() != 3 {
			t.Fatalf("column %d holds %d values", i, got.Columns[i].Len())
		}
	}
	if math.IsNaN(got.Columns[1].Floats[0]) {
		t.Fatal("unexpected NaN")
	}
}

func TestConcatSchemaMismatchPanics(t *testing.T) {
	b := sample(1, 0)
	b.Columns[0].Kind = Float64
	defer func() {
		if recover() == nil {
			t.Fatal("Concat of different schemas did not panic")
		}
	}()
	Concat([]*Table{sample(1, 0), b})
}
