package main

import (
	"context"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/drum-go/drum/batch"
	"github.com/drum-go/drum/config"
	"github.com/drum-go/drum/worker/predictor"
)

func scoreCommand() *cli.Command {
	flags := append(modelFlags(),
		&cli.StringFlag{Name: "input", Usage: "CSV (or .mtx) file to score"},
		&cli.StringFlag{Name: "output", Usage: "write the predictions CSV here (default: print them)"},
		&cli.StringFlag{Name: "sparse-column-file", Usage: "column names of an .mtx --input, one per line"},
		&cli.StringFlag{Name: "content-type", Usage: "unstructured: the input's MIME type (default \"text/plain; charset=utf8\")"},
		&cli.StringFlag{Name: "query", Usage: "unstructured: query parameters for the hook, \"a=1&b=2\""},
	)
	return &cli.Command{
		Name:   "score",
		Usage:  "score one input file and write the predictions as CSV",
		Flags:  flags,
		Action: runScore,
	}
}

func runScore(c *cli.Context) error {
	cfg, err := buildConfig(c, config.CommandScore, func(f *config.Flags) {
		f.Input, f.Output = c.String("input"), c.String("output")
		f.SparseColumnFile = c.String("sparse-column-file")
		f.ContentType, f.Query = c.String("content-type"), c.String("query")
	})
	if err != nil {
		return err
	}
	log := newLogger("drum", cfg.LogLevel, cfg.LogJSON)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	start := func(ctx context.Context) (predictor.Predictor, error) {
		return startPredictor(ctx, cfg, log)
	}
	return batch.Run(ctx, cfg, start, c.App.Writer)
}
