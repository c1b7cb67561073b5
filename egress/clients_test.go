package egress_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/brig-sandbox/brig/internal/testenv"
)

const python = "/usr/bin/python3"

// proxyEnv is the environment a jailed program gets in proxy mode
// (docs/egress.md), with a home and pip settings of its own.
func (lb *lab) proxyEnv(t *testing.T) []string {
	u := "http://" + lb.addr
	home := t.TempDir()
	return []string{
		"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + home, "LANG=C.UTF-8",
		"HTTP_PROXY=" + u, "HTTPS_PROXY=" + u, "http_proxy=" + u, "https_proxy=" + u, "ALL_PROXY=" + u,
		"NO_PROXY=localhost,127.0.0.1", "no_proxy=localhost,127.0.0.1",
		"PIP_CONFIG_FILE=/dev/null", "PYTHONNOUSERSITE=1",
	}
}

// run runs a program inside the jail's namespace (only lo, the proxy's
// listener) with the proxy environment.
func (lb *lab) run(t *testing.T, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testenv.Scaled(120*time.Second))
	defer cancel()
	cmd := lb.jail.CommandContext(ctx, name, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestCurlThroughProxy: curl, with only the proxy variables, fetches an
// allowed HTTPS URL under the test CA; a host not on the list fails with
// the proxy's 403; with the proxy ignored it has no route at all.
func TestCurlThroughProxy(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed; the urllib and pip tests cover the proxy's clients")
	}
	lb := startLab(t, labPolicy(t))
	env := lb.proxyEnv(t)
	out, err := lb.run(t, env, curl, "-sS", "--fail", "--max-time", "60", "--cacert", lb.in.CAFile, "https://www.example.com/")
	if err != nil || !strings.Contains(out, "hello from the test internet, host www.example.com") {
		t.Fatalf("curl https://www.example.com/: %v\n%s", err, out)
	}
	out, err = lb.run(t, env, curl, "-sS", "--fail", "--max-time", "60", "http://www.example.com/")
	if err != nil || !strings.Contains(out, "hello from the test internet") {
		t.Fatalf("curl http://www.example.com/: %v\n%s", err, out)
	}
	// A large upload: curl asks "Expect: 100-continue" and the proxy answers.
	fi, err := os.Stat(python)
	if err != nil {
		t.Fatal(err)
	}
	out, err = lb.run(t, env, curl, "-sS", "--fail", "--max-time", "60", "--data-binary", "@"+python, "http://www.example.com/sink")
	if want := fmt.Sprintf("got %d bytes\n", fi.Size()); err != nil || out != want {
		t.Fatalf("curl upload: %v\n%s", err, out)
	}
	out, err = lb.run(t, env, curl, "-sS", "--fail", "--max-time", "60", "--cacert", lb.in.CAFile, "https://other.example.net/")
	if err == nil || !strings.Contains(out, "403") {
		t.Fatalf("curl to a host not on the list: %v\n%s; want a 403 from the proxy", err, out)
	}
	out, err = lb.run(t, env, curl, "-sS", "--noproxy", "*", "--max-time", "10", "--cacert", lb.in.CAFile, "https://198.51.100.2/")
	if err == nil {
		t.Fatalf("curl ignoring the proxy reached the test internet:\n%s", out)
	}
}

// TestPythonURLLibThroughProxy: Python's urllib, unchanged, goes through
// the proxy from the environment; a refused host raises an error that
// carries the proxy's reason.
func TestPythonURLLibThroughProxy(t *testing.T) {
	if _, err := os.Stat(python); err != nil {
		t.Skipf("%s is missing: %v", python, err)
	}
	lb := startLab(t, labPolicy(t))
	env := lb.proxyEnv(t)
	script := `
import ssl, sys, urllib.request
ctx = ssl.create_default_context(cafile=sys.argv[1])
try:
    print(urllib.request.urlopen(sys.argv[2], context=ctx, timeout=60).read().decode())
except Exception as e:
    print("ERROR", e)
    sys.exit(3)
`
	out, err := lb.run(t, env, python, "-c", script, lb.in.CAFile, "https://www.example.com/")
	if err != nil || !strings.Contains(out, "hello from the test internet, host www.example.com") {
		t.Fatalf("urllib https://www.example.com/: %v\n%s", err, out)
	}
	out, err = lb.run(t, env, python, "-c", script, lb.in.CAFile, "https://meta.example.com/")
	if err == nil || !strings.Contains(out, "403") || !strings.Contains(out, "169.254.169.254") {
		t.Fatalf("urllib to a name of the metadata address: %v\n%s; want a 403 naming the address", err, out)
	}
	t.Logf("urllib, refused: %s", out)
}

// TestPipInstallThroughProxy: `pip install --index-url` of the netlab
// index's wheel into a --target directory works through the proxy, over
// plain HTTP and over HTTPS, and the package imports; nothing is installed
// outside the test's temporary directory.
func TestPipInstallThroughProxy(t *testing.T) {
	if out, err := exec.Command(python, "-m", "pip", "--version").CombinedOutput(); err != nil {
		t.Skipf("pip is missing for %s: %v %s", python, err, out)
	}
	lb := startLab(t, labPolicy(t))
	env := lb.proxyEnv(t)
	wh := lb.in.Wheel
	for _, c := range []struct {
		name, index string
		extra       []string
	}{
		{"http", "http://index.example.com/simple/", []string{"--trusted-host", "index.example.com"}},
		{"https", "https://index.example.com/simple/", []string{"--cert", lb.in.CAFile}},
	} {
		t.Run(c.name, func(t *testing.T) {
			target := t.TempDir()
			args := append([]string{"-m", "pip", "install", "--no-cache-dir", "--disable-pip-version-check", "--no-input",
				"--timeout", "60", "--retries", "0", "--target", target, "--index-url", c.index}, c.extra...)
			out, err := lb.run(t, env, python, append(args, wh.Name)...)
			if err != nil {
				t.Fatalf("pip install %s from %s: %v\n%s", wh.Name, c.index, err, out)
			}
			out, err = lb.run(t, env, python, "-c", "import sys; sys.path.insert(0, sys.argv[1]); import "+wh.Name+" as m; print(m.VALUE)", target)
			if err != nil || strings.TrimSpace(out) != wh.Value {
				t.Fatalf("import %s from %s: %v\n%s", wh.Name, target, err, out)
			}
			if _, err := os.Stat(filepath.Join(target, wh.Name+"-"+wh.Version+".dist-info", "RECORD")); err != nil {
				t.Errorf("pip did not record the install: %v", err)
			}
		})
	}
	// An index the policy does not allow: pip fails, and the refusal is
	// listed.
	out, err := lb.run(t, env, python, "-m", "pip", "install", "--no-cache-dir", "--disable-pip-version-check", "--no-input",
		"--timeout", "30", "--retries", "0", "--target", t.TempDir(), "--index-url", "https://pypi.example.net/simple/", wh.Name)
	if err == nil {
		t.Fatalf("pip install from a host not on the list succeeded:\n%s", out)
	}
	found := false
	for _, r := range lb.proxy.Refused() {
		found = found || r.Host == "pypi.example.net"
	}
	if !found {
		t.Errorf("Refused() lacks pypi.example.net: %+v\npip said:\n%s", lb.proxy.Refused(), out)
	}
}
