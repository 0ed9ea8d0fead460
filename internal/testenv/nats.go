package testenv

import (
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATS is a nats-server with JetStream running inside the test process
// on loopback. Its streams live in a directory, so Restart (or a new
// StartNATS on the same directory) keeps them, as a restarted production
// server would.
type NATS struct {
	dir  string
	port int

	mu  sync.Mutex
	srv *server.Server
}

// StartNATS starts nats-server with JetStream storing in dir (a fresh
// temporary directory if empty) and stops it when the test ends.
func StartNATS(t testing.TB, dir string) *NATS {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	n := &NATS{dir: dir, port: -1}
	n.start(t)
	t.Cleanup(n.Stop)
	return n
}

func (n *NATS) start(t testing.TB) {
	t.Helper()
	opts := &server.Options{
		Host:      "127.0.0.1",
		Port:      n.port, // -1 picks a free port the first time
		JetStream: true,
		StoreDir:  n.dir,
		// The test process owns its signals, and a server that logs
		// nothing keeps test output readable.
		NoSigs: true,
		NoLog:  true,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("nats-server: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		srv.WaitForShutdown()
		t.Fatalf("nats-server did not accept connections on port %d within 10s", n.port)
	}
	n.mu.Lock()
	n.srv = srv
	n.port = srv.Addr().(*net.TCPAddr).Port
	n.mu.Unlock()
}

// URL is the client URL (nats://127.0.0.1:PORT); it stays the same
// across Restart.
func (n *NATS) URL() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return "nats://127.0.0.1:" + strconv.Itoa(n.port)
}

// Restart shuts the server down (clients see the connection drop) and
// starts it again on the same port and directory.
func (n *NATS) Restart(t testing.TB) {
	t.Helper()
	n.Stop()
	n.start(t)
}

// Stop shuts the server down and waits until it has; a second Stop is
// harmless.
func (n *NATS) Stop() {
	n.mu.Lock()
	srv := n.srv
	n.srv = nil
	n.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// Server is the running server (nil while stopped), for tests that need
// its monitoring API.
func (n *NATS) Server() *server.Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv
}
