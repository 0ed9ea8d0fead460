package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// PGlite is a running PGlite server: PostgreSQL (18, in WebAssembly) with
// pgvector, spoken to over the PostgreSQL protocol. It is one database
// session shared by every connection, so clients must use the simple
// query protocol (DSN has it) and get serialized queries: a real
// PostgreSQL for the SQL, not for throughput.
type PGlite struct {
	// DSN connects to the server's database.
	DSN  string
	Port int
	cmd  *exec.Cmd
	dir  string
	done chan error
}

// StartPGlite starts a PGlite server on loopback for this test, with its
// database in dir ("" for a fresh temporary one), and stops it when the
// test ends.
func StartPGlite(t testing.TB, dir string) *PGlite {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	p, err := startPGlite(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

var (
	sharedPG = &shared[*PGlite]{name: "freshen-pglite-", start: func(dir string) (*PGlite, error) { return startPGlite(dir, 0) }}
	tables   atomic.Int64
)

// SharedPGlite returns one PGlite server for the whole test binary,
// started at the first call (start-up takes seconds); it dies with the
// test process, and a TestMain that calls StopShared after m.Run
// also removes its data. Tests sharing it use their own tables
// (UniqueTable).
func SharedPGlite(t testing.TB) *PGlite {
	t.Helper()
	return sharedPG.get(t)
}

// UniqueTable returns a table name no other test of this process uses.
func UniqueTable(prefix string) string {
	return fmt.Sprintf("%s_%d_%d", prefix, os.Getpid(), tables.Add(1))
}

func startPGlite(dir string, port int) (*PGlite, error) {
	bin, err := FindBinary("pglite-server")
	if err != nil {
		return nil, err
	}
	if port == 0 {
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "pgdata")
	cmd := exec.Command(bin, "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-d", data)
	logPath := filepath.Join(dir, "pglite.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start pglite-server: %w", err)
	}
	p := &PGlite{Port: port, cmd: cmd, dir: dir, done: make(chan error, 1),
		DSN: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&default_query_exec_mode=simple_protocol&connect_timeout=10", port)}
	go func() { p.done <- cmd.Wait(); logf.Close() }()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-p.done:
			log, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("pglite-server exited at start (%v):\n%s", err, log)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return p, nil
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, fmt.Errorf("pglite-server did not listen on %s within 60s", addr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop kills the server (like a crash) and waits for it to exit; its
// database directory stays, so Restart brings the same data back.
func (p *PGlite) Stop() {
	if p.cmd.Process != nil {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL) // node and anything it spawned
		<-p.done
		p.done <- nil // later Stops return at once
	}
}

// Restart starts the server again on the same port and data.
func (p *PGlite) Restart(t testing.TB) {
	t.Helper()
	q, err := startPGlite(p.dir, p.Port)
	if err != nil {
		t.Fatal(err)
	}
	*p = *q
	t.Cleanup(p.Stop)
}

// LaunchPGlite starts a PGlite server with its database in dir, for
// programs that are not tests (the benchmarks); Stop ends it, and it dies
// with the calling process.
func LaunchPGlite(dir string) (*PGlite, error) { return startPGlite(dir, 0) }
