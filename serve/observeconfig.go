package serve

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/brig-sandbox/brig/audit"
)

// AuditConfig is the config's audit: section (docs/audit.md).
type AuditConfig struct {
	// Path is the log's file; "" when the config says path: none (no
	// audit log: every loosening is explicit).
	Path       string
	RecordCode audit.CodeMode // a template's record_code overrides it
	Fsync      audit.Fsync
	MaxBytes   int64
	Keep       int
	// Warn, from on_failure: warn, lets work go on, with a warning logged,
	// when the log cannot be written; by default (refuse) executions are
	// answered 503 audit_unavailable instead of running unaudited.
	Warn bool
}

// MetricsConfig is the config's metrics: section (docs/observability.md).
type MetricsConfig struct {
	Listen      string // tcp:HOST:PORT; "" serves no metrics
	TokenSHA256 *[32]byte
}

// DefaultAuditFile is the audit log's name in state_dir when the config
// names no path.
const DefaultAuditFile = "audit.log"

// minAuditMaxBytes is the smallest max_bytes: a file must hold a whole
// record of the largest size.
const minAuditMaxBytes = audit.MaxLineBytes + 1

type fileAudit struct {
	Path       *string    `yaml:"path"`
	RecordCode string     `yaml:"record_code"`
	Fsync      string     `yaml:"fsync"`
	MaxBytes   *sizeValue `yaml:"max_bytes"`
	Keep       *int       `yaml:"keep"`
	OnFailure  string     `yaml:"on_failure"`
}

type fileMetrics struct {
	Listen      string `yaml:"listen"`
	TokenSHA256 string `yaml:"token_sha256"`
}

// auditConfig checks the audit: section; with none the log is
// STATE_DIR/audit.log with the defaults.
func (c *configChecker) auditConfig(fa *fileAudit, stateDir string) (AuditConfig, error) {
	a := AuditConfig{Path: filepath.Join(stateDir, DefaultAuditFile), RecordCode: audit.CodeFull, Fsync: audit.FsyncInterval}
	if fa == nil {
		return a, nil
	}
	at := func(k string) string { return c.at("audit", k) }
	if fa.Path != nil {
		switch p := *fa.Path; {
		case p == "none":
			a.Path = ""
		case !strings.HasPrefix(p, "/"):
			return a, fmt.Errorf("%s: audit.path %q: want an absolute path (default %s), or none to keep no audit log", at("path"), p, filepath.Join(stateDir, DefaultAuditFile))
		default:
			a.Path = filepath.Clean(p)
		}
	}
	var err error
	if a.RecordCode, err = audit.ParseCodeMode(fa.RecordCode); err != nil {
		return a, fmt.Errorf("%s: %w", at("record_code"), err)
	}
	if a.Fsync, err = audit.ParseFsync(fa.Fsync); err != nil {
		return a, fmt.Errorf("%s: %w", at("fsync"), err)
	}
	if fa.MaxBytes != nil {
		if fa.MaxBytes.v != 0 && fa.MaxBytes.v < minAuditMaxBytes {
			return a, fmt.Errorf("%s: audit.max_bytes %d: want 0 (never rotate) or at least 257K (one record's cap, audit.MaxLineBytes, and more)", at("max_bytes"), fa.MaxBytes.v)
		}
		a.MaxBytes = fa.MaxBytes.v
	}
	if fa.Keep != nil {
		if *fa.Keep < 0 {
			return a, fmt.Errorf("%s: audit.keep %d: want 0 (keep every rotated file) or more", at("keep"), *fa.Keep)
		}
		a.Keep = *fa.Keep
	}
	switch fa.OnFailure {
	case "", "refuse":
	case "warn":
		a.Warn = true
	default:
		return a, fmt.Errorf("%s: audit.on_failure %q: want refuse (the default: no execution runs unaudited) or warn (log a warning and go on)", at("on_failure"), fa.OnFailure)
	}
	return a, nil
}

func (c *configChecker) metricsConfig(fm *fileMetrics) (MetricsConfig, error) {
	var m MetricsConfig
	if fm == nil {
		return m, nil
	}
	kind, addr, _ := strings.Cut(fm.Listen, ":")
	if kind != "tcp" || !strings.Contains(addr, ":") {
		return m, fmt.Errorf("%s: metrics.listen %q: want tcp:HOST:PORT, such as tcp:127.0.0.1:9464 (a listener apart from the API's)", c.at("metrics", "listen"), fm.Listen)
	}
	m.Listen = fm.Listen
	if fm.TokenSHA256 != "" {
		h, err := parseTokenHash(fm.TokenSHA256)
		if err != nil {
			return m, fmt.Errorf("%s: metrics: %w", c.at("metrics", "token_sha256"), err)
		}
		m.TokenSHA256 = &h
	}
	return m, nil
}
