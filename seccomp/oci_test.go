package seccomp

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var update = flag.Bool("update", false, "rewrite testdata/seccomp/brig-default.json from Default()")

const defaultProfile = "../testdata/seccomp/brig-default.json"

func defaultOCIJSON(t *testing.T) []byte {
	t.Helper()
	data, err := json.MarshalIndent(Default().OCI(), "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	return append(data, '\n')
}

// TestCheckedInProfile keeps the shipped OCI profile in step with Default().
// After changing the default policy: go test ./seccomp -run TestCheckedInProfile -update
func TestCheckedInProfile(t *testing.T) {
	want := defaultOCIJSON(t)
	if *update {
		if err := os.WriteFile(defaultProfile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(defaultProfile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from Default().OCI(); regenerate with -update", defaultProfile)
	}
}

// TestOCIFileRefusals: the shipped profile, loaded back, refuses exactly
// what Default() refuses, down to the byte of the compiled program.
func TestOCIFileRefusals(t *testing.T) {
	p, err := LoadOCIFile(defaultProfile)
	if err != nil {
		t.Fatal(err)
	}
	prog, err := p.Compile()
	if err != nil {
		t.Fatal(err)
	}
	want, err := Default().Compile()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(prog, want) {
		t.Errorf("program from %s differs from Default()'s", defaultProfile)
	}
	checkProbes(t, prog)
}

// withoutComments drops what OCI cannot carry.
func withoutComments(p *Policy) *Policy {
	q := p.Clone()
	for i := range q.Rules {
		q.Rules[i].Comment = ""
	}
	return q
}

func TestOCIRoundTrip(t *testing.T) {
	for name, p := range map[string]*Policy{
		"default": Default(),
		"kill":    Default().KillOnRefusal(),
		"log":     Default().LogOnly(),
		"ops": {DefaultAction: ActAllow, Rules: []Rule{
			{Names: []string{"a"}, Action: ActErrno, Errno: 13, Args: []Arg{{Index: 0, Op: OpEqual, Value: 1}}},
			{Names: []string{"b"}, Action: ActTrap, Args: []Arg{{Index: 1, Op: OpNotEqual, Value: 2}, {Index: 2, Op: OpLess, Value: 3}}},
			{Names: []string{"c"}, Action: ActKill, Args: []Arg{{Index: 3, Op: OpLessEqual, Value: 4}, {Index: 4, Op: OpGreater, Value: 5}}},
			{Names: []string{"d"}, Action: ActLog, Args: []Arg{{Index: 5, Op: OpGreaterEqual, Value: 6}, {Index: 0, Op: OpMaskedEqual, Mask: 0xff, Value: 7}}},
		}},
	} {
		t.Run(name, func(t *testing.T) {
			data, err := json.Marshal(p.OCI())
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseOCI(data)
			if err != nil {
				t.Fatal(err)
			}
			// Errno 0 means EPERM in Policy; OCI spells it out.
			want := withoutComments(p)
			for i := range want.Rules {
				if want.Rules[i].Action == ActErrno && want.Rules[i].Errno == 0 {
					want.Rules[i].Errno = eperm
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round trip changed the policy:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestParseOCIMaskedEqualOrder: in OCI, as in libseccomp, the mask comes
// first (Docker's clone rule: value 2114060288 = CLONE_NEW* mask).
func TestParseOCIMaskedEqualOrder(t *testing.T) {
	p, err := ParseOCI([]byte(`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
		{"names":["clone"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Arg{Index: 0, Op: OpMaskedEqual, Mask: 2114060288, Value: 0}
	if got := p.Rules[0].Args[0]; got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if p.DefaultErrno != eperm {
		t.Errorf("default errno %d, want EPERM when defaultErrnoRet is absent", p.DefaultErrno)
	}
}

// TestParseOCIDockerConditions: Docker's includes/excludes are resolved for
// a jail with no capabilities on this architecture and kernel.
func TestParseOCIDockerConditions(t *testing.T) {
	other := "s390x"
	if strings.HasPrefix(os.Getenv("GOARCH"), "s390") {
		other = "riscv64"
	}
	p, err := ParseOCI([]byte(`{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,"syscalls":[
		{"names":["read"],"action":"SCMP_ACT_ALLOW"},
		{"names":["mount"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}},
		{"names":["arch_only"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["` + other + `"]}},
		{"names":["not_here"],"action":"SCMP_ACT_ALLOW","excludes":{"arches":["` + nativeGOARCH() + `"]}},
		{"names":["old_kernel"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"4.8"}},
		{"names":["future_kernel"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"99.0"}},
		{"names":["no_caps_needed"],"action":"SCMP_ACT_ALLOW","excludes":{"caps":["CAP_SYS_ADMIN"]}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range p.Rules {
		names = append(names, r.Names...)
	}
	if got, want := strings.Join(names, ","), "read,old_kernel,no_caps_needed"; got != want {
		t.Errorf("kept rules %s, want %s", got, want)
	}
}

func TestParseOCIErrors(t *testing.T) {
	for name, profile := range map[string]string{
		"not json":         `{`,
		"no action":        `{"syscalls":[]}`,
		"unknown action":   `{"defaultAction":"SCMP_ACT_EXPLODE"}`,
		"notify":           `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_NOTIFY"}]}`,
		"trace":            `{"defaultAction":"SCMP_ACT_TRACE"}`,
		"bad operator":     `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_LIKE"}]}]}`,
		"bad index":        `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}`,
		"errno too large":  `{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":5000}`,
		"errno zero":       `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","errnoRet":0}]}`,
		"no names":         `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":[],"action":"SCMP_ACT_ERRNO"}]}`,
		"same arg twice":   `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_GT"},{"index":0,"value":9,"op":"SCMP_CMP_LT"}]}]}`,
		"syscalls is text": `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":"read"}`,
	} {
		if _, err := ParseOCI([]byte(profile)); err == nil {
			t.Errorf("%s: ParseOCI accepted %s", name, profile)
		}
	}
	if _, err := LoadOCIFile("/nonexistent/profile.json"); err == nil {
		t.Error("LoadOCIFile of a missing file succeeded")
	}
}

func TestOCIExportShape(t *testing.T) {
	o := Default().OCI()
	if o.DefaultAction != specs.ActErrno || o.DefaultErrnoRet == nil || *o.DefaultErrnoRet != enosys {
		t.Errorf("default %s/%v, want SCMP_ACT_ERRNO with ENOSYS", o.DefaultAction, o.DefaultErrnoRet)
	}
	if len(o.Architectures) != 0 {
		t.Errorf("architectures %v: want none (native only)", o.Architectures)
	}
	k := Default().KillOnRefusal().OCI()
	if k.DefaultAction != specs.ActKillProcess {
		t.Errorf("KillOnRefusal default %s, want SCMP_ACT_KILL_PROCESS", k.DefaultAction)
	}
}

// FuzzParseOCI: no input may make the parser (or the exporter, or the
// compiler on what the parser accepts) panic.
func FuzzParseOCI(f *testing.F) {
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}`))
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ALLOW","defaultErrnoRet":1,"syscalls":[{"names":["ioctl"],"action":"SCMP_ACT_ERRNO","errnoRet":1,"args":[{"index":1,"value":4294967295,"valueTwo":21522,"op":"SCMP_CMP_MASKED_EQ"}]}]}`))
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_KILL","syscalls":[{"names":["x"],"action":"SCMP_ACT_LOG","includes":{"minKernel":"5.x","caps":[]},"excludes":{"arches":["amd64"]}}]}`))
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_TRAP","syscalls":[{"names":["clone"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_NE"},{"index":1,"value":2,"op":"SCMP_CMP_LE"}]}]}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"syscalls":[null,{"names":null}]}`))
	// Not the 43 KB shipped profile: the fuzzer spends its time minimising
	// inputs that large. The corpus seeds cover its constructs.
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseOCI(data)
		if err != nil {
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("ParseOCI returned an invalid policy: %v", err)
		}
		if _, err := json.Marshal(p.OCI()); err != nil {
			t.Fatalf("OCI export: %v", err)
		}
		// compile, not Compile: the fuzzer's policies must not fill the cache.
		if len(p.Rules) < 64 {
			compile(p)
		}
	})
}

func nativeGOARCH() string { return runtime.GOARCH }
