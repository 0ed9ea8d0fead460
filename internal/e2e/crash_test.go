package e2e

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestCrashSafety kills `freshen sync` with SIGKILL at random moments of a
// large backfill. A final sync must leave the index exact, and only
// embeddings in flight at a crash may have been paid for twice.
func TestCrashSafety(t *testing.T) {
	b := setup(t, "")
	const docs = 60
	for i := 0; i < docs; i++ {
		b.put(fmt.Sprintf("bulk/doc-%03d.md", i), "text/markdown", []byte(markdownDoc(int64(1000+i), 2, 3)))
	}
	r := rand.New(rand.NewSource(time.Now().UnixNano()))
	kills := 0
	for round := 0; round < 4; round++ {
		cmd := exec.Command(freshenBin, "sync", "--config", b.cfg, "--quiet")
		cmd.Env = append(os.Environ(), b.gw.Env()...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		delay := time.Duration(300+r.Intn(2500)) * time.Millisecond
		select {
		case err := <-done:
			t.Logf("round %d: sync finished before the kill at %s (err %v)", round, delay, err)
			continue
		case <-time.After(delay):
		}
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
		kills++
		t.Logf("round %d: killed after %s", round, delay)
	}
	b.sync()
	truth := b.assertExact()
	distinct := map[string]bool{}
	for _, r := range truth {
		distinct[string(r.Hash)] = true
	}
	st := b.status()
	// In flight at a crash: at most workers x embed batch per kill.
	const inFlight = 2 * 32
	if st.ChunksEmbedded < int64(len(distinct)) || st.ChunksEmbedded > int64(len(distinct)+kills*inFlight) {
		t.Errorf("chunks_embedded = %d for %d distinct chunks after %d kills (allowed up to %d in flight per kill)",
			st.ChunksEmbedded, len(distinct), kills, inFlight)
	}
	t.Logf("%d kills; %d distinct chunks; %d embedded in total", kills, len(distinct), st.ChunksEmbedded)
	if kills == 0 {
		t.Fatal("no sync was ever killed: the backfill is too small to test crashes")
	}
}
