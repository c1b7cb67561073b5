// Package netlab gives tests an offline "internet": network namespaces the
// test makes, a veth pair with documentation-range addresses, and servers
// (HTTP, HTTPS with a test CA, a tiny Python package index) inside, named
// through a resolver the test controls. Nothing leaves the machine and
// everything is removed when the test ends.
package netlab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"

	"golang.org/x/sys/unix"
)

// Namespace is a network namespace the test made; it lives while the
// Namespace holds it open (and while a socket made in it is open).
type Namespace struct {
	f *os.File
}

// NewNamespace makes a network namespace holding only lo, brought up.
func NewNamespace() (*Namespace, error) {
	var f *os.File
	err := onLockedThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare(CLONE_NEWNET): %w (netlab needs root)", err)
		}
		var err error
		f, err = os.Open("/proc/thread-self/ns/net")
		return err
	})
	if err != nil {
		return nil, err
	}
	ns := &Namespace{f: f}
	if out, err := ns.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		ns.Close()
		return nil, fmt.Errorf("lo up: %w: %s", err, out)
	}
	return ns, nil
}

// onLockedThread runs fn on an OS thread of its own and returns that
// thread to the caller's network namespace after; if it cannot, the
// thread ends with its goroutine (never unlocked) so no other goroutine
// runs in the wrong namespace.
func onLockedThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("back to the test's namespace: %w", err))
			return // the thread stays locked and dies with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Do runs fn on a thread inside the namespace: a socket fn makes belongs
// to the namespace for its whole life, whichever thread later uses it.
func (ns *Namespace) Do(fn func() error) error {
	return onLockedThread(func() error {
		if err := unix.Setns(int(ns.f.Fd()), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("setns into the test namespace: %w", err)
		}
		return fn()
	})
}

// Listen makes a listening socket inside the namespace.
func (ns *Namespace) Listen(network, address string) (net.Listener, error) {
	var l net.Listener
	err := ns.Do(func() (err error) {
		l, err = net.Listen(network, address)
		return err
	})
	return l, err
}

// DialContext connects from inside the namespace (for http.Transport).
func (ns *Namespace) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var c net.Conn
	err := ns.Do(func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// Command is a program to be run inside the namespace (through nsenter,
// which takes it as fd 3 and execs the program in its own place).
func (ns *Namespace) Command(name string, args ...string) *exec.Cmd {
	return ns.CommandContext(context.Background(), name, args...)
}

// CommandContext is Command killed when ctx is done.
func (ns *Namespace) CommandContext(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=/proc/self/fd/3", "--", name}, args...)...)
	cmd.ExtraFiles = []*os.File{ns.f}
	return cmd
}

// Path names the namespace for tools that open it (ip ... netns PATH),
// with the file at fd 3 of that tool (pass ns.File() as ExtraFiles[0]).
func (ns *Namespace) File() *os.File { return ns.f }

// Inode identifies the namespace, to check it is gone after Close.
func (ns *Namespace) Inode() (uint64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(ns.f.Fd()), &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// Close lets the namespace go; the kernel frees it once no socket or
// process of it is left.
func (ns *Namespace) Close() error { return ns.f.Close() }
