package sandboxd

import (
	"fmt"
	"net"
	"net/netip"
)

// Default addresses of the two listeners, as KEP-539.2 names them.
const (
	DefaultGRPCAddr = "127.0.0.1:9090"
	DefaultRESTAddr = "127.0.0.1:8080"
)

// Listen listens on a loopback TCP address and refuses any other: the
// sandboxd protocol has no authentication, so whoever reaches it runs
// code in the pod. A host name is refused too, since what it resolves to
// may change.
func Listen(addr string) (net.Listener, error) {
	if err := CheckLoopback(addr); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sandboxd: listen on %s: %w", addr, err)
	}
	return ln, nil
}

// CheckLoopback reports whether addr is HOST:PORT with HOST a loopback IP
// literal (127.0.0.0/8 or ::1).
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("sandboxd: listen address %q: want HOST:PORT with a loopback HOST such as 127.0.0.1: %w", addr, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.Unmap().IsLoopback() || ip.Zone() != "" {
		return fmt.Errorf("sandboxd: listen address %q: not a loopback address; sandboxd has no authentication and listens on loopback only (127.0.0.1 or [::1]), as KEP-539.2 requires", addr)
	}
	return nil
}
