package seccomp

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseKmsgRecord(t *testing.T) {
	for _, tc := range []struct {
		line string
		want Record
		ok   bool
	}{
		{
			`5,471,890247323,-;audit: type=1326 audit(1795316712.606:2): auid=4294967295 uid=61001 gid=61001 ses=4294967295 pid=15861 comm="seccomp.test" exe="/tmp/x/seccomp.test" sig=31 arch=c000003e syscall=250 compat=0 ip=0x40c1ce code=0x80000000`,
			Record{PID: 15861, UID: 61001, Comm: "seccomp.test", Syscall: "keyctl", Nr: 250, Arch: "amd64", Action: "kill"}, true,
		},
		{
			// comm with a space is hex-encoded by audit; LOG action; subj present.
			`5,472,890259059,-;audit: type=1326 audit(1795316712.618:3): auid=4294967295 uid=0 gid=0 ses=4294967295 subj=unconfined pid=7 comm=6D7920707974686F6E exe="/usr/bin/python3.11" sig=0 arch=c000003e syscall=170 compat=0 ip=0x7f0 code=0x7ffc0000` + "\n SUBSYSTEM=x\n",
			Record{PID: 7, UID: 0, Comm: "my python", Syscall: "sethostname", Nr: 170, Arch: "amd64", Action: "log"}, true,
		},
		{
			// i386 call: arch 40000003, getpid is 20 in that table.
			`5,1,2,-;audit: type=1326 audit(1.2:3): auid=1 uid=5 gid=5 ses=1 pid=9 comm="a" exe="/a" sig=31 arch=40000003 syscall=20 compat=1 ip=0x1 code=0x80000000`,
			Record{PID: 9, UID: 5, Comm: "a", Syscall: "getpid", Nr: 20, Arch: "x86", Action: "kill"}, true,
		},
		{
			// errno with its value in the low bits.
			`5,1,2,-;audit: type=1326 audit(1.2:3): auid=1 uid=5 gid=5 ses=1 pid=9 comm="a" exe="/a" sig=0 arch=c000003e syscall=39 compat=0 ip=0x1 code=0x50001`,
			Record{PID: 9, UID: 5, Comm: "a", Syscall: "getpid", Nr: 39, Arch: "amd64", Action: "errno", Errno: 1}, true,
		},
		{`6,2,3,-;eth0: link up`, Record{}, false},
		{`5,3,4,-;audit: type=1400 audit(1.2:3): apparmor="DENIED"`, Record{}, false},
		{`garbage`, Record{}, false},
		{`5,1,2,-;audit: type=1326 audit(1.2:3): uid=x pid=1 syscall=1`, Record{}, false},
	} {
		got, ok := parseKmsgRecord(tc.line)
		if ok != tc.ok || got != tc.want {
			t.Errorf("parse %q:\n got %+v %v\nwant %+v %v", tc.line, got, ok, tc.want, tc.ok)
		}
	}
}

func TestSyscallName(t *testing.T) {
	if got := SyscallName(unix.SYS_GETPID); got != "getpid" {
		t.Errorf("SyscallName(SYS_GETPID) = %q", got)
	}
	if got := SyscallName(99999); got != "syscall_99999" {
		t.Errorf("SyscallName(99999) = %q", got)
	}
}
