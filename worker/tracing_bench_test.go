package worker

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/drum-go/drum/internal/otlptest"
	"github.com/hashicorp/go-hclog"
)

// BenchmarkPredictTracing is one /predict/ round trip over keep-alive HTTP with a
// predictor that answers at once, so the figure is drum's own cost: tracing off (no
// endpoint), on (every request sampled and exported to a loopback receiver), and on but
// with a client trace context. Compare ns/op between the sub-benchmarks.
func BenchmarkPredictTracing(b *testing.B) {
	for _, mode := range []string{"off", "on", "on_client_context"} {
		b.Run(mode, func(b *testing.B) {
			if mode == "off" {
				b.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
			} else {
				rc := otlptest.NewReceiver(b)
				b.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rc.URL())
			}
			b.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			f := &fakeFactory{fn: constResult(1)}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- Run(ctx, Options{Config: regressionCfg, Listener: ln, WorkerID: 1,
					Logger: hclog.NewNullLogger(), NewPredictor: f.start, QueueSize: 16})
			}()
			defer func() { cancel(); <-done }()
			url := "http://" + ln.Addr().String() + "/predict/"
			client := &http.Client{}
			post := func() {
				req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader("a\n1\n"))
				req.Header.Set("Content-Type", "text/csv")
				if mode == "on_client_context" {
					req.Header.Set("Traceparent", "00-"+clientTraceID+"-"+clientSpanID+"-01")
				}
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
			post() // connection and predictor warm
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				post()
			}
		})
	}
}
