package netlab

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The test internet's addresses: documentation ranges (RFC 5737, RFC
// 3849), which no real host answers and no proxy rule of brig's forbids.
var (
	HostAddr4   = netip.MustParseAddr("198.51.100.1") // the test's end of the veth
	ServerAddr4 = netip.MustParseAddr("198.51.100.2")
	HostAddr6   = netip.MustParseAddr("2001:db8::1")
	ServerAddr6 = netip.MustParseAddr("2001:db8::2")
)

// Names the test internet's certificate covers; they resolve to the
// server's addresses unless a test says otherwise (SetName).
var ServerNames = []string{"www.example.com", "index.example.com", "files.example.com"}

// Internet is the test's stand-in for the internet: a namespace joined to
// the test's by a veth pair, with an HTTP server on port 80 and an HTTPS
// server on 443 (both address families) and a package index.
type Internet struct {
	NS       *Namespace
	HostVeth string
	// CAFile is the test CA in PEM, for curl --cacert, pip --cert,
	// SSL_CERT_FILE; CAPool is the same for Go clients.
	CAFile string
	CAPool *x509.CertPool
	// Wheel is the package the index serves.
	Wheel Wheel

	lock    net.Listener
	mu      sync.Mutex
	names   map[string][]netip.Addr
	servers []*http.Server
	done    sync.WaitGroup
}

// Start builds the test internet, or skips the test saying what the
// machine lacks; the test's cleanup removes all of it.
func Start(t testing.TB) *Internet {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("netlab needs root (network namespaces and a veth pair)")
	}
	for _, tool := range []string{"ip", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("netlab needs %s (iproute2, util-linux): %v", tool, err)
		}
	}
	lock := holdTheInternet(t)
	ns, err := NewNamespace()
	if err != nil {
		lock.Close()
		t.Fatalf("netlab: %v", err)
	}
	var suffix [3]byte
	rand.Read(suffix[:])
	in := &Internet{NS: ns, HostVeth: "bnl" + hex.EncodeToString(suffix[:]), names: map[string][]netip.Addr{}, lock: lock}
	t.Cleanup(func() {
		if err := in.Close(); err != nil {
			t.Errorf("netlab teardown: %v", err)
		}
	})
	inner := in.HostVeth + "i"
	run := func(cmd *exec.Cmd) {
		t.Helper()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("netlab: %s: %v: %s", strings.Join(cmd.Args, " "), err, out)
		}
	}
	add := exec.Command("ip", "link", "add", in.HostVeth, "type", "veth", "peer", "name", inner, "netns", "/proc/self/fd/3")
	add.ExtraFiles = []*os.File{ns.File()}
	run(add)
	run(exec.Command("ip", "addr", "add", HostAddr4.String()+"/24", "dev", in.HostVeth))
	run(exec.Command("ip", "-6", "addr", "add", HostAddr6.String()+"/64", "dev", in.HostVeth, "nodad"))
	run(exec.Command("ip", "link", "set", in.HostVeth, "up"))
	run(ns.Command("ip", "addr", "add", ServerAddr4.String()+"/24", "dev", inner))
	run(ns.Command("ip", "-6", "addr", "add", ServerAddr6.String()+"/64", "dev", inner, "nodad"))
	run(ns.Command("ip", "link", "set", inner, "up"))

	for _, n := range ServerNames {
		in.names[n] = []netip.Addr{ServerAddr4, ServerAddr6}
	}
	ca, err := newTestCA(ServerNames, []netip.Addr{ServerAddr4, ServerAddr6})
	if err != nil {
		t.Fatalf("netlab: %v", err)
	}
	in.CAPool = ca.pool
	in.CAFile = filepath.Join(t.TempDir(), "netlab-ca.pem")
	if err := os.WriteFile(in.CAFile, ca.caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	in.Wheel, err = BuildWheel("brignetlabpkg", "1.0")
	if err != nil {
		t.Fatalf("netlab: %v", err)
	}

	mux := in.handler()
	for _, port := range []string{"80", "443"} {
		l, err := ns.Listen("tcp", ":"+port)
		if err != nil {
			t.Fatalf("netlab: listen on :%s in the test internet: %v", port, err)
		}
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
		if port == "443" {
			srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{ca.leaf}}
			l = tls.NewListener(l, srv.TLSConfig)
		}
		in.servers = append(in.servers, srv)
		in.done.Add(1)
		go func() {
			defer in.done.Done()
			srv.Serve(l)
		}()
	}
	return in
}

// SetName makes name resolve to addrs (none: the name does not exist).
func (in *Internet) SetName(name string, addrs ...netip.Addr) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.names[strings.ToLower(name)] = addrs
}

// LookupNetIP is the test's resolver (egress.Resolver): the names the
// test set, nothing else.
func (in *Internet) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	addrs, ok := in.names[strings.ToLower(host)]
	if !ok || len(addrs) == 0 {
		return nil, &net.DNSError{Err: "no such host (netlab)", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, a := range addrs {
		if network == "ip" || network == "ip4" && a.Is4() || network == "ip6" && a.Is6() {
			out = append(out, a)
		}
	}
	return out, nil
}

// handler serves the test internet's pages:
//
//	/            a greeting
//	/bytes?n=N   N bytes (a large download)
//	/sink        reads the request body whole and says how long it was
//	/simple/...  a PEP 503 index holding the one wheel
//	/packages/   the wheel
func (in *Internet) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, "hello from the test internet, host %s\n", r.Host)
	})
	mux.HandleFunc("/bytes", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		if err != nil || n < 0 {
			http.Error(w, "n: a byte count", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		buf := make([]byte, 64<<10)
		for n > 0 {
			k := min(n, int64(len(buf)))
			if _, err := w.Write(buf[:k]); err != nil {
				return
			}
			n -= k
		}
	})
	mux.HandleFunc("/sink", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "got %d bytes\n", n)
	})
	wh := in.Wheel
	mux.HandleFunc("/simple/", func(w http.ResponseWriter, r *http.Request) {
		switch strings.Trim(r.URL.Path, "/") {
		case "simple":
			fmt.Fprintf(w, "<!DOCTYPE html><html><body><a href=\"/simple/%s/\">%s</a></body></html>\n", wh.Name, wh.Name)
		case "simple/" + wh.Name:
			fmt.Fprintf(w, "<!DOCTYPE html><html><body><a href=\"/packages/%s#sha256=%s\">%s</a></body></html>\n", wh.File, wh.SHA256, wh.File)
		default:
			http.NotFound(w, r)
		}
	})
	mux.HandleFunc("/packages/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/packages/"+wh.File {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(wh.Data)
	})
	return mux
}

// Close stops the servers and removes the veth pair and the namespace.
func (in *Internet) Close() error {
	var errs []error
	for _, s := range in.servers {
		errs = append(errs, s.Close())
	}
	in.done.Wait()
	if out, err := exec.Command("ip", "link", "del", in.HostVeth).CombinedOutput(); err != nil && !strings.Contains(string(out), "Cannot find device") {
		errs = append(errs, fmt.Errorf("ip link del %s: %w: %s", in.HostVeth, err, out))
	}
	errs = append(errs, in.NS.Close())
	in.lock.Close()
	return errors.Join(errs...)
}

// holdTheInternet waits until no other test internet exists on this
// machine and claims it: two would give the test's namespace two routes to
// 198.51.100.0/24 (go test runs packages in parallel processes). The claim
// is an abstract unix socket, which the kernel drops with its process, so
// a crashed test leaves nothing that blocks the next.
func holdTheInternet(t testing.TB) net.Listener {
	t.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	for {
		l, err := net.Listen("unix", "@brig-netlab-internet")
		if err == nil {
			return l
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("netlab: claim the test internet: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("netlab: another test internet has existed for 10 minutes (a test of another process holds @brig-netlab-internet)")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Gone reports what of a closed Internet is still there: the veth, or an
// fd of this process on its namespace.
func Gone(veth string, nsInode uint64) error {
	if _, err := net.InterfaceByName(veth); err == nil {
		return fmt.Errorf("veth %s is still there", veth)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	want := fmt.Sprintf("net:[%d]", nsInode)
	for _, fd := range fds {
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && l == want {
			return fmt.Errorf("fd %s still holds the namespace %s", fd.Name(), want)
		}
	}
	return nil
}
