// Command provider-sim runs a simulated OpenAI embeddings API on
// loopback, to try freshen's `openai` embedder, its rate limits, budget
// and `freshen estimate` without an account: it enforces RPM and TPM in
// a sliding minute (429 with Retry-After past them), takes 150 ms plus
// 0.05 ms per token, and answers with deterministic vectors.
//
//	go run ./examples/provider-sim [-listen 127.0.0.1:8089] [-rpm 3000] [-tpm 1000000]
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/freshen-io/freshen/embed/openai/openaitest"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:8089", "address to listen on")
	rpm := flag.Int("rpm", 3000, "requests per minute")
	tpm := flag.Int("tpm", 1_000_000, "tokens per minute")
	flag.Parse()
	sim, err := openaitest.Start(openaitest.Options{Addr: *addr, Model: "sim-embed", Embedder: openaitest.Hash{Dim: 64, MaxTokens: 8191},
		CountTokens: func(s string) int { return (len(s) + 2) / 3 }, RPM: *rpm, TPM: *tpm,
		Latency: 150 * time.Millisecond, LatencyPerToken: 50 * time.Microsecond})
	if err != nil {
		log.Fatal(err)
	}
	defer sim.Close()
	fmt.Printf("simulated OpenAI embeddings API at %s (model sim-embed, 64 dimensions, %d RPM, %d TPM)\n", sim.URL(), *rpm, *tpm)
	fmt.Printf("use it with: embedder: {type: openai, base-url: %s, model: sim-embed, dim: 64, max-tokens: 8191}\n", sim.URL())
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt)
	<-stop
}
