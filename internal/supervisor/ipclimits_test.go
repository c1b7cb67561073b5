package supervisor

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
