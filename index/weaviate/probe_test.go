package weaviate

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	wv "github.com/weaviate/weaviate-go-client/v5/weaviate"
)

type canary struct{ b [64]byte }

func TestProbeFinalizer(t *testing.T) {
	for i := 0; i < 3; i++ {
		c, err := wv.NewClient(wv.Config{Host: "127.0.0.1:18080", Scheme: "http"})
		if err != nil {
			t.Fatal(err)
		}
		_ = c
	}
	runtime.GC()
	runtime.GC()
	time.Sleep(200 * time.Millisecond)
	ran := make(chan bool, 1)
	x := &canary{}
	runtime.SetFinalizer(x, func(*canary) { ran <- true })
	x = nil
	runtime.GC()
	select {
	case <-ran:
		fmt.Println("canary finalizer ran")
	case <-time.After(2 * time.Second):
		fmt.Println("canary finalizer BLOCKED")
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		os.WriteFile("/tmp/wvprobe/stack.txt", buf[:n], 0o644)
	}
}
