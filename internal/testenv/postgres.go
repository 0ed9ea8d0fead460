package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Postgres is a running PostgreSQL server (Debian's postgresql-15) with a
// fresh cluster, listening on loopback only, trusting local connections.
type Postgres struct {
	// DSN connects to its "postgres" database as the superuser.
	DSN  string
	Port int
	dir  string
	cmd  *exec.Cmd
	done chan error
}

// postgresBin finds a PostgreSQL server program: Debian's versioned
// directory first, then PATH.
func postgresBin(name string) (string, error) {
	if dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin"); len(dirs) > 0 {
		p := filepath.Join(dirs[len(dirs)-1], name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("PostgreSQL's %s is not installed: run ./scripts/test.sh (it installs postgresql-15 with apt)", name)
}

// asPostgres makes cmd run as the postgres user when this process is
// root (PostgreSQL refuses to run as root).
func asPostgres(cmd *exec.Cmd, dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return errors.New("running as root, and there is no postgres user to run PostgreSQL as (apt install postgresql-15 creates it)")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(p, uid, gid)
	}); err != nil {
		return err
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	return nil
}

func startPostgres(dir string) (*Postgres, error) {
	initdb, err := postgresBin("initdb")
	if err != nil {
		return nil, err
	}
	server, err := postgresBin("postgres")
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, err
	}
	init := exec.Command(initdb, "-D", data, "--auth=trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C")
	if err := asPostgres(init, dir); err != nil {
		return nil, err
	}
	if out, err := init.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	// The postmaster itself is the child, not pg_ctl's daemon: it dies
	// with the test process, and its backends notice and exit.
	cmd := exec.Command(server, "-D", data, "-c", "listen_addresses=127.0.0.1", "-p", strconv.Itoa(port), "-k", dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200")
	logPath := filepath.Join(dir, "postgres.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := asPostgres(cmd, dir); err != nil {
		logf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	p := &Postgres{Port: port, dir: dir, cmd: cmd, done: make(chan error, 1),
		DSN: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)}
	go func() { p.done <- cmd.Wait(); logf.Close() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-p.done:
			log, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("postgres exited at start (%v):\n%s", err, log)
		default:
		}
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond); err == nil {
			c.Close()
			// Listening comes before accepting connections: give it the
			// moment it needs to finish starting.
			time.Sleep(200 * time.Millisecond)
			return p, nil
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, errors.New("postgres did not listen within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills the server (like a crash) and waits for it.
func (p *Postgres) Stop() {
	if p.cmd.Process != nil {
		p.cmd.Process.Kill()
		<-p.done
		p.done <- nil
	}
}

var (
	sharedPostgres = &shared[*Postgres]{name: "freshen-postgres-", start: startPostgres}
	schemas        atomic.Int64
)

// SharedPostgres returns one PostgreSQL server for the whole test binary,
// started at the first call; a TestMain that calls StopShared
// after m.Run also removes its data. Tests sharing it use their own
// schemas (UniqueSchema).
func SharedPostgres(t testing.TB) *Postgres {
	t.Helper()
	return sharedPostgres.get(t)
}

// UniqueSchema returns a PostgreSQL schema name no other test of this
// process uses.
func UniqueSchema(prefix string) string {
	return fmt.Sprintf("%s_%d_%d", prefix, os.Getpid(), schemas.Add(1))
}

// LaunchPostgres starts a PostgreSQL server with its cluster in dir, for
// programs that are not tests (the benchmarks); Stop ends it, and it dies
// with the calling process.
func LaunchPostgres(dir string) (*Postgres, error) { return startPostgres(dir) }
