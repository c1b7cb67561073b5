package serve

import (
	"context"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/serve/client"
)

// The Go client against a real server, over the unix socket and TCP.
func TestGoClient(t *testing.T) {
	ts := startServer(t, nil)
	ctx := context.Background()
	c, err := client.New("unix://"+ts.sock, ts.alice)
	require.NoError(t, err)
	status, err := c.Health(ctx)
	require.NoError(t, err)
	assert.Equal(t, "ok", status)
	res, err := c.Run(ctx, client.RunRequest{Language: "python", Code: client.Code("print(6*7)")}, nil)
	require.NoError(t, err)
	assert.Equal(t, "42\n", res.Stdout)
	assert.Equal(t, "exited", res.Reason)
	var streamed strings.Builder
	res, err = c.Run(ctx, client.RunRequest{Command: []string{"/bin/sh", "-c", "echo a; exit 3"}}, func(stream, data string) { streamed.WriteString(stream + ":" + data) })
	require.NoError(t, err)
	assert.Equal(t, "stdout:a\n", streamed.String())
	assert.Equal(t, 3, res.ExitCode)

	tcp, err := client.New(ts.url, ts.alice)
	require.NoError(t, err)
	sb, err := tcp.CreateSandbox(ctx, "", 256<<10)
	require.NoError(t, err)
	assert.EqualValues(t, 256<<10, sb.WorkspaceBytes)
	require.NoError(t, tcp.WriteFile(ctx, sb.ID, "dir/a b.txt", []byte("spaced")))
	data, err := tcp.ReadFile(ctx, sb.ID, "dir/a b.txt")
	require.NoError(t, err)
	assert.Equal(t, "spaced", string(data))
	entries, err := tcp.ListDir(ctx, sb.ID, "")
	require.NoError(t, err)
	require.Len(t, entries, 1)
	assert.True(t, entries[0].IsDir)
	cx, err := tcp.CreateContext(ctx, sb.ID, "python")
	require.NoError(t, err)
	cell, err := tcp.Execute(ctx, sb.ID, cx, "import os\nsorted(os.listdir('dir'))", 5, nil)
	require.NoError(t, err)
	require.NotNil(t, cell.Value)
	assert.Equal(t, "['a b.txt']", *cell.Value)
	var out string
	cell, err = tcp.Execute(ctx, sb.ID, cx, "print('streamed')", 0, func(_, d string) { out += d })
	require.NoError(t, err)
	assert.Equal(t, "ok", cell.Status)
	assert.Equal(t, "streamed\n", out)
	p, err := tcp.Process(ctx, sb.ID, client.RunRequest{Command: []string{"/bin/cat", "dir/a b.txt"}}, nil)
	require.NoError(t, err)
	assert.Equal(t, "spaced", p.Stdout)
	bg, err := tcp.StartProcess(ctx, sb.ID, client.RunRequest{Command: []string{"/bin/sh", "-c", "read l; echo got:$l; sleep 600"}})
	require.NoError(t, err)
	n, err := tcp.WriteStdin(ctx, sb.ID, bg, []byte("x\n"), true)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	got := make(chan string, 1)
	go func() {
		var out string
		_, _ = tcp.Wait(ctx, sb.ID, bg, func(_, d string) {
			out += d
			if strings.Contains(out, "got:x\n") {
				select {
				case got <- out:
				default:
				}
			}
		})
	}()
	assert.Equal(t, "got:x\n", <-got)
	require.NoError(t, tcp.Signal(ctx, sb.ID, bg, "TERM"))
	waited, err := tcp.Wait(ctx, sb.ID, bg, nil)
	require.NoError(t, err)
	assert.Equal(t, "got:x\n", waited.Stdout)
	require.NoError(t, tcp.DeleteProcess(ctx, sb.ID, bg))
	interrupted, err := tcp.Interrupt(ctx, sb.ID, cx)
	require.NoError(t, err)
	assert.False(t, interrupted)
	require.NoError(t, tcp.RemoveFile(ctx, sb.ID, "dir/a b.txt"))
	require.NoError(t, tcp.DeleteContext(ctx, sb.ID, cx))
	list, err := tcp.Sandboxes(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.NoError(t, tcp.DeleteSandbox(ctx, sb.ID))
	_, err = tcp.Sandbox(ctx, sb.ID)
	var apiErr *client.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 404, apiErr.Status)

	bad, err := client.New(ts.url, "wrong")
	require.NoError(t, err)
	_, err = bad.Sandboxes(ctx)
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "unauthorized", apiErr.Code)
	_, err = c.Run(ctx, client.RunRequest{Command: []string{"/bin/true"}, Memory: 1 << 30}, nil)
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "over_template_limit", apiErr.Code)
}

// jsonKeys lists the JSON keys of a struct type's fields.
func jsonKeys(v any) []string {
	var keys []string
	t := reflect.TypeOf(v)
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous {
			keys = append(keys, jsonKeys(reflect.New(f.Type).Elem().Interface())...)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		keys = append(keys, name)
	}
	sort.Strings(keys)
	return keys
}

// The client's result types hold the server's keys, so neither can drift.
func TestGoClientShapes(t *testing.T) {
	assert.Equal(t, jsonKeys(runAnswer{}), jsonKeys(client.Result{}))
	assert.Equal(t, jsonKeys(CellJSON{}), jsonKeys(client.CellResult{}))
	assert.Equal(t, jsonKeys(ExceptionJSON{}), jsonKeys(client.Exception{}))
}
