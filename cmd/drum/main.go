// Command drum serves DataRobot DRUM model folders with a Go prefork server.
// It keeps DRUM's command line, environment variables and HTTP API.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/drum-go/drum/config"
	"github.com/drum-go/drum/supervisor"
)

// Exit codes: 2 for argument errors (as argparse), 1 for everything else that fails.
const (
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "server" && supervisor.ShouldRunInit() {
		os.Exit(supervisor.RunInit(os.Args, newLogger("drum-init", "info", os.Getenv("DRUM_LOG_FORMAT") == "json")))
	}
	app := newApp()
	if len(os.Args) < 2 {
		// As DRUM: no sub-command prints help and fails.
		_ = app.Run([]string{os.Args[0], "--help"})
		os.Exit(exitFailure)
	}
	if err := app.Run(normaliseArgs(os.Args)); err != nil {
		if os.Args[1] == "worker" {
			// The master re-logs a worker's output; a JSON line keeps the level.
			b, _ := json.Marshal(map[string]string{"@level": "error", "@message": err.Error()})
			fmt.Fprintf(os.Stderr, "%s\n", b)
		} else {
			fmt.Fprintf(os.Stderr, "drum: error: %v\n", err)
		}
		var ue *config.UsageError
		if errors.As(err, &ue) {
			os.Exit(exitUsage)
		}
		os.Exit(exitFailure)
	}
}

func init() {
	// DRUM prints "drum <version>".
	cli.VersionPrinter = func(c *cli.Context) { fmt.Fprintf(c.App.Writer, "drum %s\n", c.App.Version) }
}

func newApp() *cli.App {
	return &cli.App{
		Name:    "drum",
		Usage:   "serve DataRobot DRUM model folders (custom.py hooks or a drop-in artifact)",
		Version: config.Version,
		// Errors are printed once, by main, with the right exit code.
		ExitErrHandler: func(*cli.Context, error) {},
		Commands:       commands(),
		OnUsageError:   usageError,
	}
}

func commands() []*cli.Command {
	cmds := []*cli.Command{serverCommand(), scoreCommand(), ctlCommand(), workerCommand(), versionCommand()}
	for _, c := range cmds {
		c.OnUsageError = usageError
	}
	return cmds
}

// usageError makes a flag-parsing failure an argument error (exit 2, like argparse).
func usageError(_ *cli.Context, err error, _ bool) error {
	return &config.UsageError{Msg: err.Error()}
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
