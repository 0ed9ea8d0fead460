package testenv

import (
	"errors"
	"fmt"
	"io"
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
// Weaviate v1.35.2 binds its gRPC API and its cluster data port to every
// interface whatever it is told (":port" is hard-coded), so the server
// runs in a Linux network namespace of its own (unshare --net), whose
// only interface is a loopback that nothing outside can reach. Forwarders
// on the test process's 127.0.0.1 connect to its REST and gRPC APIs;
// nothing else is exposed. This needs root (CAP_SYS_ADMIN); without it
// the start fails, it never falls back to binding every interface.
type Weaviate struct {
	// URL is the REST endpoint, http://127.0.0.1:port (a forwarder).
	URL string
	// Host is URL's host:port.
	Host string
	// GRPC is the gRPC API's host:port (a forwarder).
	GRPC string
	// Dir holds the data and weaviate.log.
	Dir string

	cmd   *exec.Cmd
	ns    *os.File       // the server's network namespace
	fwd   []*forwarder   // REST, gRPC
	ports map[string]int // in the server's namespace
	done  chan struct{}
	once  sync.Once
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
	sharedWV    = &shared[*Weaviate]{name: "freshen-weaviate-", start: startWeaviate}
	collections atomic.Int64
)

// SharedWeaviate returns one weaviate-server for the whole test binary,
// started at the first call. It dies with the test process; a TestMain
// that calls StopShared after m.Run also removes its data. A
// missing binary or a failed start fails every test that asks.
func SharedWeaviate(t testing.TB) *Weaviate {
	t.Helper()
	return sharedWV.get(t)
}

// UniqueCollection returns a Weaviate class name (an upper-case letter,
// then letters and digits) that no other test of this process uses.
func UniqueCollection(prefix string) string {
	return fmt.Sprintf("%s%dN%d", prefix, os.Getpid(), collections.Add(1))
}

// netnsGate is run by sh in the server's new network namespace: it tells
// the test process (fd 3) that the namespace exists, waits (stdin) until
// the test process has brought its loopback up, then becomes
// weaviate-server ($0) with its arguments.
const netnsGate = `echo ready >&3 && exec 3>&- && IFS= read -r line && [ "$line" = up ] && exec "$0" "$@" </dev/null; exit 97`

func startWeaviate(dir string) (_ *Weaviate, err error) {
	bin, err := FindBinary("weaviate-server")
	if err != nil {
		return nil, err
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		return nil, fmt.Errorf("weaviate-server runs in a network namespace of its own, which needs unshare (util-linux): %w", err)
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		return nil, err
	}
	w := &Weaviate{Dir: dir, done: make(chan struct{})}
	// On error, w is stopped (the returned *Weaviate is nil).
	defer func() {
		if err != nil {
			w.Stop()
		}
	}()
	// The forwarders' ports are taken first, so that none of the
	// server's (in its namespace) is the same number.
	for range 2 {
		f, err := listenForwarder()
		if err != nil {
			return nil, err
		}
		w.fwd = append(w.fwd, f)
	}
	w.Host, w.GRPC = w.fwd[0].addr(), w.fwd[1].addr()
	w.URL = "http://" + w.Host
	if w.ports, err = freePorts("http", "grpc", "gossip", "data", "raft", "rpc"); err != nil {
		return nil, err
	}
	ports := w.ports
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	const node = "freshen-test-node"
	cmd := exec.Command(unshare, "--net", "--", sh, "-c", netnsGate,
		bin, "--host", "127.0.0.1", "--port", strconv.Itoa(ports["http"]), "--scheme", "http")
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
	gateR, gateW, err := os.Pipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	defer gateR.Close()
	defer gateW.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	defer readyR.Close()
	defer readyW.Close()
	cmd.Stdin = gateR
	cmd.ExtraFiles = []*os.File{readyW}
	// The server dies with the test process, even on a crash. unshare
	// and sh exec in place: the process is the server's from start to
	// end.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start weaviate-server: %w", err)
	}
	w.cmd = cmd
	gateR.Close()
	readyW.Close()
	var exitErr error
	go func() { exitErr = cmd.Wait(); logf.Close(); close(w.done) }()

	// Wait for the namespace, bring its loopback up, let the server start.
	readyR.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, len("ready\n"))
	if _, err := io.ReadFull(readyR, buf); err != nil || string(buf) != "ready\n" {
		why := fmt.Sprint(err)
		select {
		case <-w.done:
			why = fmt.Sprint(exitErr)
		case <-time.After(5 * time.Second):
		}
		log, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("weaviate-server must run in a network namespace of its own (it binds every interface), "+
			"but `unshare --net` did not start it (%s); this needs root or CAP_SYS_ADMIN "+
			"(in a container: --cap-add SYS_ADMIN or --privileged), there is no fallback:\n%s", why, tail(log, 8000))
	}
	if same, err := sameNetns(cmd.Process.Pid); err != nil {
		return nil, err
	} else if same {
		return nil, errors.New("unshare --net left weaviate-server in the test process's network namespace")
	}
	if w.ns, err = openNetns(cmd.Process.Pid); err != nil {
		return nil, err
	}
	if err := setLoopbackUp(w.ns); err != nil {
		return nil, fmt.Errorf("weaviate-server's network namespace: %w", err)
	}
	if _, err := gateW.Write([]byte("up\n")); err != nil {
		return nil, fmt.Errorf("start weaviate-server: %w", err)
	}
	gateW.Close()
	w.fwd[0].serve(w.ns, "127.0.0.1:"+strconv.Itoa(ports["http"]))
	w.fwd[1].serve(w.ns, "127.0.0.1:"+strconv.Itoa(ports["grpc"]))

	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
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
			log, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("weaviate-server was not ready on %s (forwarded to port %d of its network namespace) within 90s:\n%s",
				w.Host, ports["http"], tail(log, 8000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop kills the server (like a crash), waits for it to exit and closes
// the forwarders to it. A second Stop does nothing.
func (w *Weaviate) Stop() {
	w.once.Do(func() {
		if w.cmd != nil {
			w.cmd.Process.Kill()
			<-w.done
		}
		for _, f := range w.fwd {
			f.close()
		}
		if w.ns != nil {
			w.ns.Close()
		}
	})
}

// freePorts returns distinct loopback TCP ports, by name, that were free
// a moment ago.
func freePorts(names ...string) (map[string]int, error) {
	ports := map[string]int{}
	for _, name := range names {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports[name] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// LaunchWeaviate starts a weaviate-server with its data in dir, for
// programs that are not tests (the benchmarks); Stop ends it.
func LaunchWeaviate(dir string) (*Weaviate, error) { return startWeaviate(dir) }
