package batch

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drum-go/drum/config"
	"github.com/drum-go/drum/worker/predictor"
)

// echoModel answers each chunk as a model with one output column would: a header, then
// the first field of every row, parsed with encoding/csv (so a chunk cut inside a
// quoted field fails the test). It records every payload.
type echoModel struct {
	payloads [][]byte
	header   func(call int) string
}

func (e *echoModel) Info() predictor.Info  { return predictor.Info{} }
func (e *echoModel) Pid() int              { return 1 }
func (e *echoModel) Done() <-chan struct{} { return make(chan struct{}) }
func (e *echoModel) Close() error          { return nil }
func (e *echoModel) Call(_ context.Context, r *predictor.Request) (*predictor.Result, error) {
	e.payloads = append(e.payloads, append([]byte(nil), r.Payload...))
	rows, err := csv.NewReader(bytes.NewReader(r.Payload)).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("chunk is not whole CSV: %w", err)
	}
	head := "Predictions"
	if e.header != nil {
		head = e.header(len(e.payloads))
	}
	var out bytes.Buffer
	w := csv.NewWriter(&out)
	_ = w.Write([]string{head})
	for _, row := range rows[1:] {
		_ = w.Write(row[:1])
	}
	w.Flush()
	return &predictor.Result{Body: out.Bytes()}, nil
}

func (e *echoModel) start(context.Context) (predictor.Predictor, error) { return e, nil }

// quotedInput has quoted newlines, doubled quotes, CRLF ends and trailing blank lines.
func quotedInput(rows int) (input string, firsts []string) {
	var b strings.Builder
	b.WriteString("id,\"note\nwith newline\"\r\n")
	for i := 0; i < rows; i++ {
		first := fmt.Sprintf("r%d", i)
		switch i % 3 {
		case 0:
			fmt.Fprintf(&b, "%s,\"line one\nline \"\"two\"\"\n,end\"\r\n", first)
		case 1:
			fmt.Fprintf(&b, "%s,plain\n", first)
		default:
			first = fmt.Sprintf("r%d\nsplit", i)
			fmt.Fprintf(&b, "\"r%d\nsplit\",x\n", i)
		}
		firsts = append(firsts, first)
	}
	b.WriteString("\n\n")
	return b.String(), firsts
}

func TestChunkedScoreSplitsOnRecords(t *testing.T) {
	input, firsts := quotedInput(500)
	in := writeInput(t, "X.csv", input)
	out := filepath.Join(t.TempDir(), "out.csv")
	model := &echoModel{}
	var bar bytes.Buffer
	cfg := &config.Config{TargetType: "regression", Input: in, Output: out}
	if err := RunWith(context.Background(), cfg, model.start, nil, Options{ChunkBytes: 1000, Progress: &bar}); err != nil {
		t.Fatal(err)
	}
	if len(model.payloads) < 10 {
		t.Fatalf("%d calls for %d bytes in 1000-byte chunks", len(model.payloads), len(input))
	}
	header := "id,\"note\nwith newline\"\r\n"
	for i, p := range model.payloads {
		if !strings.HasPrefix(string(p), header) {
			t.Fatalf("chunk %d does not start with the header: %q", i, p[:min(len(p), 40)])
		}
		// A chunk stops at the first record past the limit; records here are < 100 bytes.
		if len(p) > 1000+100 {
			t.Fatalf("chunk %d holds %d bytes, limit 1000", i, len(p))
		}
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(got)).ReadAll()
	if err != nil {
		t.Fatalf("output is not CSV: %v", err)
	}
	if rows[0][0] != "Predictions" || len(rows)-1 != len(firsts) {
		t.Fatalf("output has header %q and %d rows; want Predictions and %d", rows[0], len(rows)-1, len(firsts))
	}
	for i, want := range firsts {
		if rows[i+1][0] != want {
			t.Fatalf("row %d = %q, want %q (rows lost, repeated or reordered)", i, rows[i+1][0], want)
		}
	}
	if !strings.Contains(bar.String(), "500 rows") || !strings.Contains(bar.String(), "rows/s") || !strings.Contains(bar.String(), "ETA") {
		t.Fatalf("progress bar: %q", bar.String())
	}
}

func TestSmallFileIsOneCall(t *testing.T) {
	input, _ := quotedInput(5)
	in := writeInput(t, "X.csv", input)
	model := &echoModel{}
	var bar bytes.Buffer
	cfg := &config.Config{TargetType: "regression", Input: in, Output: filepath.Join(t.TempDir(), "o.csv")}
	if err := RunWith(context.Background(), cfg, model.start, nil, Options{ChunkBytes: 1 << 20, Progress: &bar}); err != nil {
		t.Fatal(err)
	}
	if len(model.payloads) != 1 || string(model.payloads[0]) != input {
		t.Fatalf("a file below the chunk size must go whole, as DRUM sends it; got %d calls", len(model.payloads))
	}
	if bar.Len() != 0 {
		t.Fatalf("progress drawn for a single call: %q", bar.String())
	}
}

func TestChunkedScoreWholeWhenNotCSVOutput(t *testing.T) {
	input, _ := quotedInput(200)
	for _, cfg := range []*config.Config{
		{TargetType: "regression"}, // printed DataFrame
		{TargetType: "unstructured", Output: "o", ContentType: "text/plain"}, // no rows
	} {
		cfg.Input = writeInput(t, "X.csv", input)
		if cfg.Output != "" {
			cfg.Output = filepath.Join(t.TempDir(), cfg.Output)
		}
		model := &scripted{body: []byte("x\n")}
		var started bool
		if err := RunWith(context.Background(), cfg, starter(model, &started), io.Discard, Options{ChunkBytes: 100}); err != nil {
			t.Fatal(err)
		}
		if string(model.got.Payload) != input {
			t.Errorf("%s output %q: the file was not sent whole", cfg.TargetType, cfg.Output)
		}
	}
}

func TestChunkedScoreRejectsChangingColumns(t *testing.T) {
	input, _ := quotedInput(300)
	in := writeInput(t, "X.csv", input)
	out := filepath.Join(t.TempDir(), "out.csv")
	model := &echoModel{header: func(call int) string { return fmt.Sprintf("col_%d", min(call, 2)) }}
	cfg := &config.Config{TargetType: "transform", Input: in, Output: out}
	err := RunWith(context.Background(), cfg, model.start, nil, Options{ChunkBytes: 1000, Progress: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "col_2") || !strings.Contains(err.Error(), "chunk 2") {
		t.Fatalf("err = %v, want the changed columns named", err)
	}
	if _, serr := os.Stat(out); !errors.Is(serr, os.ErrNotExist) {
		t.Fatalf("a failed chunked run left %s", out)
	}
}

func TestProgressLine(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, 1000)
	now := p.started
	p.now = func() time.Time { return now }
	now = now.Add(2 * time.Second)
	p.update(250, 500)
	if want := "\r[#######.......................]  25%  500 rows  250 rows/s  ETA 6s   "; b.String() != want {
		t.Fatalf("progress %q, want %q", b.String(), want)
	}
	b.Reset()
	now = now.Add(2 * time.Second)
	p.update(1000, 500)
	p.finish()
	if !strings.Contains(b.String(), "scored 1000 rows in 4s (250 rows/s)") {
		t.Fatalf("finish %q", b.String())
	}
	silent := newProgress(nil, 10)
	silent.update(5, 5) // no writer (piped stderr): nothing drawn, no panic
	silent.finish()
}
