package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/drum-go/drum/config"
	"github.com/drum-go/drum/supervisor"
)

func ctlCommand() *cli.Command {
	return &cli.Command{
		Name:      "ctl",
		Usage:     "control a running drum server: status | add | remove | kill WORKER | reload | drain",
		ArgsUsage: "COMMAND [WORKER]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "socket", EnvVars: []string{"DRUM_CONTROL_SOCKET"}, Usage: "the server's control socket (default: derived from --address)"},
			&cli.StringFlag{Name: "address", EnvVars: []string{"ADDRESS"}, Usage: "the server's --address, to find its default control socket"},
			&cli.BoolFlag{Name: "json", Usage: "print the raw JSON reply"},
		},
		Action: runCtl,
	}
}

func runCtl(c *cli.Context) error {
	path := c.String("socket")
	if path == "" {
		if c.String("address") == "" {
			return &config.UsageError{Msg: "drum ctl needs --socket PATH or --address HOST:PORT (the server's) to find the control socket"}
		}
		path = config.DefaultControlSocket(c.String("address"))
	}
	req := supervisor.CtlRequest{Cmd: c.Args().First()}
	args := c.Args().Len()
	switch req.Cmd {
	case "":
		req.Cmd = "status"
	case "kill":
		n, err := strconv.Atoi(c.Args().Get(1))
		if err != nil || n < 1 || args != 2 {
			return &config.UsageError{Msg: "drum ctl kill WORKER: WORKER is one worker id (a positive number) from drum ctl status"}
		}
		req.Worker = n
	default:
		if args > 1 {
			return &config.UsageError{Msg: fmt.Sprintf("drum ctl %s takes no argument (got %q); run it once per worker to add or remove several",
				req.Cmd, strings.Join(c.Args().Slice()[1:], " "))}
		}
	}
	reply, err := supervisor.Ctl(path, req)
	if err != nil {
		return err
	}
	out := c.App.Writer
	if c.Bool("json") {
		b, _ := json.MarshalIndent(reply, "", "  ")
		fmt.Fprintln(out, string(b))
		return nil
	}
	if reply.Message != "" {
		fmt.Fprintln(out, reply.Message)
	}
	fmt.Fprintf(out, "master pid %d, %d workers wanted\n", reply.Pid, reply.Want)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKER\tPID\tSTATE\tREQUESTS\tIN FLIGHT\tLAST HEARTBEAT\tRESTARTS")
	for _, w := range reply.Workers {
		state := w.State
		if w.Replacing {
			state += " (replacement)"
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%d\t%d\t%.1fs ago\t%d\n", w.ID, w.Pid, state, w.Requests, w.InFlight, w.LastHeartbeat, w.Restarts)
	}
	return tw.Flush()
}
