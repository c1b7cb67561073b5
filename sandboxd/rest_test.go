package sandboxd

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"time"

	"github.com/brig-sandbox/brig/internal/testenv"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	processv1 "sigs.k8s.io/agent-sandbox/packages/sandboxd/spec/process/v1"
)

// agentSandboxDir is the module's directory in the module cache: the
// specs are read from there at test time, never copied.
func agentSandboxDir(t testing.TB) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/agent-sandbox").Output()
	require.NoError(t, err, "go list -m sigs.k8s.io/agent-sandbox")
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		t.Skip("sigs.k8s.io/agent-sandbox is not in the module cache (go mod download)")
	}
	return dir
}

var (
	specOnce sync.Once
	specDoc  *openapi3.T
	specErr  error
)

// filesystemSpec loads and checks filesystem.yaml.
func filesystemSpec(t testing.TB) *openapi3.T {
	t.Helper()
	dir := agentSandboxDir(t)
	specOnce.Do(func() {
		specDoc, specErr = openapi3.NewLoader().LoadFromFile(filepath.Join(dir, "packages/sandboxd/spec/filesystem/v1/filesystem.yaml"))
		if specErr == nil {
			specErr = specDoc.Validate(context.Background())
		}
	})
	require.NoError(t, specErr)
	return specDoc
}

// restClient sends requests and checks every request and response
// against filesystem.yaml: the status must be one the operation lists,
// the body must match its schema (formats included), HEAD answers as GET.
type restClient struct {
	t    testing.TB
	base string
	spec *openapi3.T
}

func (ts *testServer) rest(t testing.TB) *restClient {
	return &restClient{t: t, base: ts.restURL, spec: filesystemSpec(t)}
}

type restResponse struct {
	status int
	header http.Header
	body   []byte
}

func (r restResponse) errorCode(t testing.TB) string {
	t.Helper()
	var e apiError
	require.NoError(t, json.Unmarshal(r.body, &e), "error body %q", r.body)
	require.NotEmpty(t, e.Message)
	return e.Code
}

// do sends method on specPath (the spec's path, such as "/files/{path}")
// with its path parameter already in rawPath (escaped as sent).
func (c *restClient) do(method, specPath, rawPath, query string, contentType string, body []byte) restResponse {
	c.t.Helper()
	u := c.base + "/v1" + rawPath
	if query != "" {
		u += "?" + query
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	require.NoError(c.t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	c.validate(method, specPath, req, body, resp, got)
	return restResponse{resp.StatusCode, resp.Header, got}
}

func (c *restClient) validate(method, specPath string, req *http.Request, reqBody []byte, resp *http.Response, body []byte) {
	c.t.Helper()
	item := c.spec.Paths.Value(specPath)
	require.NotNil(c.t, item, "%s is not in filesystem.yaml", specPath)
	opMethod := method
	if method == http.MethodHead {
		opMethod = http.MethodGet
	}
	op := item.GetOperation(opMethod)
	require.NotNil(c.t, op, "%s %s is not in filesystem.yaml", opMethod, specPath)
	route := &routers.Route{Spec: c.spec, Path: specPath, PathItem: item, Method: opMethod, Operation: op}
	params := map[string]string{}
	if strings.HasPrefix(specPath, "/files/") {
		params["path"] = strings.TrimPrefix(req.URL.EscapedPath(), "/v1/files/")
	}
	vreq := req.Clone(context.Background())
	if reqBody != nil {
		vreq.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true,
		SchemaValidationOptions: []openapi3.SchemaValidationOption{openapi3.EnableFormatValidation()}}
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route, Options: opts}
	// A request the test sends on purpose outside the spec (a bad mode)
	// is not the server's fault; only its answer is checked then.
	reqErr := openapi3filter.ValidateRequest(context.Background(), in)
	if method == http.MethodHead {
		// kin-openapi skips HEAD; check it as GET's headers, with no body.
		require.NotNil(c.t, op.Responses.Status(resp.StatusCode), "HEAD status %d is not one of GET's", resp.StatusCode)
		mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		require.NotNil(c.t, op.Responses.Status(resp.StatusCode).Value.Content.Get(mt), "HEAD content type %q", mt)
		require.Empty(c.t, body)
		return
	}
	if reqErr != nil {
		// The spec describes no answer to a request outside it (DELETE
		// lists no 400): such a request gets 400 or 403 with the spec's
		// Error body.
		require.Contains(c.t, []int{400, 403}, resp.StatusCode, "%s %s outside the spec (%v) answered %d", method, req.URL, reqErr, resp.StatusCode)
		require.NoError(c.t, c.spec.Components.Schemas["Error"].Value.VisitJSON(jsonValue(c.t, body)), "error body %q", body)
		return
	}
	err := openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header, Body: io.NopCloser(bytes.NewReader(body)), Options: opts})
	require.NoError(c.t, err, "%s %s answered %d %q, outside filesystem.yaml (request valid: %v)", method, req.URL, resp.StatusCode, body, reqErr)
}

// files is a /v1/files request for p, escaped as the spec asks ('/' as %2F).
func (c *restClient) files(method, p, query, contentType string, body []byte) restResponse {
	c.t.Helper()
	return c.do(method, "/files/{path}", "/files/"+url.PathEscape(p), query, contentType, body)
}

func TestRESTFilesRoundTrip(t *testing.T) {
	ts := startServer(t, Options{})
	c := ts.rest(t)
	// PUT creates the parents, with the mode asked for, as the owner.
	r := c.files("PUT", "src/pkg/main.py", "mode=0755", "application/octet-stream", []byte("print('hi')\n"))
	require.Equal(t, 204, r.status, "%s", r.body)
	fi, err := os.Stat(filepath.Join(ts.workspace, "src/pkg/main.py"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), fi.Mode().Perm())
	assert.EqualValues(t, workspaceOwner, fileOwner(fi))
	dfi, err := os.Stat(filepath.Join(ts.workspace, "src/pkg"))
	require.NoError(t, err)
	assert.EqualValues(t, workspaceOwner, fileOwner(dfi))

	r = c.files("GET", "src/pkg/main.py", "", "", nil)
	require.Equal(t, 200, r.status)
	assert.Equal(t, "print('hi')\n", string(r.body))
	assert.Equal(t, "application/octet-stream", r.header.Get("Content-Type"))
	r = c.files("HEAD", "src/pkg/main.py", "", "", nil)
	require.Equal(t, 200, r.status)
	assert.Equal(t, "12", r.header.Get("Content-Length"))
	// An absolute path in the workspace as the jails see it is the same file.
	r = c.files("GET", "/workspace/src/pkg/main.py", "", "", nil)
	require.Equal(t, 200, r.status)

	// A jail sees it and runs it; what the jail writes the REST side reads.
	resp, err := ts.client.Execute(context.Background(), &processv1.ExecuteRequest{Config: cfg("/bin/sh", "-c", "./src/pkg/main.py > out.txt 2>&1 || cat src/pkg/main.py > out.txt; echo more >> src/pkg/main.py")})
	require.NoError(t, err)
	require.Zero(t, resp.GetExitCode(), "%s", resp.GetStderr())
	r = c.files("GET", "src/pkg/main.py", "", "", nil)
	assert.Equal(t, "print('hi')\nmore\n", string(r.body), "the jail changed the file the server wrote")

	// Overwrite (default mode 0644), and a multipart upload.
	r = c.files("PUT", "src/pkg/main.py", "", "application/octet-stream", []byte("v2"))
	require.Equal(t, 204, r.status)
	fi, _ = os.Stat(filepath.Join(ts.workspace, "src/pkg/main.py"))
	assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm())
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	fw, _ := mw.CreateFormFile("file", "x.bin")
	fw.Write([]byte("from a form"))
	mw.Close()
	r = c.files("PUT", "form.bin", "", mw.FormDataContentType(), mp.Bytes())
	require.Equal(t, 204, r.status, "%s", r.body)
	b, _ := os.ReadFile(filepath.Join(ts.workspace, "form.bin"))
	assert.Equal(t, "from a form", string(b))

	// A directory lists its files and directories.
	r = c.files("GET", "src", "", "", nil)
	require.Equal(t, 200, r.status)
	var l directoryListing
	require.NoError(t, json.Unmarshal(r.body, &l))
	assert.Equal(t, "/workspace/src", l.Path)
	require.Len(t, l.Entries, 1)
	assert.Equal(t, "pkg", l.Entries[0].Name)
	assert.Equal(t, "directory", l.Entries[0].Type)
	r = c.files("HEAD", "src", "", "", nil)
	require.Equal(t, 200, r.status)
	r = c.files("GET", ".", "", "", nil)
	require.Equal(t, 200, r.status)

	// Not there: 404 with the spec's body.
	for _, m := range []string{"GET", "DELETE"} {
		r = c.files(m, "nope/none", "", "", nil)
		require.Equal(t, 404, r.status)
		assert.Equal(t, "NOT_FOUND", r.errorCode(t))
	}
	r = c.files("HEAD", "nope", "", "", nil)
	require.Equal(t, 404, r.status)

	// Bad mode: 400; a file cannot replace a directory: 400.
	for _, q := range []string{"mode=644", "mode=0999", "mode=04755", "mode=0644&mode=0600", "mode=abc"} {
		r = c.files("PUT", "m.txt", q, "application/octet-stream", []byte("x"))
		require.Equal(t, 400, r.status, q)
		assert.Equal(t, "INVALID_ARGUMENT", r.errorCode(t))
	}
	r = c.files("PUT", "src", "", "application/octet-stream", []byte("x"))
	require.Equal(t, 400, r.status)
	_, err = os.Stat(filepath.Join(ts.workspace, "m.txt"))
	assert.ErrorIs(t, err, os.ErrNotExist, "a refused PUT leaves nothing")
	assertNoTempFiles(t, ts.workspace)
}

func TestRESTDelete(t *testing.T) {
	ts := startServer(t, Options{})
	c := ts.rest(t)
	for _, p := range []string{"d/a.txt", "d/e/b.txt", "f.txt"} {
		require.Equal(t, 204, c.files("PUT", p, "", "application/octet-stream", []byte(p)).status)
	}
	r := c.files("DELETE", "f.txt", "", "", nil)
	require.Equal(t, 204, r.status)
	r = c.files("DELETE", "d", "", "", nil)
	require.Equal(t, 409, r.status)
	assert.Equal(t, "CONFLICT", r.errorCode(t))
	r = c.files("DELETE", "d", "recursive=false", "", nil)
	require.Equal(t, 409, r.status)
	_, err := os.Stat(filepath.Join(ts.workspace, "d/e/b.txt"))
	require.NoError(t, err, "a refused DELETE removes nothing")
	r = c.files("DELETE", "d", "recursive=maybe", "", nil)
	require.NotEqual(t, 204, r.status)
	r = c.files("DELETE", "d", "recursive=true", "", nil)
	require.Equal(t, 204, r.status)
	_, err = os.Stat(filepath.Join(ts.workspace, "d"))
	assert.ErrorIs(t, err, os.ErrNotExist)
	require.Equal(t, 204, c.files("PUT", "empty/x", "", "application/octet-stream", []byte("x")).status)
	require.Equal(t, 204, c.files("DELETE", "empty/x", "", "", nil).status)
	require.Equal(t, 204, c.files("DELETE", "empty", "", "", nil).status, "an empty directory goes without recursive")

	// The workspace itself is emptied, never removed, and only recursively.
	require.Equal(t, 204, c.files("PUT", "k/l", "", "application/octet-stream", []byte("x")).status)
	require.Equal(t, 409, c.files("DELETE", ".", "", "", nil).status)
	require.Equal(t, 204, c.files("DELETE", "/workspace", "recursive=true", "", nil).status)
	ents, err := os.ReadDir(ts.workspace)
	require.NoError(t, err)
	assert.Empty(t, ents)
}

// TestRESTTraversal: every way out of the workspace is refused with 403
// PERMISSION_DENIED, symlinks planted by jailed code included, and nothing
// outside is read, written or removed; the same requests inside work.
func TestRESTTraversal(t *testing.T) {
	ts := startServer(t, Options{})
	c := ts.rest(t)
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	require.NoError(t, os.WriteFile(secret, []byte("host secret"), 0o644))
	require.NoError(t, os.Chown(outside, workspaceOwner, workspaceOwner))
	require.NoError(t, os.Chown(secret, workspaceOwner, workspaceOwner))
	// The jailed code plants links to the host's paths (which mean
	// nothing in the jail, but everything on the host) and to the jail's.
	resp, err := ts.client.Execute(context.Background(), &processv1.ExecuteRequest{Config: cfg("/bin/sh", "-c",
		"mkdir real && echo inside > real/f && ln -s "+outside+" out && ln -s "+secret+" secretlink && ln -s real/f innerlink && ln -s .. up && mkfifo fifo")})
	require.NoError(t, err)
	require.Zero(t, resp.GetExitCode(), "%s", resp.GetStderr())

	for _, p := range []string{"out/secret", "secretlink", "innerlink", "up/x", "out", "../x", "a/../../x", "/etc/passwd", "/workspace/../etc/passwd", "/" + outside + "/secret", "real/\x00x"} {
		for _, m := range []string{"GET", "HEAD", "PUT", "DELETE"} {
			var body []byte
			if m == "PUT" {
				body = []byte("overwritten")
			}
			if (m == "DELETE" || m == "PUT") && (p == "secretlink" || p == "innerlink" || p == "out") {
				continue // removing or replacing a link itself is allowed; checked below
			}
			r := c.files(m, p, "", "application/octet-stream", body)
			require.Equal(t, 403, r.status, "%s %q: %s", m, p, r.body)
			if m != "HEAD" {
				assert.Equal(t, "PERMISSION_DENIED", r.errorCode(t), "%s %q", m, p)
			}
		}
	}
	// Raw, unescaped traversal in the URL never reaches the workspace
	// either (the client cleans it, or the server refuses it).
	for _, raw := range []string{"/files/..%2F..%2Fetc%2Fpasswd", "/files/%2E%2E/%2E%2E/etc/passwd", "/files/real%2F..%2F..%2Fx"} {
		r := c.do("GET", "/files/{path}", raw, "", "", nil)
		require.Contains(t, []int{403, 404}, r.status, raw)
		require.NotContains(t, string(r.body), "root:", raw)
	}
	// A FIFO is never opened for reading (it would wait for a writer).
	r := c.files("GET", "fifo", "", "", nil)
	require.Equal(t, 403, r.status)

	// Links are removed and replaced as links, never followed.
	require.Equal(t, 204, c.files("PUT", "secretlink", "", "application/octet-stream", []byte("a file now")).status)
	require.Equal(t, 204, c.files("DELETE", "out", "", "", nil).status)
	b, err := os.ReadFile(secret)
	require.NoError(t, err)
	assert.Equal(t, "host secret", string(b), "nothing outside the workspace was touched")
	r = c.files("GET", "secretlink", "", "", nil)
	assert.Equal(t, "a file now", string(r.body))
	// The benign request beside each: inside the workspace it works.
	r = c.files("GET", "real/f", "", "", nil)
	require.Equal(t, 200, r.status)
	assert.Equal(t, "inside\n", string(r.body))
	r = c.files("GET", "real/../real/f", "", "", nil)
	require.Equal(t, 200, r.status)
	// The listing names no link, FIFO or other special file.
	r = c.files("GET", ".", "", "", nil)
	require.Equal(t, 200, r.status)
	var l directoryListing
	require.NoError(t, json.Unmarshal(r.body, &l))
	var names []string
	for _, e := range l.Entries {
		names = append(names, e.Name)
	}
	assert.ElementsMatch(t, []string{"real", "secretlink"}, names)
	assertNoTempFiles(t, ts.workspace)
}

// TestRESTPutIsAtomic: readers see the old content or the new, never a
// part, while a large PUT is under way; a PUT cut off mid-body leaves the
// old file and no temporary file.
func TestRESTPutIsAtomic(t *testing.T) {
	ts := startServer(t, Options{})
	c := ts.rest(t)
	old := bytes.Repeat([]byte("o"), 1<<20)
	require.Equal(t, 204, c.files("PUT", "big", "", "application/octet-stream", old).status)

	pr, pw := io.Pipe()
	req, err := http.NewRequest("PUT", ts.restURL+"/v1/files/big", pr)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/octet-stream")
	done := make(chan *http.Response, 1)
	go func() {
		resp, _ := http.DefaultClient.Do(req)
		done <- resp
	}()
	newContent := bytes.Repeat([]byte("n"), 1<<20)
	_, err = pw.Write(newContent[:1<<19])
	require.NoError(t, err)
	// Half the new body is in: a reader still sees the whole old file.
	r := c.files("GET", "big", "", "", nil)
	require.Equal(t, 200, r.status)
	assert.True(t, bytes.Equal(old, r.body), "a reader saw a partial write")
	// The client goes away mid-body: the old file stays, no temp file.
	pw.CloseWithError(io.ErrUnexpectedEOF)
	if resp := <-done; resp != nil {
		resp.Body.Close()
	}
	r = c.files("GET", "big", "", "", nil)
	assert.True(t, bytes.Equal(old, r.body))
	assertNoTempFiles(t, ts.workspace)
	require.Equal(t, 204, c.files("PUT", "big", "", "application/octet-stream", newContent).status)
	r = c.files("GET", "big", "", "", nil)
	assert.True(t, bytes.Equal(newContent, r.body))
}

func TestRESTHealthMetadataAndShutdown(t *testing.T) {
	env := []string{"SANDBOX_ID=sb-1", "SANDBOX_API_TOKEN=never", "HOME=/root", "SANDBOX_POD=p"}
	ts := startServer(t, Options{Environ: func() []string { return env }, ShutdownGrace: testenv.Scaled(3 * time.Second)})
	c := ts.rest(t)
	r := c.do("GET", "/health", "/health", "", "", nil)
	require.Equal(t, 200, r.status)
	r = c.do("GET", "/metadata", "/metadata", "", "", nil)
	require.Equal(t, 200, r.status)
	var md metadataResponse
	require.NoError(t, json.Unmarshal(r.body, &md))
	assert.Equal(t, map[string]string{"SANDBOX_ID": "sb-1", "SANDBOX_POD": "p"}, md.Env, "a credential-like name is never served")

	// Shutdown: health 503 at once, a running process gets SIGTERM and
	// its grace, new work UNAVAILABLE.
	ctx := context.Background()
	// The program ends when told, after its SIGTERM: until then the server
	// is draining.
	s := ts.start(t, ctx, &processv1.StartRequest{Config: cfg("/bin/sh", "-c", `trap 'echo term' TERM; echo ready; while [ ! -e stop ]; do sleep 0.05; done`)})
	s.until("ready\n")
	shut := make(chan error, 1)
	go func() { shut <- ts.Shutdown(ctx) }()
	s.until("term\n")
	r = c.do("GET", "/health", "/health", "", "", nil)
	require.Equal(t, 503, r.status)
	assert.Equal(t, "UNAVAILABLE", r.errorCode(t))
	_, err := ts.client.Execute(ctx, &processv1.ExecuteRequest{Config: cfg("/bin/true")})
	requireCode(t, err, codes.Unavailable)
	require.NoError(t, os.WriteFile(filepath.Join(ts.workspace, "stop"), nil, 0o644))
	res := s.wait()
	assert.Equal(t, "exited", res.Reason, "the program ended by itself within its grace")
	require.NoError(t, <-shut)
}

// assertNoTempFiles checks that no PUT left a temporary file.
func assertNoTempFiles(t testing.TB, dir string) {
	t.Helper()
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".brig-put-") {
			t.Errorf("a temporary file left: %s", p)
		}
		return nil
	})
}

func jsonValue(t testing.TB, b []byte) any {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal(b, &v), "%q", b)
	return v
}
