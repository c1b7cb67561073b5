package seccomp

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openCursor opens a log cursor or skips the test with the reason.
func openCursor(t *testing.T) *LogCursor {
	t.Helper()
	cur, err := OpenLogCursor()
	if err != nil {
		t.Skipf("cannot read the kernel log, so cannot see seccomp records: %v", err)
	}
	t.Cleanup(func() { cur.Close() })
	return cur
}

// actionLogged reports whether /proc/sys/kernel/seccomp/actions_logged
// lists action.
func actionLogged(t *testing.T, action string) bool {
	data, err := os.ReadFile("/proc/sys/kernel/seccomp/actions_logged")
	if err != nil {
		t.Logf("actions_logged: %v", err)
		return false
	}
	return strings.Contains(" "+strings.TrimSpace(string(data))+" ", " "+action+" ")
}

func TestKillOnRefusal(t *testing.T) {
	prog, err := Default().KillOnRefusal().Compile()
	if err != nil {
		t.Fatal(err)
	}
	cur := openCursor(t)
	other := openCursor(t) // reads the same log, asks for another uid
	uid := testUID + 1
	c := &child{mode: "probe", prog: prog, uid: uid, args: []string{"getpid", "keyctl", "getpid"}}
	c.run(t)
	if sig := c.signal(); sig != syscall.SIGSYS {
		t.Fatalf("refused call: child ended with %v, want death by SIGSYS\nstdout:\n%s\nstderr:\n%s", c.state, c.stdout.String(), c.stderr.String())
	}
	if got := c.stdout.String(); got != "getpid 0\n" {
		t.Errorf("stdout %q: want only the getpid before keyctl", got)
	}

	if !actionLogged(t, "kill_process") {
		t.Skip("kernel does not log kill_process (see /proc/sys/kernel/seccomp/actions_logged)")
	}
	recs, err := cur.Wait(uint32(uid), 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 {
		t.Skip("no seccomp audit record in /dev/kmsg within 3s: an audit daemon may be taking them, or printk rate limiting dropped it")
	}
	t.Logf("record: %+v", recs[0])
	if foreign, err := other.Records(uint32(uid + 100)); err != nil || len(foreign) != 0 {
		t.Errorf("Records for another uid: %+v, %v; want none", foreign, err)
	}
	r := recs[0]
	if r.Syscall != "keyctl" || r.Nr != unix.SYS_KEYCTL || r.Action != "kill" || r.UID != uint32(uid) || r.Arch != "amd64" {
		t.Errorf("record %+v: want keyctl (%d), kill, uid %d, amd64", r, unix.SYS_KEYCTL, uid)
	}
}

func TestLogOnly(t *testing.T) {
	prog, err := Default().LogOnly().Compile()
	if err != nil {
		t.Fatal(err)
	}
	cur := openCursor(t)
	uid := testUID + 2
	c := &child{mode: "probe", prog: prog, uid: uid, args: []string{"ptrace", "personality_no_aslr"}}
	c.run(t)
	res := c.results(t)
	// Let through: the kernel answers for itself (there is no such pid),
	// and the persona change happens.
	if res["ptrace"] != unix.ESRCH {
		t.Errorf("ptrace under LogOnly: got %v, want the kernel's own ESRCH", res["ptrace"])
	}
	if res["personality_no_aslr"] != 0 {
		t.Errorf("personality(ADDR_NO_RANDOMIZE) under LogOnly: got %v, want success", res["personality_no_aslr"])
	}
	if !actionLogged(t, "log") {
		t.Skip("kernel does not log SECCOMP_RET_LOG (see /proc/sys/kernel/seccomp/actions_logged)")
	}
	recs, err := cur.Wait(uint32(uid), 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 {
		t.Skip("no seccomp audit record in /dev/kmsg within 3s: an audit daemon may be taking them, or printk rate limiting dropped it")
	}
	t.Logf("record: %+v", recs[0])
	// Both records may not be there yet; wait a little for the second.
	deadline := time.Now().Add(3 * time.Second)
	for len(recs) < 2 && time.Now().Before(deadline) {
		more, err := cur.Wait(uint32(uid), time.Until(deadline))
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, more...)
	}
	var got []string
	for _, r := range recs {
		if r.Action != "log" {
			t.Errorf("record %+v: want action log", r)
		}
		got = append(got, r.Syscall)
	}
	if strings.Join(got, ",") != "ptrace,personality" {
		t.Errorf("logged %v, want [ptrace personality]", got)
	}
}
