package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
)

// cliHandler writes brig's own log records as the rest of brig's messages
// look: one line each on brig's stderr, prefixed "brig:", with no time or
// level, and only from minLevel up, so a program's stderr (which a jail
// shares with brig's) carries a line of brig's only when it matters.
type cliHandler struct {
	mu       *sync.Mutex
	w        io.Writer
	minLevel slog.Level
	attrs    []slog.Attr
}

func newCLIHandler(w io.Writer, minLevel slog.Level) *cliHandler {
	return &cliHandler{mu: &sync.Mutex{}, w: w, minLevel: minLevel}
}

func (h *cliHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.minLevel }

func (h *cliHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString("brig: ")
	// The library's messages name their package ("jail: ..."); the prefix
	// already says whose line it is.
	msg := strings.TrimPrefix(strings.TrimPrefix(r.Message, "jail: "), "brig: ")
	b.WriteString(strings.ReplaceAll(msg, "\n", " "))
	write := func(a slog.Attr) bool {
		if a.Equal(slog.Attr{}) {
			return true
		}
		fmt.Fprintf(&b, " %s=%s", a.Key, strings.ReplaceAll(a.Value.String(), "\n", " "))
		return true
	}
	for _, a := range h.attrs {
		write(a)
	}
	r.Attrs(write)
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *cliHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &c
}

// WithGroup is not used by brig's packages; attributes stay flat.
func (h *cliHandler) WithGroup(string) slog.Handler { return h }

// setLogging sends brig's log records to stderr as cliHandler lines
// (warnings and errors), or nowhere when quiet.
func setLogging(w io.Writer, quiet bool) {
	if quiet {
		slog.SetDefault(slog.New(slog.DiscardHandler))
		return
	}
	slog.SetDefault(slog.New(newCLIHandler(w, slog.LevelWarn)))
}
