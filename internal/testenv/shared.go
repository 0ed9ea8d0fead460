package testenv

import (
	"os"
	"sync"
	"testing"
)

// shared is one server for a whole test binary: started in a temporary
// directory at the first get (start-up takes seconds), killed and removed
// by stop (a TestMain calls it after m.Run; without it the server still
// dies with the process). A failed start fails every test that asks.
type shared[S interface{ Stop() }] struct {
	name  string // of the temporary directory
	start func(dir string) (S, error)

	mu      sync.Mutex
	srv     S
	dir     string
	started bool
	err     error
}

func (s *shared[S]) get(t testing.TB) S {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started && s.err == nil {
		if s.dir, s.err = os.MkdirTemp("", s.name); s.err == nil {
			if s.srv, s.err = s.start(s.dir); s.err != nil {
				os.RemoveAll(s.dir)
			} else {
				s.started = true
			}
		}
	}
	if s.err != nil {
		t.Fatal(s.err)
	}
	return s.srv
}

func (s *shared[S]) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		s.srv.Stop()
		os.RemoveAll(s.dir)
		var zero S
		s.srv, s.started = zero, false
	}
}

// StopShared kills the shared servers this test binary started (PGlite,
// PostgreSQL, Weaviate) and removes their data: a TestMain calls it after
// m.Run.
func StopShared() {
	sharedPG.stop()
	sharedPostgres.stop()
	sharedWV.stop()
}
