package supervisor

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/brig-sandbox/brig/egress"
	"github.com/brig-sandbox/brig/internal/stage"
	"golang.org/x/sys/unix"
)

// A jail whose Plan has an Egress policy (jail.Config.Network "proxy")
// reaches the outside only through an HTTP proxy served here, in the
// supervisor's process and network namespace, outside the jail's cgroup
// and namespaces. Its listener is made by the jail's init in the jail's
// network namespace (stage's proxy.c) and handed up on the handback
// socket, so no process of the caller's runs in the jail for it and an
// unprivileged supervisor, which cannot setns into the jail's namespace,
// needs nothing more.

// EgressPort is the proxy's port on the jail's lo.
const EgressPort = stage.EgressPort

// egressURL is what the program's proxy variables name.
var egressURL = "http://127.0.0.1:" + strconv.Itoa(EgressPort)

// egressVars are the proxy variables the program gets, over any of the
// caller's: pip, requests, urllib, curl, git and npm read them unchanged.
// A different value could only fail closed (there is no other route out).
var egressVars = []string{
	"HTTP_PROXY=" + egressURL, "HTTPS_PROXY=" + egressURL, "http_proxy=" + egressURL, "https_proxy=" + egressURL,
	"ALL_PROXY=" + egressURL, "all_proxy=" + egressURL,
	"NO_PROXY=localhost,127.0.0.1,::1", "no_proxy=localhost,127.0.0.1,::1",
}

// withEgressVars is env without the caller's proxy variables, and then
// the jail's: a duplicate would leave which one a program reads to its
// libc or language.
func withEgressVars(env []string) []string {
	out := make([]string, 0, len(env)+len(egressVars))
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !egressVarName(name) {
			out = append(out, kv)
		}
	}
	return append(out, egressVars...)
}

func egressVarName(name string) bool {
	switch strings.ToLower(name) {
	case "http_proxy", "https_proxy", "all_proxy", "no_proxy":
		return true
	}
	return false
}

// handbackSocket makes the socket init hands the egress listener up on,
// for a jail without a TTY (a TTY jail's socket, ttyStdio's, carries both),
// and returns its jail end.
func (c *Instance) handbackSocket() (*os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("handback socket: %w", err)
	}
	c.ttySock = os.NewFile(uintptr(fds[0]), "handback socket")
	sock := os.NewFile(uintptr(fds[1]), "handback socket (jail)")
	c.closers = append(c.closers, sock)
	return sock, nil
}

// startEgress takes the listener init sent before the program started and
// serves the jail's policy on it until closeEgress.
func (c *Instance) startEgress() error {
	fail := func(err error) error { return &StepError{Step: "open egress listener", Err: err} }
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(c.ttySock.Fd()), buf, oob, unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return fail(fmt.Errorf("receive the listener from init: %w", err))
	}
	fds, err := receivedFDs(oob[:oobn])
	if err != nil || len(fds) != 1 || n != 1 || buf[0] != stage.HandbackProxy {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return fail(fmt.Errorf("receive the listener from init: %d fds, message %q (%v)", len(fds), buf[:n], err))
	}
	f := os.NewFile(uintptr(fds[0]), "egress listener")
	l, err := net.FileListener(f)
	f.Close() // FileListener holds a copy
	if err != nil {
		return fail(err)
	}
	if c.TTY == nil {
		c.ttySock.Close()
		c.ttySock = nil
	}
	c.egress = &egress.Proxy{Policy: *c.cfg.Egress, Resolver: c.EgressResolver, OnEvent: c.OnEgress}
	c.egressDone = make(chan struct{})
	go func() {
		defer close(c.egressDone)
		if err := c.egress.Serve(l); err != nil && !errors.Is(err, egress.ErrProxyClosed) {
			// The jail's program sees its connections refused: there is
			// no other route out.
			slog.Warn("jail: egress proxy stopped", "err", err)
		}
	}()
	return nil
}

// closeEgress stops the jail's proxy (its listener, every connection, every
// goroutine) and keeps what it refused; safe to call twice and without a
// proxy.
func (c *Instance) closeEgress() {
	if c.egress == nil {
		return
	}
	_ = c.egress.Close()
	<-c.egressDone
	c.egressRefused = c.egress.Refused()
	c.egress = nil
}
