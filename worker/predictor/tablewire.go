package predictor

import (
	"encoding/binary"
	"math"
	"strings"
	"unsafe"

	"github.com/drum-go/drum/worker/table"
)

// The wire form of Request.Table. The frame data starts with the table section
// (tableMeta.Bytes long) and continues with the raw payload, which hooks still receive as
// binary_data. Each column occupies [Offset, Offset+Bytes) of the section. Columns are
// laid out by kind (bool, float64, int64, object: the order of pandas' consolidated
// blocks), in column order within a kind, each kind's numeric columns back to back so
// the bridge reads them as one 2-D block; every kind starts 8-byte aligned.
//
//   - int64, float64: Rows little-endian 8-byte values (np.frombuffer "<i8" / "<f8");
//   - bool: Rows bytes, 0 or 1;
//   - object: Rows tag bytes (table.ValueTag: 0 str, 1 nan, 2 True, 3 False), then the
//     UTF-8 text of the str cells in row order. With Sep "nul" the texts are joined by
//     NUL bytes (one C-level split in Python); when a text holds a NUL, Sep is "len" and
//     each text is preceded by its uint32 little-endian byte length instead.
type tableMeta struct {
	Rows    int               `json:"rows"`
	Bytes   int               `json:"bytes"`
	Columns []tableColumnMeta `json:"columns"`
}

type tableColumnMeta struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"` // int64, float64, bool, object
	Offset int    `json:"offset"`
	Bytes  int    `json:"bytes"`
	Strs   int    `json:"strs,omitempty"` // object: number of str cells
	Sep    string `json:"sep,omitempty"`  // object: "nul" or "len"
}

func align8(n int) int { return (n + 7) &^ 7 }

// wireOrder is the order of kinds in the table section.
var wireOrder = [...]table.Kind{table.Bool, table.Float64, table.Int64, table.Object}

// encodeTable lays t out as described above, followed by payload, in one new buffer.
func encodeTable(t *table.Table, payload []byte) (*tableMeta, []byte) {
	m := &tableMeta{Rows: t.Rows, Columns: make([]tableColumnMeta, len(t.Columns))}
	off := 0
	for _, kind := range wireOrder {
		for i := range t.Columns {
			c := &t.Columns[i]
			if c.Kind != kind {
				continue
			}
			cm := tableColumnMeta{Name: c.Name, Kind: c.Kind.String(), Offset: off}
			switch c.Kind {
			case table.Int64, table.Float64:
				cm.Bytes = 8 * t.Rows
			case table.Bool:
				cm.Bytes = t.Rows
			case table.Object:
				cm.Sep = "nul"
				text := 0
				for _, v := range c.Objects {
					if v.Tag == table.Str {
						cm.Strs++
						text += len(v.S)
						if strings.IndexByte(v.S, 0) >= 0 {
							cm.Sep = "len"
						}
					}
				}
				if cm.Sep == "len" {
					text += 4 * cm.Strs
				} else if cm.Strs > 0 {
					text += cm.Strs - 1
				}
				cm.Bytes = t.Rows + text
			}
			m.Columns[i] = cm
			off += cm.Bytes
			if kind == table.Object {
				off = align8(off)
			}
		}
		off = align8(off)
	}
	for i := range t.Columns {
		if m.Columns[i].Kind == "" || m.Columns[i].Kind[0] == 'K' {
			// A column of no known kind: the bridge rejects it by name.
			m.Columns[i] = tableColumnMeta{Name: t.Columns[i].Name, Kind: t.Columns[i].Kind.String(), Offset: off}
		}
	}
	m.Bytes = off
	buf := make([]byte, off+len(payload))
	for i := range t.Columns {
		writeColumn(buf[m.Columns[i].Offset:], &t.Columns[i], &m.Columns[i], t.Rows)
	}
	copy(buf[off:], payload)
	return m, buf
}

func writeColumn(dst []byte, c *table.Column, cm *tableColumnMeta, rows int) {
	switch c.Kind {
	case table.Int64:
		if littleEndian && rows > 0 {
			copy(dst, unsafe.Slice((*byte)(unsafe.Pointer(&c.Ints[0])), 8*rows))
			return
		}
		for i, v := range c.Ints[:rows] {
			binary.LittleEndian.PutUint64(dst[8*i:], uint64(v))
		}
	case table.Float64:
		if littleEndian && rows > 0 {
			copy(dst, unsafe.Slice((*byte)(unsafe.Pointer(&c.Floats[0])), 8*rows))
			return
		}
		for i, v := range c.Floats[:rows] {
			binary.LittleEndian.PutUint64(dst[8*i:], math.Float64bits(v))
		}
	case table.Bool:
		for i, v := range c.Bools[:rows] {
			if v {
				dst[i] = 1
			}
		}
	case table.Object:
		p := rows
		first := true
		for i, v := range c.Objects[:rows] {
			dst[i] = byte(v.Tag)
			if v.Tag != table.Str {
				continue
			}
			if cm.Sep == "len" {
				binary.LittleEndian.PutUint32(dst[p:], uint32(len(v.S)))
				p += 4
			} else if !first {
				dst[p] = 0
				p++
			}
			first = false
			p += copy(dst[p:], v.S)
		}
	}
}
