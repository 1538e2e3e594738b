package main

import (
	"encoding/json"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

var drumKeys = []string{"prefork", "slowcsv", "gunicorn", "fastapi", "flask", "batching"}

func (r *report) find(server, kind string, rows, conc int) (result, bool) {
	for _, c := range r.Cells {
		if c.Server == server && c.Kind == kind && c.Rows == rows && c.Conc == conc {
			return c.R, true
		}
	}
	return result{}, false
}

func (r *report) server(key string) *serverRun {
	for _, s := range r.Servers {
		if s.Key == key {
			return s
		}
	}
	return nil
}

func (r *report) drumServers() []*serverRun {
	var out []*serverRun
	for _, k := range drumKeys {
		if s := r.server(k); s != nil && s.Err == "" {
			out = append(out, s)
		}
	}
	return out
}

func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func mb(b int64) string { return fmt.Sprintf("%.0f MB", float64(b)/(1<<20)) }

func kindLabel(kind string, rows int) string {
	switch kind {
	case "ping":
		return "`/ping/`"
	case "multipart":
		return fmt.Sprintf("%s, multipart", plural(rows))
	case "open":
		return fmt.Sprintf("open loop, %s, CSV", plural(rows))
	case "unstructured":
		return "unstructured"
	}
	return fmt.Sprintf("%s, CSV", plural(rows))
}

// writeReport writes <out>/<date>[-quick].md, .json and the PNG plots; it returns the
// markdown's path.
func writeReport(r *report) (string, error) {
	if err := os.MkdirAll(r.Opts.out, 0o755); err != nil {
		return "", err
	}
	stem := r.Started.UTC().Format("2006-01-02")
	if r.Opts.quick {
		stem += "-quick"
	}
	plots, err := writePlots(r, stem)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("# drum benchmark, %s\n\n", r.Started.UTC().Format("2006-01-02 15:04 UTC"))
	w("One run of `scripts/bench.sh%s` (%s). %d CPUs, %s; servers pinned to CPUs `%s`, load generator to the rest. ",
		map[bool]string{true: " --quick", false: ""}[r.Opts.quick], r.Finished.Sub(r.Started).Round(time.Second),
		hostCPUs(), runtime.GOOS+"/"+runtime.GOARCH, orNone(r.Opts.serverCPUs))
	w("Model: `%s` (regression, 33 features), %d workers everywhere (flask: 1 process). ", r.Opts.model, r.Opts.workers)
	w("Closed loop: %s warm-up + %s measured per cell, keep-alive Go clients; every cell runs on every server back to back, %d round(s) with the server order rotated, best round (by throughput) kept per server. ",
		r.Opts.warm, r.Opts.dur, r.Opts.rounds)
	w("Load average (1/5/15 min) at start: %s, at the end: %s. ", r.LoadStart, loadAvg())
	w("Baseline: `scripts/bench/baseline_app.py` (Flask under gunicorn, sync workers: `read_csv` + `predict` + JSON). ")
	w("Ratios are drum ÷ baseline: throughput above 1 and p99 below 1 favour drum. This is a shared, noisy machine: read ratios, not absolutes.\n\n")

	ds := r.drumServers()
	w("## Ratios drum / baseline (throughput ×, p99 ×)\n\n| load | c |")
	for _, s := range ds {
		w(" %s req/s | %s p99 |", s.Key, s.Key)
	}
	w(" baseline req/s | baseline p99 |\n|---|---|")
	for range ds {
		w("---|---|")
	}
	w("---|---|\n")
	row := func(kind string, rows, conc int) {
		base, ok := r.find("baseline", kind, rows, conc)
		if !ok {
			return
		}
		w("| %s | %d |", kindLabel(kind, rows), conc)
		for _, s := range ds {
			d, _ := r.find(s.Key, kind, rows, conc)
			w(" %s | %s |", ratio(d.RPS, base.RPS), ratio(float64(d.P99), float64(base.P99)))
		}
		w(" %.0f | %.1f ms |\n", base.RPS, ms(base.P99))
	}
	for _, kind := range r.Kinds {
		for _, rows := range r.Payloads {
			for _, c := range r.Concs {
				row(kind, rows, c)
			}
		}
	}
	if !contains(r.Kinds, "multipart") {
		row("multipart", 1, 8)
	}
	for _, c := range r.PingConcs {
		row("ping", 0, c)
	}
	w("\n(`/ping/`: drum's `/ping/` against the baseline's constant-JSON route.)\n\n")

	w("## Open loop (fixed rate, latency from the scheduled send)\n\n")
	w("1 row, raw CSV, %.0f req/s for %s.\n\n| server | p50 | p95 | p99 | max | errors | p99 × baseline |\n|---|---|---|---|---|---|---|\n",
		r.Opts.rate, r.Opts.openDur)
	baseOpen, _ := r.find("baseline", "open", 1, 0)
	for _, s := range r.Servers {
		if c, ok := r.find(s.Key, "open", 1, 0); ok {
			w("| %s | %.2f ms | %.2f ms | %.2f ms | %.2f ms | %d | %s |\n", s.Key, ms(c.P50), ms(c.P95), ms(c.P99), ms(c.Max),
				c.Errors, ratio(float64(c.P99), float64(baseOpen.P99)))
		}
	}

	w("\n## Memory and start-up\n\n| server | start → all workers ready | processes | RSS idle | PSS idle | RSS load (peak sample) | PSS load (peak sample) | PSS idle × baseline | ready × baseline |\n|---|---|---|---|---|---|---|---|---|\n")
	bs := r.server("baseline")
	for _, s := range r.Servers {
		if s.Err != "" {
			w("| %s | failed: %s | | | | | | | |\n", s.Key, s.Err)
			continue
		}
		pr, rr := "", ""
		if bs != nil && bs.Err == "" {
			pr = ratio(float64(s.Idle.PSS), float64(bs.Idle.PSS))
			rr = ratio(s.Ready.Seconds(), bs.Ready.Seconds())
		}
		w("| %s | %.2f s | %d | %s | %s | %s | %s | %s | %s |\n", s.Key, s.Ready.Seconds(), s.Idle.Procs,
			mb(s.Idle.RSS), mb(s.Idle.PSS), mb(s.Load.RSS), mb(s.Load.PSS), pr, rr)
	}
	w("\nRSS and PSS are summed over the process tree from `/proc/PID/smaps_rollup`; \"load\" is the largest of one sample taken mid-way through each of the server's cells.\n")

	w("\n## Targets of issue 5 (server type unset; the batching-on row: the same with DRUM_BATCHING=true)\n\n| figure | target | measured |\n|---|---|---|\n")
	for _, t := range targets(r) {
		w("| %s | %s | %s |\n", t[0], t[1], t[2])
	}

	w("\n## Errors (non-200 or transport failures)\n\n")
	any := false
	for _, c := range r.Cells {
		if c.R.Errors > 0 {
			any = true
			at := fmt.Sprintf("c=%d", c.Conc)
			if c.Kind == "open" {
				at = fmt.Sprintf("%.0f req/s", c.Rate)
			}
			w("- %s, %s, %s: %d of %d (statuses %v; 0 = transport error)\n", c.Server, kindLabel(c.Kind, c.Rows), at, c.R.Errors, c.R.Requests, c.R.Status)
		}
	}
	if !any {
		w("None.\n")
	}

	w("\n## Go-side overhead per request\n\n")
	if o := r.Overhead; o != nil {
		w("In-process worker (one predictor), %d sequential 1-row predictions on one keep-alive connection; server time from the first request byte read to the last response byte written (server side of the socket), predictor time = `Predictor.Call` round trip (pipes + Python bridge).\n\n", o.N)
		w("| figure | p50 | p90 | p99 |\n|---|---|---|---|\n")
		q := func(name string, x quantiles) {
			w("| %s | %.1f µs | %.1f µs | %.1f µs |\n", name, us(x.P50), us(x.P90), us(x.P99))
		}
		q("**server − predictor call (Go-side overhead)**", o.Overhead)
		q("server time, `/predict/`", o.Server)
		q("predictor call", o.Call)
		q("client round trip, `/predict/`", o.Client)
		q("server time, `/ping/` (HTTP floor)", o.PingServer)
		q("predictor `ping` op (pipe round-trip floor, incl. Python's frame handling)", o.ChannelPing)
		w("\nThe predictor call includes the pipe round trip; the bridge's `elapsed_ms` is not exposed by `predictor.Result`, so \"call − elapsed_ms\" is bounded above by the `ping` op row rather than reported.\n")
	} else {
		w("Not measured: %s\n", orNone(r.OverErr))
	}

	w("\n## Other runs and gaps\n\n- Trivial unstructured model (`/predictUnstructured/`, drum prefork only): %s\n", r.Unstr)
	w("- Adaptive batching (`DRUM_BATCHING`, item 3) is measured as server `batching` (server type unset, `DRUM_BATCHING=true`); it combines only requests the Go CSV fast path parsed.\n")
	w("\nPlots: %s.\n", strings.Join(plots, ", "))

	md := filepath.Join(r.Opts.out, stem+".md")
	if err := os.WriteFile(md, []byte(b.String()), 0o644); err != nil {
		return "", err
	}
	raw, _ := json.MarshalIndent(struct {
		Servers []*serverRun
		Cells   []cell
	}{r.Servers, r.Cells}, "", " ")
	if err := os.WriteFile(filepath.Join(r.Opts.out, stem+".json"), raw, 0o644); err != nil {
		return "", err
	}
	return md, nil
}

// hostCPUs counts the machine's CPUs (runtime.NumCPU sees only the pinned ones).
func hostCPUs() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.NumCPU()
	}
	return strings.Count(string(b), "\nprocessor") + map[bool]int{true: 1, false: 0}[strings.HasPrefix(string(b), "processor")]
}

func plural(rows int) string {
	if rows == 1 {
		return "1 row"
	}
	return fmt.Sprintf("%d rows", rows)
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func us(d time.Duration) float64 { return float64(d) / 1e3 }

// targets are issue 5's target rows, measured on the default server type.
func targets(r *report) [][3]string {
	d := r.DefaultKey
	var out [][3]string
	if a, ok := r.find(d, "csv", 1, 8); ok {
		b, _ := r.find("baseline", "csv", 1, 8)
		out = append(out, [3]string{"1 row, c=8, batching off", "≥ 1.8× throughput, p99 ≤ 0.5×",
			fmt.Sprintf("%s throughput, p99 %s", ratio(a.RPS, b.RPS), ratio(float64(a.P99), float64(b.P99)))})
	}
	if a, ok := r.find("batching", "csv", 1, 32); ok {
		b, _ := r.find("baseline", "csv", 1, 32)
		out = append(out, [3]string{"1 row, c=32, batching on (prefork + DRUM_BATCHING)", "≥ 9× throughput, p99 ≤ 0.2×",
			fmt.Sprintf("%s throughput, p99 %s", ratio(a.RPS, b.RPS), ratio(float64(a.P99), float64(b.P99)))})
	} else {
		out = append(out, [3]string{"1 row, c=32, batching on", "≥ 9× throughput, p99 ≤ 0.2×", "not measured (server \"batching\" not run)"})
	}
	if a, ok := r.find(d, "csv", 1000, 8); ok {
		b, _ := r.find("baseline", "csv", 1000, 8)
		out = append(out, [3]string{"1000 rows, c=8", "≥ 1.8× throughput", ratio(a.RPS, b.RPS) + " throughput"})
	}
	if a, ok := r.find(d, "ping", 0, 8); ok {
		b, _ := r.find("baseline", "ping", 0, 8)
		out = append(out, [3]string{"`/ping/` vs baseline constant-JSON route (c=8)", "≥ 4× throughput", ratio(a.RPS, b.RPS) + " throughput"})
	}
	if s, b := r.server(d), r.server("baseline"); s != nil && b != nil && s.Err == "" && b.Err == "" {
		out = append(out, [3]string{"PSS, 2 workers idle", "≤ 0.7×",
			fmt.Sprintf("%s (%s vs %s)", ratio(float64(s.Idle.PSS), float64(b.Idle.PSS)), mb(s.Idle.PSS), mb(b.Idle.PSS))})
		out = append(out, [3]string{"start → all workers ready", "≤ 1.0×",
			fmt.Sprintf("%s (%.2f s vs %.2f s)", ratio(s.Ready.Seconds(), b.Ready.Seconds()), s.Ready.Seconds(), b.Ready.Seconds())})
	}
	if o := r.Overhead; o != nil {
		out = append(out, [3]string{"Go-side overhead per request, p50 (item 4)", "≤ 100 µs",
			fmt.Sprintf("%.0f µs", us(o.Overhead.P50))})
	}
	return out
}

var palette = []color.Color{
	color.RGBA{0, 0, 0, 255},      // baseline: black
	color.RGBA{31, 119, 180, 255}, // then the servers in serverSpecs order
	color.RGBA{255, 127, 14, 255},
	color.RGBA{44, 160, 44, 255},
	color.RGBA{214, 39, 40, 255},
	color.RGBA{148, 103, 189, 255},
	color.RGBA{140, 86, 75, 255},
}

// writePlots draws throughput and p99 against concurrency, one panel per payload (raw
// CSV), one line per server.
func writePlots(r *report, stem string) ([]string, error) {
	var files []string
	for _, metric := range []string{"throughput", "p99"} {
		var row []*plot.Plot
		for _, rows := range r.Payloads {
			p := plot.New()
			p.Title.Text = plural(rows) + ", raw CSV"
			p.X.Label.Text = "concurrency"
			p.X.Scale = plot.LogScale{}
			p.X.Tick.Marker = plot.ConstantTicks(concTicks(r.Concs))
			if metric == "throughput" {
				p.Y.Label.Text = "requests/s"
				p.Y.Min = 0
			} else {
				p.Y.Label.Text = "p99 latency (ms, log)"
				p.Y.Scale = plot.LogScale{}
				p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
			}
			// Legend top left, above the data: headroom is added below.
			p.Legend.Top, p.Legend.Left = true, true
			p.Legend.XOffs = vg.Millimeter * 2
			maxY := 0.0
			for i, s := range r.Servers {
				if s.Err != "" {
					continue
				}
				var pts plotter.XYs
				for _, c := range r.Concs {
					res, ok := r.find(s.Key, "csv", rows, c)
					if !ok || res.RPS == 0 {
						continue
					}
					y := res.RPS
					if metric == "p99" {
						y = ms(res.P99)
					}
					pts = append(pts, plotter.XY{X: float64(c), Y: y})
					maxY = max(maxY, y)
				}
				if len(pts) == 0 {
					continue
				}
				line, points, err := plotter.NewLinePoints(pts)
				if err != nil {
					return nil, err
				}
				col := palette[i%len(palette)]
				line.Color, points.Color = col, col
				line.Width = vg.Points(1.5)
				if s.Key == "baseline" {
					line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
				}
				points.Shape = draw.CircleGlyph{}
				p.Add(line, points)
				p.Legend.Add(s.Key, line, points)
			}
			if metric == "p99" {
				p.Y.Max = maxY * 12
			} else {
				p.Y.Max = maxY * 1.7
			}
			p.Add(plotter.NewGrid())
			row = append(row, p)
		}
		const panelW, h = 11 * vg.Centimeter, 9 * vg.Centimeter
		img := vgimg.NewWith(vgimg.UseWH(panelW*vg.Length(len(row)), h), vgimg.UseDPI(110))
		dc := draw.New(img)
		tiles := draw.Tiles{Rows: 1, Cols: len(row), PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 2,
			PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 4, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2}
		canvases := plot.Align([][]*plot.Plot{row}, tiles, dc)
		for j, p := range row {
			p.Draw(canvases[0][j])
		}
		name := stem + "-" + metric + ".png"
		f, err := os.Create(filepath.Join(r.Opts.out, name))
		if err != nil {
			return nil, err
		}
		if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
			f.Close()
			return nil, err
		}
		if err := f.Close(); err != nil {
			return nil, err
		}
		files = append(files, name)
	}
	return files, nil
}

func concTicks(cs []int) []plot.Tick {
	var t []plot.Tick
	for _, c := range cs {
		t = append(t, plot.Tick{Value: float64(c), Label: fmt.Sprint(c)})
	}
	return t
}

// summary is what stdout gets: the main ratios, memory, start-up and the overhead.
func summary(r *report) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("\n== drum benchmark (%s) ==\n", map[bool]string{true: "quick", false: "full"}[r.Opts.quick])
	w("%-22s", "drum/baseline")
	for _, s := range r.drumServers() {
		w(" %17s", s.Key)
	}
	w("\n")
	line := func(label, kind string, rows, conc int) {
		base, ok := r.find("baseline", kind, rows, conc)
		if !ok {
			return
		}
		w("%-22s", label)
		for _, s := range r.drumServers() {
			d, _ := r.find(s.Key, kind, rows, conc)
			w(" %8s/%-8s", ratio(d.RPS, base.RPS), ratio(float64(d.P99), float64(base.P99)))
		}
		w("   (rps/p99)\n")
	}
	for _, rows := range r.Payloads {
		for _, c := range r.Concs {
			line(fmt.Sprintf("%d rows csv c=%d", rows, c), "csv", rows, c)
		}
	}
	line("1 row multipart c=8", "multipart", 1, 8)
	for _, c := range r.PingConcs {
		line(fmt.Sprintf("/ping/ c=%d", c), "ping", 0, c)
	}
	w("\n%-10s %8s %10s %10s %10s %10s\n", "server", "ready", "RSS idle", "PSS idle", "RSS load", "PSS load")
	for _, s := range r.Servers {
		if s.Err != "" {
			w("%-10s failed: %s\n", s.Key, s.Err)
			continue
		}
		w("%-10s %7.2fs %10s %10s %10s %10s\n", s.Key, s.Ready.Seconds(), mb(s.Idle.RSS), mb(s.Idle.PSS), mb(s.Load.RSS), mb(s.Load.PSS))
	}
	if o := r.Overhead; o != nil {
		w("\nGo-side overhead (server − predictor call), 1 row: p50 %.0f µs, p99 %.0f µs (server p50 %.0f µs, call p50 %.0f µs, pipe ping p50 %.0f µs)\n",
			us(o.Overhead.P50), us(o.Overhead.P99), us(o.Server.P50), us(o.Call.P50), us(o.ChannelPing.P50))
	} else {
		w("\nGo-side overhead: not measured: %s\n", orNone(r.OverErr))
	}
	w("unstructured: %s\n", r.Unstr)
	return b.String()
}
