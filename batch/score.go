// Package batch is `drum score`: one predictor, one input file, predictions written as
// CSV the way DRUM writes them (pandas to_csv, values not cast), or printed as the
// DataFrame text DRUM prints when no --output is given.
package batch

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/drum-go/drum/config"
	"github.com/drum-go/drum/worker/predictor"
)

// Starter starts the predictor that scores the file.
type Starter func(ctx context.Context) (predictor.Predictor, error)

// DefaultChunkBytes is how much CSV input one predictor call gets in chunked mode. The
// predictor's pandas frame costs about 3-4 times the CSV text, so this keeps the
// Python side within tens of MiB of its idle size whatever the file's size.
const DefaultChunkBytes = 4 << 20

// Options tune Run; the zero value is what `drum score` uses.
type Options struct {
	// ChunkBytes: --output CSV files larger than this are scored in chunks of about
	// this size (0: DefaultChunkBytes).
	ChunkBytes int
	// Progress receives the progress bar; nil: stderr when it is a terminal, else none.
	Progress io.Writer
}

// Run scores cfg.Input and writes to cfg.Output, or to stdout when it is empty.
func Run(ctx context.Context, cfg *config.Config, start Starter, stdout io.Writer) error {
	return RunWith(ctx, cfg, start, stdout, Options{})
}

// RunWith is Run with options.
func RunWith(ctx context.Context, cfg *config.Config, start Starter, stdout io.Writer, opts Options) error {
	if opts.ChunkBytes <= 0 {
		opts.ChunkBytes = DefaultChunkBytes
	}
	if opts.Progress == nil && stderrIsTerminal() {
		opts.Progress = os.Stderr
	}
	st, err := os.Stat(cfg.Input)
	if err != nil {
		return fmt.Errorf("read --input: %w", err)
	}
	if err := checkOutput(cfg.Output); err != nil {
		return err
	}
	if chunkable(cfg) && st.Size() > int64(opts.ChunkBytes) {
		return runChunked(ctx, cfg, start, opts, st.Size())
	}
	return runWhole(ctx, cfg, start, stdout)
}

// chunkable: CSV in, CSV out, one row in gives one row out. The printed DataFrame
// (no --output) stays whole, as pandas truncates it to the first and last rows of
// the whole frame; .mtx and unstructured inputs have no rows to split on.
func chunkable(cfg *config.Config) bool {
	if cfg.Output == "" || filepath.Ext(cfg.Input) == ".mtx" {
		return false
	}
	return cfg.TargetType != config.TargetUnstructured
}

// scoreRequest is the predictor call for payload (the whole file or one chunk).
func scoreRequest(cfg *config.Config, payload []byte) (*predictor.Request, error) {
	req := &predictor.Request{Op: "score", Payload: payload, Format: "csv", ScoreOutput: "csv"}
	// DRUM picks the format by extension only, case-sensitively.
	if filepath.Ext(cfg.Input) == ".mtx" {
		req.Format, req.MimeType = "mtx", "text/mtx"
	}
	if cfg.Output == "" {
		req.ScoreOutput = "text"
	}
	if cfg.SparseColumnFile != "" {
		var err error
		if req.SparseColNames, err = readColumnNames(cfg.SparseColumnFile); err != nil {
			return nil, err
		}
	}
	switch cfg.TargetType {
	case config.TargetUnstructured:
		req = unstructuredRequest(cfg, payload)
	case config.TargetTransform:
		req.Op, req.Batch = "transform", true
		if req.MimeType == "" {
			req.MimeType = "text/csv"
		}
	}
	return req, nil
}

// runWhole sends the whole file in one call, as DRUM does.
func runWhole(ctx context.Context, cfg *config.Config, start Starter, stdout io.Writer) error {
	payload, err := os.ReadFile(cfg.Input)
	if err != nil {
		return fmt.Errorf("read --input: %w", err)
	}
	req, err := scoreRequest(cfg, payload)
	if err != nil {
		return err
	}
	p, err := start(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	res, err := p.Call(ctx, req)
	if err != nil {
		return fmt.Errorf("score %s: %w", cfg.Input, err)
	}
	if cfg.Output == "" {
		_, err = stdout.Write(res.Body)
		return err
	}
	return writeAtomically(cfg.Output, func(w io.Writer) error {
		_, err := w.Write(res.Body)
		return err
	})
}

// writeAtomically writes beside the target and renames, so a failed run never leaves
// half a file.
func writeAtomically(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".drum-score-*")
	if err != nil {
		return fmt.Errorf("write --output: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write --output %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write --output %s: %w", path, err)
	}
	return nil
}

// checkOutput fails before the model loads when --output cannot be written: its folder
// must exist and the path must not be a directory.
func checkOutput(path string) error {
	if path == "" {
		return nil
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("--output %s is a directory; pass a file path", path)
	}
	dir := filepath.Dir(path)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("--output %s: folder %s does not exist", path, dir)
	}
	return nil
}

// unstructuredRequest is DRUM's batch unstructured call: --content-type decides text or
// bytes as the HTTP Content-Type does, --query becomes a plain dict (last value wins).
func unstructuredRequest(cfg *config.Config, payload []byte) *predictor.Request {
	req := &predictor.Request{Op: "unstructured", Batch: true, Payload: payload}
	mt, params, _ := strings.Cut(cfg.ContentType, ";")
	req.MimeType = strings.TrimSpace(mt)
	for _, p := range strings.Split(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "charset") {
			req.Charset = strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	if cfg.Query != "" {
		if q, err := url.ParseQuery(cfg.Query); err == nil {
			keys := make([]string, 0, len(q))
			for k := range q {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				req.Query = append(req.Query, [2]string{k, q[k][len(q[k])-1]})
			}
		}
	}
	return req
}

// readColumnNames reads --sparse-column-file: one name per line, stripped.
func readColumnNames(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read --sparse-column-file: %w", err)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		names = append(names, strings.TrimSpace(line))
	}
	return names, nil
}
