package serve

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/brig-sandbox/brig/session"
)

// Files of a workspace, from the host. Jailed code controls the
// workspace and may plant symlinks, FIFOs and directories in it, so every
// path is resolved with openat2 beneath the workspace with
// RESOLVE_BENEATH, RESOLVE_NO_SYMLINKS and RESOLVE_NO_MAGICLINKS, opened
// with O_NONBLOCK, and checked to be a regular file (or a directory, to
// list or remove) on the descriptor, never by path again: the library's
// session.ReadFileIn, ListDirIn, StatIn, WriteFileIn and RemoveIn do it
// (engine.go calls them). Writes and removals are made as the workspace's
// owner, so the jails (idmapped to that owner) can change what a client
// put. Here: the API's paths and errors.

// MaxPathBytes caps a file path of the API.
const MaxPathBytes = 4096

// cleanPath checks a workspace path of a request: relative, no "..", no
// NUL, shorter than MaxPathBytes. "" is the workspace itself.
func cleanPath(p string) (string, *apiError) {
	if len(p) > MaxPathBytes {
		return "", errorf(400, "bad_path", "path longer than %d bytes", MaxPathBytes)
	}
	if strings.ContainsRune(p, 0) {
		return "", errorf(400, "bad_path", "path contains a NUL byte")
	}
	if strings.HasPrefix(p, "/") {
		return "", errorf(400, "bad_path", "path %q: absolute; paths are relative to the workspace (/workspace in the jail)", p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return "", errorf(400, "bad_path", "path %q: contains \"..\"; paths stay beneath the workspace", p)
		}
	}
	c := path.Clean(p)
	if c == "." {
		c = ""
	}
	return c, nil
}

// errNotRegular says what a path that is not a file is.
var errNotRegular = errors.New("not a regular file or directory (a FIFO, socket or device the jail made)")

// fileError turns a file operation's failure into the API's answer.
func fileError(p string, err error) *apiError {
	switch {
	case errors.Is(err, unix.ENOENT):
		return errorf(404, "not_found", "%s: no such file in the workspace", p)
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.EXDEV):
		return errorf(400, "symlink_refused", "%s: a symlink on the way; the server follows none in a workspace", p)
	case errors.Is(err, session.ErrNotRegular), errors.Is(err, unix.ENXIO):
		return errorf(400, "not_a_file", "%s: %v", p, errNotRegular)
	case errors.Is(err, unix.EISDIR):
		return errorf(409, "is_a_directory", "%s: a directory", p)
	case errors.Is(err, unix.ENOTDIR):
		return errorf(409, "not_a_directory", "%s: a part of the path is not a directory", p)
	case errors.Is(err, unix.ENOTEMPTY):
		return errorf(409, "directory_not_empty", "%s: a directory that is not empty; remove what is in it first", p)
	case errors.Is(err, unix.ENOSPC):
		return &apiError{status: 507, code: "workspace_full", quota: "workspace_bytes", message: fmt.Sprintf("%s: the workspace is full (its byte or inode quota)", p)}
	case errors.Is(err, session.ErrFileTooLarge):
		return errorf(400, "body_too_large", "%s: larger than max_file_bytes", p)
	case errors.Is(err, unix.EWOULDBLOCK):
		return errorf(409, "locked", "%s: the jail holds a lease on it", p)
	}
	if strings.Contains(err.Error(), "larger than the") {
		return errorf(400, "file_too_large", "%v", err)
	}
	if strings.Contains(err.Error(), "not a regular file") || strings.Contains(err.Error(), "not a directory") {
		return errorf(400, "not_a_file", "%v", err)
	}
	return errorf(500, "internal", "%s: %v", p, err)
}
