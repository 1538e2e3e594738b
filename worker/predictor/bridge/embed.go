// Package bridge holds the Python side of the predictor: bridge.py, embedded in the Go
// binary so drum needs no files beside it.
//
// The interpreter is started as `python -c Bootstrap`. The bootstrap reads one frame from fd 3
// (ipc format, KindRequest, id 0) whose meta is the bridge configuration (JSON) and whose data
// is Source, runs Source as module "drum_bridge" and calls its main(meta). Nothing is written
// to disk, and tracebacks still show bridge source lines (the bootstrap seeds linecache).
package bridge

import _ "embed"

// Source is bridge.py.
//
//go:embed bridge.py
var Source []byte

// Filename is the name tracebacks show for bridge code.
const Filename = "<drum-bridge>"

// Bootstrap is the program passed to `python -c`. It must stay small (it shows in ps) and
// must not buffer fd 3: the bridge reads the rest of the stream itself.
// Its first line says what the process is, because ps shows the program text.
var Bootstrap = bootstrap("# drum predictor: bridge bootstrap (protocol on fds 3/4)", "main")

// ZygoteSource is zygote.py, the fork server; it runs appended to Source, so it uses the
// bridge's functions directly.
//
//go:embed zygote.py
var ZygoteSource []byte

// ZygoteBootstrap starts the zygote: the same bootstrap, receiving Source followed by
// ZygoteSource, and calling zygote_main.
var ZygoteBootstrap = bootstrap("# drum zygote: forks predictors (boot pipe on fd 3, fork socket on fd 4)", "zygote_main")

func bootstrap(firstLine, entry string) string {
	return firstLine + `
import os, struct, sys, types, linecache
def _read(n):
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(3, n - len(buf))
        if not chunk:
            sys.exit(3)
        buf += chunk
    return bytes(buf)
_n, _kind, _id, _mlen = struct.unpack("<IB3xQI", _read(20))
_body = _read(_n - 16)
_meta, _src = _body[:_mlen], _body[_mlen:].decode("utf-8")
linecache.cache["` + Filename + `"] = (len(_src), None, _src.splitlines(True), "` + Filename + `")
_mod = types.ModuleType("drum_bridge")
_mod.__file__ = "` + Filename + `"
sys.modules["drum_bridge"] = _mod
sys.argv = ["drum-predictor"]
exec(compile(_src, "` + Filename + `", "exec"), _mod.__dict__)
sys.exit(_mod.` + entry + `(_meta))
`
}
