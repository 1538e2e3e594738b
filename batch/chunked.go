package batch

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/drum-go/drum/config"
)

// runChunked scores a large CSV file in pieces of about opts.ChunkBytes, each sent with
// the header record, and writes the outputs as one CSV with one header. Memory stays
// about two chunks in Go and one chunk's frame in Python, whatever the file's size.
//
// pandas infers column types per call, so a chunk can read a column differently from
// the whole file (all empty: float NaN instead of object; only integers: int64 instead
// of float64). That is what the server sees for the same rows sent as one request;
// models that depend on the inferred dtype should cast in their hooks.
func runChunked(ctx context.Context, cfg *config.Config, start Starter, opts Options, size int64) error {
	in, err := os.Open(cfg.Input)
	if err != nil {
		return fmt.Errorf("read --input: %w", err)
	}
	defer in.Close()
	records := newRecordReader(in)
	header, err := records.next(nil)
	if err != nil {
		return fmt.Errorf("read --input %s: %w", cfg.Input, err)
	}
	if blank(header) {
		// pandas would take the first non-blank line as the header; keep DRUM's path.
		in.Close()
		return runWhole(ctx, cfg, start, nil)
	}
	p, err := start(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	bar := newProgress(opts.Progress, size)
	return writeAtomically(cfg.Output, func(w io.Writer) error {
		out := bufio.NewWriterSize(w, 256<<10)
		var outHeader []byte
		chunk := make([]byte, 0, opts.ChunkBytes+64<<10)
		for n := 1; ; n++ {
			chunk = append(chunk[:0], header...)
			rows, eof, err := fillChunk(records, &chunk, opts.ChunkBytes)
			if err != nil {
				return fmt.Errorf("read --input %s: %w", cfg.Input, err)
			}
			if rows == 0 && n > 1 {
				break // only blank lines were left, which pandas skips
			}
			req, err := scoreRequest(cfg, chunk)
			if err != nil {
				return err
			}
			res, err := p.Call(ctx, req)
			if err != nil {
				return fmt.Errorf("score %s (chunk %d: data rows %d-%d): %w", cfg.Input, n, bar.rows+1, bar.rows+rows, err)
			}
			first, rest, err := splitFirstRecord(res.Body)
			if err != nil {
				return fmt.Errorf("score %s: chunk %d output: %w", cfg.Input, n, err)
			}
			if outHeader == nil {
				outHeader = append([]byte(nil), first...)
				rest = res.Body
			} else if !bytes.Equal(first, outHeader) {
				return fmt.Errorf("score %s: chunk %d gave the columns %q, the first chunk %q; the model's output columns depend on the data, so this file cannot be scored in chunks",
					cfg.Input, n, bytes.TrimRight(first, "\r\n"), bytes.TrimRight(outHeader, "\r\n"))
			}
			if _, err := out.Write(rest); err != nil {
				return fmt.Errorf("write --output %s: %w", cfg.Output, err)
			}
			bar.update(records.read, rows)
			if eof {
				break
			}
		}
		if err := out.Flush(); err != nil {
			return fmt.Errorf("write --output %s: %w", cfg.Output, err)
		}
		bar.finish()
		return nil
	})
}

// fillChunk appends whole records to *chunk until it holds at least limit bytes or the
// input ends (eof). rows counts the records that are not blank.
func fillChunk(records *recordReader, chunk *[]byte, limit int) (rows int, eof bool, err error) {
	for len(*chunk) < limit {
		before := len(*chunk)
		*chunk, err = records.next(*chunk)
		if errors.Is(err, io.EOF) {
			return rows, true, nil
		}
		if err != nil {
			return rows, false, err
		}
		if !blank((*chunk)[before:]) {
			rows++
		}
	}
	return rows, false, nil
}

// progress draws a one-line bar on a terminal: share of the file read, rows scored,
// rows/s and the time left, estimated from the bytes still to read.
type progress struct {
	w       io.Writer
	size    int64
	started time.Time
	rows    int
	now     func() time.Time
}

func newProgress(w io.Writer, size int64) *progress {
	return &progress{w: w, size: size, started: time.Now(), now: time.Now}
}

func (p *progress) update(read int64, rows int) {
	p.rows += rows
	if p.w == nil {
		return
	}
	elapsed := p.now().Sub(p.started).Seconds()
	share := float64(read) / float64(max(p.size, 1))
	rate, eta := 0.0, "?"
	if elapsed > 0 && share > 0 {
		rate = float64(p.rows) / elapsed
		eta = (time.Duration(elapsed * (1 - share) / share * float64(time.Second))).Round(time.Second).String()
	}
	const width = 30
	filled := int(share * width)
	filled = min(max(filled, 0), width)
	bar := bytes.Repeat([]byte{'#'}, filled)
	bar = append(bar, bytes.Repeat([]byte{'.'}, width-filled)...)
	fmt.Fprintf(p.w, "\r[%s] %3.0f%%  %d rows  %.0f rows/s  ETA %s   ", bar, share*100, p.rows, rate, eta)
}

func (p *progress) finish() {
	if p.w == nil {
		return
	}
	elapsed := p.now().Sub(p.started)
	fmt.Fprintf(p.w, "\rscored %d rows in %s (%.0f rows/s)%s\n", p.rows, elapsed.Round(time.Millisecond),
		float64(p.rows)/max(elapsed.Seconds(), 1e-9), "                              ")
}
