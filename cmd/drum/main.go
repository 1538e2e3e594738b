// Command drum serves DataRobot DRUM model folders with a Go prefork server.
// It keeps DRUM's command line, environment variables and HTTP API.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/drum-go/drum/config"
)

// Exit codes: 2 for argument errors (as argparse), 1 for everything else that fails.
const (
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	app := newApp()
	if err := app.Run(normaliseArgs(os.Args)); err != nil {
		fmt.Fprintf(os.Stderr, "drum: error: %v\n", err)
		var ue *config.UsageError
		if errors.As(err, &ue) {
			os.Exit(exitUsage)
		}
		os.Exit(exitFailure)
	}
}

func newApp() *cli.App {
	return &cli.App{
		Name:    "drum",
		Usage:   "serve DataRobot DRUM model folders (custom.py hooks or a drop-in artifact)",
		Version: config.Version,
		// Errors are printed once, by main, with the right exit code.
		ExitErrHandler: func(*cli.Context, error) {},
		Commands: []*cli.Command{
			serverCommand(),
			scoreCommand(),
			workerCommand(),
			versionCommand(),
		},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return &config.UsageError{Msg: err.Error()}
		},
	}
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the DRUM version drum is compatible with",
		Action: func(c *cli.Context) error {
			fmt.Fprintf(c.App.Writer, "drum %s\n", config.Version)
			return nil
		},
	}
}
