package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/internal/testenv"
)

// selfSignedCert writes a certificate for 127.0.0.1 and its key.
func selfSignedCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "brig test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestTokenPrintsTokenAndHash(t *testing.T) {
	bin := buildBrig(t)
	out, err := exec.Command(bin, "token").Output()
	require.NoError(t, err)
	m := regexp.MustCompile(`^token: (brig_[0-9a-f]{64})\ntoken_sha256: ([0-9a-f]{64})\n$`).FindStringSubmatch(string(out))
	require.NotNil(t, m, "%q", out)
	sum := sha256.Sum256([]byte(m[1]))
	assert.Equal(t, hex.EncodeToString(sum[:]), m[2])
	again, err := exec.Command(bin, "token").Output()
	require.NoError(t, err)
	assert.NotEqual(t, out, again)
	err = exec.Command(bin, "token", "extra").Run()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, exitBrigFailed, ee.ExitCode())
}

// brig serve refuses a bad config with the file and line; a good one
// serves on a unix socket of mode 0660 until SIGTERM, which drains it and
// leaves nothing.
func TestServeCLI(t *testing.T) {
	testenv.RequireRoot(t)
	bin := buildBrig(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("tenants: []\ntemplates: {default: {memroy: 1G}}\n"), 0o600))
	out, err := exec.Command(bin, "serve", "--config", bad).CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, exitBrigFailed, ee.ExitCode())
	assert.Contains(t, string(out), bad+":2: field memroy")
	out, err = exec.Command(bin, "serve", "--config", bad, "--log-format", "xml").CombinedOutput()
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, exitBrigFailed, ee.ExitCode())
	assert.Contains(t, string(out), `--log-format "xml": want text or json`)

	tokenOut, err := exec.Command(bin, "token").Output()
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(tokenOut)), "\n")
	token, sum := strings.TrimPrefix(lines[0], "token: "), strings.TrimPrefix(lines[1], "token_sha256: ")
	good := filepath.Join(dir, "good.yaml")
	state := filepath.Join(dir, "state")
	require.NoError(t, os.WriteFile(good, []byte(fmt.Sprintf("state_dir: %s\ntenants: [{name: t, token_sha256: %s}]\ntemplates: {default: {memory: 128M}}\n", state, sum)), 0o600))
	sock := filepath.Join(dir, "s.sock")
	certFile, keyFile, pool := selfSignedCert(t, dir)
	port := freePort(t)
	srv := exec.Command(bin, "serve", "--config", good, "--listen", "unix:"+sock, "--listen", fmt.Sprintf("tcp:127.0.0.1:%d", port),
		"--tls-cert", certFile, "--tls-key", keyFile)
	require.NoError(t, srv.Start())
	defer srv.Process.Kill()
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	deadline := time.Now().Add(testenv.Scaled(20 * time.Second))
	for {
		resp, err := client.Get("http://brig/v1/health")
		if err == nil {
			resp.Body.Close()
			break
		}
		require.True(t, time.Now().Before(deadline), "brig serve did not come up: %v", err)
		time.Sleep(20 * time.Millisecond)
	}
	fi, err := os.Stat(sock)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o660), fi.Mode().Perm())
	req, _ := http.NewRequest("POST", "http://brig/v1/sandboxes", strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 201, resp.StatusCode, "%s", body)
	// The TCP listener speaks TLS with the given certificate, and only TLS.
	tlsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err = tlsClient.Get(fmt.Sprintf("https://127.0.0.1:%d/v1/health", port))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	resp, err = http.Get(fmt.Sprintf("http://127.0.0.1:%d/v1/health", port))
	if err == nil {
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "plain HTTP on the TLS listener")
		resp.Body.Close()
	}
	require.NoError(t, srv.Process.Signal(syscall.SIGTERM))
	require.NoError(t, srv.Wait(), "brig serve exits 0 after a drain")
	entries, err := os.ReadDir(filepath.Join(state, "workspaces"))
	require.NoError(t, err)
	assert.Empty(t, entries, "the drain removed the workspaces")
}
