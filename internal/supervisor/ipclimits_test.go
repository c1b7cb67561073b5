package supervisor

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestIPCSysctlsFollowMemory(t *testing.T) {
	page := int64(os.Getpagesize())
	assert.Nil(t, ipcSysctls(0), "no memory limit: the kernel's defaults stay")
	for _, mem := range []int64{1 << 20, 16 << 20, 128 << 20, 512 << 20, 64 << 30} {
		v := sysctlValues(ipcSysctls(mem))
		num := func(k string) int64 {
			n, err := strconv.ParseInt(v[k], 10, 64)
			require.NoError(t, err, "%s=%q", k, v[k])
			return n
		}
		msgmni, msgmnb := num("kernel/msgmni"), num("kernel/msgmnb")
		assert.GreaterOrEqual(t, msgmni, int64(1), "at least one queue")
		if msgmni > 1 {
			assert.LessOrEqual(t, msgmni*msgmnb*(1+msgHeader), mem/4, "queues at most a quarter of %d", mem)
		}
		var semmsl, semmns, semopm, semmni int64
		_, err := fmt.Sscan(v["kernel/sem"], &semmsl, &semmns, &semopm, &semmni)
		require.NoError(t, err, v["kernel/sem"])
		assert.LessOrEqual(t, semmsl, semmns)
		assert.LessOrEqual(t, semmns*64, max(mem/64, 64), "semaphores a small share of %d", mem)
		assert.LessOrEqual(t, semmni, int64(ipcMaxIDs))
		assert.LessOrEqual(t, num("kernel/shmall")*page, max(mem/2, page), "shared memory at most half of %d", mem)
		assert.LessOrEqual(t, num("kernel/shmmax"), max(mem/2, page))
		assert.LessOrEqual(t, num("kernel/shmmni"), int64(shmMaxIDs))
	}
}

func sysctlValues(kv []string) map[string]string {
	m := map[string]string{}
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		m[k] = v
	}
	return m
}

// TestFreshIPCDefaults reads a new IPC namespace's limits from the kernel:
// a limit ipcSysctlWrites leaves out because it equals freshIPCDefaults
// must be what the jail has without the write.
func TestFreshIPCDefaults(t *testing.T) {
	got := make(chan map[string]string, 1)
	errc := make(chan error, 1)
	go func() {
		// The thread that unshared is never handed back: it ends with
		// this goroutine, and no other goroutine runs in its namespace.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWIPC); err != nil {
			errc <- err
			return
		}
		m := map[string]string{}
		for k := range freshIPCDefaults {
			b, err := os.ReadFile("/proc/sys/" + k)
			if err != nil {
				errc <- err
				return
			}
			m[k] = strings.Join(strings.Fields(string(b)), " ")
		}
		got <- m
	}()
	select {
	case err := <-errc:
		if errors.Is(err, unix.EPERM) {
			t.Skipf("needs CAP_SYS_ADMIN to make an IPC namespace: %v", err)
		}
		require.NoError(t, err)
	case m := <-got:
		assert.Equal(t, freshIPCDefaults, m, "a new IPC namespace's limits")
	}
	for _, mem := range []int64{1 << 20, 128 << 20, 512 << 20, 64 << 30} {
		all, writes := sysctlValues(ipcSysctls(mem)), sysctlValues(ipcSysctlWrites(mem))
		assert.NotEmpty(t, writes, "shmmax is never the kernel's default")
		for k, v := range all {
			if w, ok := writes[k]; ok {
				assert.Equal(t, v, w)
			} else {
				assert.Equal(t, freshIPCDefaults[k], v, "%s left out at memory %d", k, mem)
			}
		}
		assert.NotContains(t, writes, "kernel/msgmax", "the kernel's default at every memory limit")
	}
}

// A supervisor's kept list is always the one of the memory limit asked
// for, whatever the order of the asks and from however many goroutines.
func TestSupervisorIPCWritesFollowMemory(t *testing.T) {
	s := New()
	mems := []int64{64 << 20, 128 << 20, 64 << 20, 64 << 20, 0, 1 << 30, 128 << 20}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, m := range mems {
				assert.Equal(t, ipcSysctlWrites(m), s.ipcSysctlWrites(m), "memory %d", m)
			}
		}()
	}
	wg.Wait()
}
