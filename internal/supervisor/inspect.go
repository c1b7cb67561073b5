package supervisor

import (
	"os"
	"time"

	"github.com/brig-sandbox/brig/cgroup"
	"github.com/brig-sandbox/brig/internal/stage"
	"golang.org/x/sys/unix"
)

// What package jail's tests look at and turn in the runtime they drive
// through the public API: the spawner, the templates, a jail's limiter and
// host ids, and the hooks that make a step fail on purpose. The package is
// internal, so no program outside brig can reach any of it; brig's own
// programs do not (the import rules let only jail and session import
// this package).

// FromTemplate reports whether the jail's root was cloned from a root
// template.
func (c *Instance) FromTemplate() bool { return c.fromTemplate }

// Limiter is the jail's limiter.
func (c *Instance) Limiter() cgroup.Limiter { return c.limiter }

// HostIDs are the host ids of the jail's init and of its user.
func (c *Instance) HostIDs() (init, jail uint32) { return c.lease.Init, c.lease.Jail }

// StartPrepared starts the jail with its spec built before the helper
// starts, as a pooled jail's is (never joining its cgroups later), after
// edit has changed the spec.
func (c *Instance) StartPrepared(edit func(*stage.Spec)) error {
	c.start = time.Now()
	s, err := c.buildSpec(false)
	if err != nil {
		return err
	}
	edit(s)
	if err := c.startHelper(s); err != nil {
		return err
	}
	return c.awaitStart()
}

// CloseControl closes the jail's control pipe, as a supervisor that dies
// does.
func (c *Instance) CloseControl() error { return c.control.Close() }

// WarmSpawner starts the spawner in the background.
func (s *Supervisor) WarmSpawner() { s.warmSpawner() }

// SpawnerPid is the running spawner's pid, or 0.
func (s *Supervisor) SpawnerPid() int {
	spawner := &s.spawner
	spawner.mu.Lock()
	defer spawner.mu.Unlock()
	if spawner.conn == nil {
		return 0
	}
	return spawner.pid
}

// BuildTemplateNow builds the root template of the plan's jails in the
// caller's goroutine.
func (s *Supervisor) BuildTemplateNow(p Plan) error { return s.buildTemplateNow(p) }

// ErrTemplateUnsupported is BuildTemplateNow's error on a kernel that
// cannot clone a detached mount tree.
var ErrTemplateUnsupported = errTemplateUnsupported

// TemplateUses counts the jails started from a template, process-wide.
func TemplateUses() int64 { return templateUses.Load() }

// TemplatesOpen counts the templates whose fd is open, process-wide.
func TemplatesOpen() int64 { return templatesOpen.Load() }

// OwnTemplatesOpen counts the supervisor's templates whose fd is open.
func (s *Supervisor) OwnTemplatesOpen() int64 { return s.templatesOpen.Load() }

// TemplatesUnsupported reports whether the supervisor found that the
// kernel cannot build templates.
func (s *Supervisor) TemplatesUnsupported() bool {
	s.templates.Lock()
	defer s.templates.Unlock()
	return s.templates.unsupported
}

// TemplateFailures lists why the supervisor's template builds failed, one
// per key that failed.
func (s *Supervisor) TemplateFailures() []error {
	s.templates.Lock()
	defer s.templates.Unlock()
	var errs []error
	for _, st := range s.templates.byKey {
		if st.err != nil {
			errs = append(errs, st.err)
		}
	}
	return errs
}

// TemplatesForgotten reports whether the supervisor holds no template
// (none built, or Close).
func (s *Supervisor) TemplatesForgotten() bool {
	s.templates.Lock()
	defer s.templates.Unlock()
	return s.templates.byKey == nil
}

// CurrentTemplate is the fd of the supervisor's current template of
// jails with no binds or tmpfs paths, or nil.
func (s *Supervisor) CurrentTemplate(workDir, hostname string) *os.File {
	s.templates.Lock()
	defer s.templates.Unlock()
	st := s.templates.byKey[templateKey{workDir, hostname, ""}]
	if st == nil || st.current == nil {
		return nil
	}
	return st.current.fd
}

// SetTemplatesEnabled turns templates off (and on again) process-wide.
func SetTemplatesEnabled(on bool) { templatesEnabled.Store(on) }

// TemplateKey is what a jail's template is chosen by.
type TemplateKey = templateKey

// TemplateKeyOf is the key of the template a jail of p in dir would use,
// or false when none may serve it.
func TemplateKeyOf(p *Plan, dir string) (TemplateKey, bool) { return templateKeyOf(p, dir) }

// ResolveBindSource resolves a bind source as the runtime does.
func ResolveBindSource(path string, followAny bool) (string, unix.Stat_t, error) {
	return resolveBindSource(path, followAny)
}

// SetAfterBindsResolved sets (nil: clears) a function called with the
// mounts once the binds are resolved, before the helper gets them.
func SetAfterBindsResolved(f func([]stage.Mount)) { testAfterBindsResolved = f }

// SetNewLimiter replaces cgroup.New as the maker of jails' limiters (nil:
// cgroup.New again).
func SetNewLimiter(f func(cgroup.Limits, cgroup.Options) (cgroup.Limiter, error)) {
	if f == nil {
		f = cgroup.New
	}
	newLimiter = f
}

// ColdCgroupOptions are the cgroup options of a first cold jail of the
// zero plan.
func ColdCgroupOptions() cgroup.Options { return (&Instance{sup: New()}).cgroupOptions(true) }

// SystemMounts are the system mounts as the supervisor resolves them for
// a jail without a template; fresh sets aside the ones it keeps for a
// second.
func (s *Supervisor) SystemMounts(fresh bool) ([]stage.Mount, error) {
	if fresh {
		s.system.Lock()
		s.system.mounts = nil
		s.system.Unlock()
	}
	return s.systemMounts()
}

// EtcFiles are the host's /etc files every jail gets.
func EtcFiles() []string { return append([]string(nil), etcFiles...) }

// ReadyInitPID is the host pid of the init of the pool's next ready jail,
// or 0.
func (p *Pool) ReadyInitPID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.ready) == 0 {
		return 0
	}
	return p.ready[0].initPid
}

// IPCSysctls are the SysV IPC limits of a jail of the memory limit.
func IPCSysctls(memory int64) []string { return ipcSysctls(memory) }

// RootOwn is brig's own part of the root of a jail that starts in dir
// with hostname, as rootfs.go describes it.
func RootOwn(dir, hostname string) []stage.Mount { return rootOwn(dir, hostname) }
