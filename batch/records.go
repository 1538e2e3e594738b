package batch

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// recordReader reads a CSV file one record at a time, as pandas' default dialect splits
// it: a record ends at a newline outside double quotes, so a quoted field may hold
// newlines (a doubled quote inside quotes toggles twice and changes nothing). A file
// whose lines end with a lone '\r' reads as one record, which only costs the chunking.
type recordReader struct {
	r       *bufio.Reader
	inQuote bool
	read    int64 // bytes consumed so far
}

func newRecordReader(r io.Reader) *recordReader {
	return &recordReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// next appends the next whole record, its newline included, to dst. It returns io.EOF
// (and dst unchanged) when no byte is left; a last record without a newline is returned
// as it is.
func (rr *recordReader) next(dst []byte) ([]byte, error) {
	start := len(dst)
	for {
		piece, err := rr.r.ReadSlice('\n')
		dst = append(dst, piece...)
		rr.read += int64(len(piece))
		if bytes.Count(piece, []byte{'"'})%2 == 1 {
			rr.inQuote = !rr.inQuote
		}
		switch {
		case err == nil && !rr.inQuote:
			return dst, nil
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(dst) == start {
				return dst, io.EOF
			}
			return dst, nil
		default:
			return dst, err
		}
	}
}

// blank reports a record pandas skips (skip_blank_lines): nothing but the line end.
func blank(record []byte) bool {
	return len(bytes.TrimRight(record, "\r\n")) == 0
}

// splitFirstRecord cuts data after its first CSV record (the header of a chunk's output).
func splitFirstRecord(data []byte) (first, rest []byte, err error) {
	rr := newRecordReader(bytes.NewReader(data))
	first, err = rr.next(nil)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, err
	}
	return first, data[len(first):], nil
}
