package testenv

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// A server that binds every interface whatever it is told (weaviate's
// gRPC API) runs in a Linux network namespace of its own, where the only
// interface is a loopback that nothing outside can reach; a forwarder on
// the test process's 127.0.0.1 connects clients to it. Entering another
// process's network namespace needs CAP_SYS_ADMIN (root).

// openNetns opens the network namespace of process pid.
func openNetns(pid int) (*os.File, error) {
	return os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
}

// sameNetns reports whether process pid is in the test process's network
// namespace.
func sameNetns(pid int) (bool, error) {
	var self, other unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &self); err != nil {
		return false, err
	}
	if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &other); err != nil {
		return false, err
	}
	return self.Dev == other.Dev && self.Ino == other.Ino, nil
}

// inNetns runs fn on an OS thread that is in network namespace ns for the
// duration: sockets fn creates belong to ns for good. fn runs on a
// goroutine of its own, locked to its thread; the thread returns to the
// process's namespace afterwards, or, if it cannot, exits with the
// goroutine so that no other goroutine ever runs in ns.
//
// (Pdeathsig children die with the thread that forked them, so the
// thread must not exit in the normal case: it could be the one that
// started a server.)
func inNetns(ns *os.File, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer self.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace (needs root or CAP_SYS_ADMIN): %w", err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			// Stay locked: the thread exits with this goroutine.
			errc <- errors.Join(ferr, fmt.Errorf("return to network namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// setLoopbackUp brings up interface lo of network namespace ns (a new
// namespace's is down, without 127.0.0.1) without needing iproute2.
func setLoopbackUp(ns *os.File) error {
	var fd int
	err := inNetns(ns, func() (err error) {
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return fmt.Errorf("socket in network namespace: %w", err)
	}
	// The ioctls act on the socket's namespace, whatever the thread's.
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("get flags of lo: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	return nil
}

// forwarder accepts connections on a listener of the test process and
// connects each to a TCP address in another network namespace.
type forwarder struct {
	ln     net.Listener
	ns     *os.File // not owned: it must outlive close
	target string
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
}

// listenForwarder listens on a free port of 127.0.0.1; serve starts
// forwarding.
func listenForwarder() (*forwarder, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return &forwarder{ln: ln, conns: map[net.Conn]struct{}{}}, nil
}

// addr is the listener's host:port.
func (f *forwarder) addr() string { return f.ln.Addr().String() }

// serve forwards connections to target (host:port) in namespace ns until
// close.
func (f *forwarder) serve(ns *os.File, target string) {
	f.ns, f.target = ns, target
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := f.ln.Accept()
			if err != nil {
				return // closed; nothing else is expected of a loopback listener
			}
			f.wg.Add(1)
			go f.handle(c)
		}
	}()
}

func (f *forwarder) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *forwarder) untrack(c net.Conn) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
	c.Close()
}

func (f *forwarder) handle(c net.Conn) {
	defer f.wg.Done()
	if !f.track(c) {
		c.Close()
		return
	}
	defer f.untrack(c)
	var up net.Conn
	err := inNetns(f.ns, func() (err error) {
		up, err = (&net.Dialer{Timeout: 10 * time.Second}).Dial("tcp", f.target)
		return err
	})
	if err != nil {
		if up != nil {
			up.Close()
		}
		return
	}
	if !f.track(up) {
		up.Close()
		return
	}
	defer f.untrack(up)
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(up, c)
		closeWrite(up)
	}()
	io.Copy(c, up)
	closeWrite(c)
	<-done
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
}

// close stops the listener, cuts every forwarded connection and waits for
// the forwarder's goroutines to end.
func (f *forwarder) close() {
	f.ln.Close()
	f.mu.Lock()
	f.closed = true
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}
