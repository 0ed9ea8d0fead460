package testenv

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Weaviate is a running weaviate-server: a one-node cluster with
// anonymous access and no vectorizer modules, its data in a temporary
// directory.
//
// Its REST API, gossip, Raft and Raft RPC listen on 127.0.0.1. Weaviate
// v1.35.2 binds its gRPC API and its cluster data ports to every
// interface whatever it is told (":port" is hard-coded), so those get
// random free ports; nothing else is exposed (profiling and metrics are
// off).
type Weaviate struct {
	// URL is the REST endpoint, http://127.0.0.1:port.
	URL string
	// Host is URL's host:port.
	Host string
	// GRPC is the gRPC API's host:port.
	GRPC string
	// Dir holds the data and weaviate.log.
	Dir string

	cmd  *exec.Cmd
	done chan struct{}
	once sync.Once
}

// StartWeaviate starts a weaviate-server for this test and kills it when
// the test ends. Start-up takes about ten seconds: tests of one package
// should share a server (SharedWeaviate) and use their own collections.
func StartWeaviate(t testing.TB) *Weaviate {
	t.Helper()
	w, err := startWeaviate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return w
}

var (
	sharedWeaviateMu  sync.Mutex
	sharedWeaviate    *Weaviate
	sharedWeaviateErr error
	collections       atomic.Int64
)

// SharedWeaviate returns one weaviate-server for the whole test binary,
// started at the first call. It dies with the test process; a TestMain
// that calls StopSharedWeaviate after m.Run also removes its data. A
// missing binary or a failed start fails every test that asks.
func SharedWeaviate(t testing.TB) *Weaviate {
	t.Helper()
	sharedWeaviateMu.Lock()
	defer sharedWeaviateMu.Unlock()
	if sharedWeaviate == nil && sharedWeaviateErr == nil {
		dir, err := os.MkdirTemp("", "freshen-weaviate-")
		if err != nil {
			sharedWeaviateErr = err
		} else if sharedWeaviate, sharedWeaviateErr = startWeaviate(dir); sharedWeaviateErr != nil {
			os.RemoveAll(dir)
		}
	}
	if sharedWeaviateErr != nil {
		t.Fatal(sharedWeaviateErr)
	}
	return sharedWeaviate
}

// StopSharedWeaviate kills the shared server, if one was started, and
// removes its data.
func StopSharedWeaviate() {
	sharedWeaviateMu.Lock()
	defer sharedWeaviateMu.Unlock()
	if sharedWeaviate != nil {
		sharedWeaviate.Stop()
		os.RemoveAll(sharedWeaviate.Dir)
		sharedWeaviate = nil
	}
}

// UniqueCollection returns a Weaviate class name (an upper-case letter,
// then letters and digits) that no other test of this process uses.
func UniqueCollection(prefix string) string {
	return fmt.Sprintf("%s%dN%d", prefix, os.Getpid(), collections.Add(1))
}

func startWeaviate(dir string) (*Weaviate, error) {
	bin, err := FindBinary("weaviate-server")
	if err != nil {
		return nil, err
	}
	ports := map[string]int{}
	for _, name := range []string{"http", "grpc", "gossip", "data", "raft", "rpc"} {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[name] = p
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	const node = "freshen-test-node"
	cmd := exec.Command(bin, "--host", "127.0.0.1", "--port", strconv.Itoa(ports["http"]), "--scheme", "http")
	cmd.Env = append(os.Environ(),
		"DISABLE_TELEMETRY=true",
		"PERSISTENCE_DATA_PATH="+data,
		"AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED=true",
		"AUTHORIZATION_ENABLE_RBAC=false",
		"DEFAULT_VECTORIZER_MODULE=none",
		"ENABLE_MODULES=",
		// Code under test must create every property it uses.
		"AUTOSCHEMA_ENABLED=false",
		"CLUSTER_HOSTNAME="+node,
		"CLUSTER_BIND_ADDR=127.0.0.1",
		"CLUSTER_ADVERTISE_ADDR=127.0.0.1",
		"CLUSTER_GOSSIP_BIND_PORT="+strconv.Itoa(ports["gossip"]),
		"CLUSTER_DATA_BIND_PORT="+strconv.Itoa(ports["data"]),
		"RAFT_PORT="+strconv.Itoa(ports["raft"]),
		"RAFT_INTERNAL_RPC_PORT="+strconv.Itoa(ports["rpc"]),
		"RAFT_JOIN="+node,
		"RAFT_BOOTSTRAP_EXPECT=1",
		"GRPC_PORT="+strconv.Itoa(ports["grpc"]),
		"GO_PROFILING_DISABLE=true",
		"PROMETHEUS_MONITORING_ENABLED=false",
		"LOG_LEVEL=info",
	)
	logPath := filepath.Join(dir, "weaviate.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	// The server dies with the test process, even on a crash.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start weaviate-server: %w", err)
	}
	host := "127.0.0.1:" + strconv.Itoa(ports["http"])
	w := &Weaviate{URL: "http://" + host, Host: host, GRPC: "127.0.0.1:" + strconv.Itoa(ports["grpc"]),
		Dir: dir, cmd: cmd, done: make(chan struct{})}
	var exitErr error
	go func() { exitErr = cmd.Wait(); logf.Close(); close(w.done) }()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case <-w.done:
			log, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("weaviate-server exited at start (%v):\n%s", exitErr, tail(log, 8000))
		default:
		}
		if resp, err := client.Get(w.URL + "/v1/.well-known/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return w, nil
			}
		}
		if time.Now().After(deadline) {
			w.Stop()
			log, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("weaviate-server was not ready on %s within 90s:\n%s", host, tail(log, 8000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop kills the server (like a crash) and waits for it to exit. A
// second Stop does nothing.
func (w *Weaviate) Stop() {
	w.once.Do(func() {
		w.cmd.Process.Kill()
		<-w.done
	})
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
