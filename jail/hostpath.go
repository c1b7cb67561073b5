package jail

import (
	"errors"

	"github.com/brig-sandbox/brig/internal/supervisor"
)

// ResolveHostPath resolves an absolute host path as a bind source is
// resolved (see Bind): one component at a time, following only symlinks
// that root owns, or any when followSymlinks; a symlink of anyone else's is
// a *SymlinkError. It is for callers that open paths as root in places a
// jail may have written (a writable bind), as brig run's --result file. The
// path returned holds no symlink: open it with RESOLVE_NO_SYMLINKS.
func ResolveHostPath(path string, followSymlinks bool) (string, error) {
	p, err := supervisor.ResolveHostPath(path, followSymlinks)
	var sym *supervisor.SymlinkError
	switch {
	case err == nil:
	case errors.As(err, &sym) && error(sym) == err:
		err = (*SymlinkError)(sym)
	case errors.As(err, &sym):
		err = &symlinkCause{err: err, sym: (*SymlinkError)(sym)}
	}
	return p, err
}

// SymlinkError is a bind source that passes through a symlink brig will not
// follow on its own: one that someone other than root owns.
type SymlinkError struct {
	Path   string // the source as the caller gave it
	Link   string // the symlink, resolved up to it
	Target string // what it points to
	UID    uint32 // its owner on the host
}

func (e *SymlinkError) Error() string { return (*supervisor.SymlinkError)(e).Error() }
