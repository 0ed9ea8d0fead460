package testenv

import (
	"bufio"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestForwarder forwards to a server of this process's own namespace and
// leaves no goroutine behind.
func TestForwarder(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello "+r.URL.Path)
	}))
	defer srv.Close()
	ns, err := openNetns(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	f, err := listenForwarder()
	if err != nil {
		t.Fatal(err)
	}
	f.serve(ns, srv.Listener.Addr().String())
	client := &http.Client{Timeout: 5 * time.Second}
	for i := range 3 {
		resp, err := client.Get("http://" + f.addr() + "/x" + strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := "hello /x" + strconv.Itoa(i); string(b) != want {
			t.Fatalf("got %q, want %q", b, want)
		}
	}
	// An idle kept-alive connection is cut by close.
	f.close()
	client.CloseIdleConnections()
	if _, err := client.Get("http://" + f.addr() + "/"); err == nil {
		t.Fatal("forwarder still answers after close")
	}
}

// TestWeaviateIsolated checks from the host's network namespace that
// weaviate-server listens on none of its ports there, while its REST and
// gRPC APIs answer through the forwarders, which stop with the server.
func TestWeaviateIsolated(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	w := StartWeaviate(t)
	pid := w.cmd.Process.Pid

	host := listening(t, os.Getpid())
	inside := listening(t, pid)
	for name, port := range w.ports {
		if host[port] != "" {
			t.Errorf("%s port %d listens in the host's network namespace (%s)", name, port, host[port])
		}
	}
	// The check sees the server's sockets where they are.
	for _, name := range []string{"http", "grpc", "gossip", "data", "raft", "rpc"} {
		if inside[w.ports[name]] == "" {
			t.Errorf("%s port %d does not listen in weaviate's network namespace", name, w.ports[name])
		}
	}
	for _, addr := range []string{w.Host, w.GRPC} {
		_, port, _ := net.SplitHostPort(addr)
		p, _ := strconv.Atoi(port)
		if !strings.HasPrefix(addr, "127.0.0.1:") || host[p] == "" {
			t.Errorf("forwarder %s: not seen listening on 127.0.0.1 of the host (%q)", addr, host[p])
		}
	}

	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(w.URL + "/v1/meta")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	client.CloseIdleConnections()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"version"`) {
		t.Fatalf("GET /v1/meta: %s %s", resp.Status, b)
	}

	// gRPC: an HTTP/2 server answers the client preface with SETTINGS.
	c, err := net.DialTimeout("tcp", w.GRPC, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"); err != nil {
		t.Fatal(err)
	}
	hdr := make([]byte, 9)
	if _, err := io.ReadFull(c, hdr); err != nil {
		t.Fatalf("gRPC through the forwarder: %v", err)
	}
	if hdr[3] != 0x4 {
		t.Fatalf("gRPC through the forwarder: first frame has type %d, not SETTINGS", hdr[3])
	}

	// Stop cuts open connections and ends the forwarders.
	w.Stop()
	if _, err := io.ReadAll(c); err != nil && !isClosedErr(err) {
		t.Logf("read after Stop: %v", err)
	}
	c.Close()
	if _, err := net.DialTimeout("tcp", w.Host, time.Second); err == nil {
		t.Error("REST forwarder still accepts after Stop")
	}
}

func isClosedErr(err error) bool {
	return strings.Contains(err.Error(), "reset") || strings.Contains(err.Error(), "closed")
}

// listening returns the TCP ports listening and UDP ports bound in the
// network namespace of process pid, with what was found.
func listening(t *testing.T, pid int) map[int]string {
	t.Helper()
	ports := map[int]string{}
	for _, file := range []string{"tcp", "tcp6", "udp", "udp6"} {
		path := "/proc/" + strconv.Itoa(pid) + "/net/" + file
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 4 {
				continue
			}
			// TCP_LISTEN is 0A; an unconnected UDP socket is 07 (TCP_CLOSE).
			if st := fields[3]; (strings.HasPrefix(file, "tcp") && st != "0A") || (strings.HasPrefix(file, "udp") && st != "07") {
				continue
			}
			addr, portHex, ok := strings.Cut(fields[1], ":")
			if !ok {
				continue
			}
			port, err := strconv.ParseUint(portHex, 16, 16)
			if err != nil {
				t.Fatalf("%s: %q", path, sc.Text())
			}
			if _, err := hex.DecodeString(addr); err != nil {
				t.Fatalf("%s: %q", path, sc.Text())
			}
			ports[int(port)] += file + " " + fields[1] + "; "
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return ports
}
