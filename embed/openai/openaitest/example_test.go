package openaitest_test

import (
	"context"
	"fmt"
	"time"

	"github.com/freshen-io/freshen/embed/openai"
	"github.com/freshen-io/freshen/embed/openai/openaitest"
)

// A benchmark program starts a server with limits and latency, points the
// client at it, and compares the client's accounting with the server's.
func Example() {
	srv, err := openaitest.Start(openaitest.Options{
		APIKey:          "sk-local",
		RPM:             3000,
		TPM:             1_000_000,
		Latency:         time.Millisecond,
		LatencyPerToken: time.Microsecond,
	})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	e, err := openai.New(openai.Config{
		BaseURL:    srv.URL(),
		APIKey:     "sk-local",
		Model:      "bench-model",
		Dim:        64,
		MaxTokens:  8191,
		HTTPClient: srv.Client(),
	})
	if err != nil {
		panic(err)
	}
	vecs, err := e.Embed(context.Background(), []string{"two words", "and three more"})
	if err != nil {
		panic(err)
	}
	st := srv.Stats()
	fmt.Println(len(vecs), len(vecs[0]), st.Requests, e.Usage(), st.Tokens)
	// Output: 2 64 1 5 5
}
