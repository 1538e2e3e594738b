package ipc

import (
	"encoding/json"
	"fmt"
	"io"
)

// Control-channel payloads (frame meta, JSON). The master sends KindConfig first, then
// possibly KindStop; a worker sends KindReady once, KindHeartbeat periodically, and
// KindFailed before exiting when it could not start.

// Ready tells the master that a worker can serve.
type Ready struct {
	Pid          int    `json:"pid"`
	PredictorPid int    `json:"predictor_pid"`
	Predictor    string `json:"predictor,omitempty"` // built-in predictor name, if any
}

// Heartbeat is sent every heartbeat interval by a live worker.
type Heartbeat struct {
	Counters Counters `json:"counters"`
}

// Counters are a worker's cumulative request figures since it started.
type Counters struct {
	InFlight          int64 `json:"in_flight"`
	Completed         int64 `json:"completed"`
	Failed            int64 `json:"failed"`
	PredictorRestarts int64 `json:"predictor_restarts"`
}

// Add sums o into c, for the master's server-wide view.
func (c *Counters) Add(o Counters) {
	c.InFlight += o.InFlight
	c.Completed += o.Completed
	c.Failed += o.Failed
	c.PredictorRestarts += o.PredictorRestarts
}

// WorkerStats is one worker as the master sees it.
type WorkerStats struct {
	ID            int      `json:"id"`
	Pid           int      `json:"pid"`
	State         string   `json:"state"` // booting, ready, stopping
	Restarts      int      `json:"restarts"`
	LastHeartbeat int64    `json:"last_heartbeat_unix_ms"`
	Counters      Counters `json:"counters"`
}

// ServerStats is the master's aggregate of every worker's last heartbeat, sent down to
// the workers so that whichever one answers /stats/ reports the whole server.
type ServerStats struct {
	Workers     []WorkerStats  `json:"workers"`
	Total       Counters       `json:"total"`
	WorkerExits map[string]int `json:"worker_exits"` // by reason: crash, signal, timeout, ...
}

// Failed reports why a worker could not start (e.g. the model did not load).
type Failed struct {
	Error string `json:"error"`
}

// Stop asks a worker to stop accepting and drain its requests.
type Stop struct {
	Graceful bool  `json:"graceful"`
	TimeoutS int64 `json:"timeout_s"`
}

// Conn is one end of a control channel: a frame Reader and Writer on the same socket.
type Conn struct {
	*Reader
	*Writer
	c io.Closer
}

// NewConn wraps a bidirectional stream (one end of a socketpair).
func NewConn(rw io.ReadWriteCloser) *Conn {
	return &Conn{Reader: NewReader(rw), Writer: NewWriter(rw), c: rw}
}

// Close closes the underlying stream.
func (c *Conn) Close() error { return c.c.Close() }

// Send marshals v as the meta of a frame of the given kind.
func (c *Conn) Send(kind Kind, v any) error {
	meta, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("ipc: encode kind %d: %w", kind, err)
	}
	return c.Write(kind, 0, meta, nil)
}

// Decode unmarshals a frame's meta into v.
func Decode(f Frame, v any) error {
	if err := json.Unmarshal(f.Meta, v); err != nil {
		return fmt.Errorf("ipc: decode kind %d: %w", f.Kind, err)
	}
	return nil
}
