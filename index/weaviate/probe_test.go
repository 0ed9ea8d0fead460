package weaviate

import (
	"testing"
	"time"
	"os"
	"fmt"

	"github.com/freshen-io/freshen/internal/testenv"
)

func TestProbeStart(t *testing.T) {
	start := time.Now()
	w := testenv.StartWeaviate(t)
	fmt.Println("ready in", time.Since(start), w.URL, w.Dir)
	os.WriteFile("/tmp/wvprobe/url", []byte(w.URL), 0o644)
	if os.Getenv("PROBE_HOLD") != "" {
		time.Sleep(20 * time.Minute)
	}
}
