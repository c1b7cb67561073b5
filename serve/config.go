package serve

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/sys/unix"

	"github.com/brig-sandbox/brig/audit"
	"github.com/brig-sandbox/brig/cgroup"
	"github.com/brig-sandbox/brig/jail"
)

// MaxConfigBytes caps the config file: it is read whole, and no sane
// config comes near it.
const MaxConfigBytes = 1 << 20

// Defaults of the config.
const (
	DefaultMaxBodyBytes   = 1 << 20 // a JSON request body (PUT of a file has its own cap)
	DefaultMaxFileBytes   = 16 << 20
	DefaultOutputLimit    = 1 << 20 // per stream of one execution, unless the template says
	DefaultQueueWait      = 2 * time.Second
	DefaultIdleTimeout    = 30 * time.Minute
	DefaultMaxLifetime    = 24 * time.Hour
	DefaultDrainGrace     = 10 * time.Second
	DefaultWorkspaceBytes = 64 << 20 // one sandbox's workspace, unless the request says
	DefaultSocketPath     = "/run/brig/brig.sock"
	DefaultStateDir       = "/var/lib/brig"
)

// DefaultQuotas are a tenant's when its config names none (each field
// separately).
var DefaultQuotas = Quotas{
	RequestsPerSecond: 20,
	Burst:             40,
	Concurrent:        4,
	Sandboxes:         8,
	Contexts:          16,
	WorkspaceBytes:    1 << 30,
	WorkspaceInodes:   1 << 20,
}

// Config is the server's configuration, read from YAML by LoadConfig.
type Config struct {
	File      string // the file it was read from, for messages
	StateDir  string
	Listen    []string // unix:PATH or tcp:HOST:PORT
	TLSCert   string
	TLSKey    string
	Tenants   []Tenant
	Templates map[string]Template
	// MaxBodyBytes caps a JSON request body; MaxFileBytes a file's body.
	MaxBodyBytes int64
	MaxFileBytes int64
	// Admission is how many executions (jails starting or running for a
	// request) the host takes at once; QueueWait how long a request waits
	// for a place before a 503.
	Admission int
	QueueWait time.Duration
	Lifecycle Lifecycle
	Audit     AuditConfig
	Metrics   MetricsConfig
}

// Lifecycle bounds the life of sandboxes and of the server's drain.
type Lifecycle struct {
	// IdlePause: a sandbox unused this long has its contexts frozen until
	// its next request (pause.go); 0 means never.
	IdlePause   time.Duration
	IdleTimeout time.Duration // a sandbox unused this long is deleted
	MaxLifetime time.Duration // a sandbox is deleted this long after its creation
	DrainGrace  time.Duration // on SIGTERM, how long running work may finish
}

// Tenant is one client identity.
type Tenant struct {
	Name        string
	TokenSHA256 [32]byte
	Quotas      Quotas
}

// Quotas bound what one tenant may use; they are checked before any jail
// starts.
type Quotas struct {
	RequestsPerSecond float64
	Burst             int
	Concurrent        int   // executions at once
	Sandboxes         int   // live sandboxes
	Contexts          int   // live contexts, over all sandboxes
	WorkspaceBytes    int64 // all live workspaces together
	WorkspaceInodes   int64 // all live workspaces together
}

// Template is a named jail configuration; its limits are the ceilings of
// what a request may ask for.
type Template struct {
	Name string
	Jail jail.Config
	Env  []string
	// Pool is how many jails of the template are kept started for runs.
	Pool int
	// ContextPool is how many Python and how many shell sessions of the
	// template are kept started for new contexts. A pooled context has a
	// private, empty /workspace, not the sandbox's (pool.go).
	ContextPool int
	// WorkspaceBytes and WorkspaceInodes size one sandbox's workspace
	// (its default and its ceiling).
	WorkspaceBytes  int64
	WorkspaceInodes int64
	// RecordCode is what the audit log keeps of the code or command an
	// execution of the template ran (audit.record_code unless the
	// template says).
	RecordCode audit.CodeMode
}

// The file's shape. Every key is known: KnownFields refuses the others.
type fileConfig struct {
	StateDir     string                  `yaml:"state_dir"`
	Listen       []string                `yaml:"listen"`
	TLS          *fileTLS                `yaml:"tls"`
	MaxBodyBytes *sizeValue              `yaml:"max_body_bytes"`
	MaxFileBytes *sizeValue              `yaml:"max_file_bytes"`
	Admission    *fileAdmission          `yaml:"admission"`
	Lifecycle    fileLifecycle           `yaml:"lifecycle"`
	Tenants      []fileTenant            `yaml:"tenants"`
	Templates    map[string]fileTemplate `yaml:"templates"`
	Audit        *fileAudit              `yaml:"audit"`
	Metrics      *fileMetrics            `yaml:"metrics"`
}

type fileTLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

type fileAdmission struct {
	Concurrent int            `yaml:"concurrent"`
	QueueWait  *durationValue `yaml:"queue_wait"`
}

type fileLifecycle struct {
	IdlePause   *durationValue `yaml:"idle_pause"`
	IdleTimeout *durationValue `yaml:"idle_timeout"`
	MaxLifetime *durationValue `yaml:"max_lifetime"`
	DrainGrace  *durationValue `yaml:"drain_grace"`
}

type fileTenant struct {
	Name        string      `yaml:"name"`
	TokenSHA256 string      `yaml:"token_sha256"`
	Quotas      *fileQuotas `yaml:"quotas"`
}

type fileQuotas struct {
	RequestsPerSecond *float64   `yaml:"requests_per_second"`
	Burst             *int       `yaml:"burst"`
	Concurrent        *int       `yaml:"concurrent"`
	Sandboxes         *int       `yaml:"sandboxes"`
	Contexts          *int       `yaml:"contexts"`
	WorkspaceBytes    *sizeValue `yaml:"workspace_bytes"`
	WorkspaceInodes   *int64     `yaml:"workspace_inodes"`
}

// fileTemplate names its keys as brig run's flags do.
type fileTemplate struct {
	Memory          *sizeValue     `yaml:"memory"`
	Pids            *int64         `yaml:"pids"`
	CPUs            *float64       `yaml:"cpus"`
	CPUTime         *durationValue `yaml:"cpu-time"`
	Timeout         *durationValue `yaml:"timeout"`
	OutputLimit     *sizeValue     `yaml:"output-limit"`
	TmpfsSize       *sizeValue     `yaml:"tmpfs-size"`
	Tmpfs           []string       `yaml:"tmpfs"`
	Env             []string       `yaml:"env"`
	Hostname        string         `yaml:"hostname"`
	Limiter         string         `yaml:"limiter"`
	RequireCgroups  bool           `yaml:"require-cgroups"`
	SeccompKill     bool           `yaml:"seccomp-kill"`
	Pool            int            `yaml:"pool"`
	ContextPool     int            `yaml:"context-pool"`
	WorkspaceSize   *sizeValue     `yaml:"workspace-size"`
	WorkspaceInodes *int64         `yaml:"workspace-inodes"`
	RecordCode      string         `yaml:"record_code"`

	// net, allow, allow-preset, deny and the egress caps: serve/egress.go.
	Egress fileTemplateEgress `yaml:",inline"`
}

// sizeValue is a size as the CLI takes it (256M) or a plain number.
type sizeValue struct {
	v    int64
	line int
}

func (s *sizeValue) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a size like 256M", n.Line)
	}
	v, err := ParseSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	s.v, s.line = v, n.Line
	return nil
}

// durationValue is a Go duration, positive.
type durationValue struct {
	v    time.Duration
	line int
}

func (d *durationValue) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a duration like 10s", n.Line)
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	d.v, d.line = v, n.Line
	return nil
}

// LoadConfig reads and checks the config file. Its errors name the file,
// the line and the fix; nothing is guessed.
func LoadConfig(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return ParseConfig(path, data)
}

var yamlLine = regexp.MustCompile(`(?m)^\s*(?:yaml: )?line (\d+): `)

// ParseConfig checks data, the config file's contents; name is the file's
// name for messages.
func ParseConfig(name string, data []byte) (*Config, error) {
	if len(data) > MaxConfigBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes (MaxConfigBytes): is it the right file?", name, MaxConfigBytes)
	}
	var fc fileConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&fc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty; it needs at least tenants: and templates: (see docs/api.md)", name)
		}
		return nil, fmt.Errorf("%s", yamlErrorText(name, err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: more than one YAML document (a second ---); put everything in one", name)
	}
	var root yaml.Node
	_ = yaml.Unmarshal(data, &root) // decoded above, so it parses
	c := &configChecker{name: name, root: &root}
	return c.check(&fc)
}

// yamlErrorText rewrites the YAML library's "line N: ..." as "FILE:N: ...",
// with the fix for an unknown key.
func yamlErrorText(name string, err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n")
	msg = yamlLine.ReplaceAllString(msg, name+":$1: ")
	msg = strings.ReplaceAll(msg, " not found in type serve.file", " is not a key of ")
	if strings.Contains(msg, "is not a key of") {
		msg += " (unknown keys are refused rather than ignored: check the spelling against docs/api.md)"
	}
	if !strings.HasPrefix(msg, name) {
		msg = name + ": " + msg
	}
	return msg
}

type configChecker struct {
	name string
	root *yaml.Node
}

// at is "FILE:LINE" of the node at path (map keys and list indexes), or
// of the nearest parent that exists.
func (c *configChecker) at(path ...string) string {
	n := c.root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, p := range path {
		var next *yaml.Node
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == p {
					line = n.Content[i].Line
					next = n.Content[i+1]
				}
			}
		case yaml.SequenceNode:
			if i, err := strconv.Atoi(p); err == nil && i < len(n.Content) {
				next = n.Content[i]
				line = next.Line
			}
		}
		if next == nil {
			break
		}
		n = next
	}
	return fmt.Sprintf("%s:%d", c.name, line)
}

func (c *configChecker) check(fc *fileConfig) (*Config, error) {
	cfg := &Config{File: c.name, StateDir: fc.StateDir, Listen: fc.Listen, MaxBodyBytes: DefaultMaxBodyBytes, MaxFileBytes: DefaultMaxFileBytes,
		QueueWait: DefaultQueueWait, Templates: map[string]Template{}}
	if cfg.StateDir == "" {
		cfg.StateDir = DefaultStateDir
	}
	if !strings.HasPrefix(cfg.StateDir, "/") {
		return nil, fmt.Errorf("%s: state_dir %q: must be an absolute path, such as %s", c.at("state_dir"), cfg.StateDir, DefaultStateDir)
	}
	for i, l := range fc.Listen {
		if err := checkListen(l); err != nil {
			return nil, fmt.Errorf("%s: %w", c.at("listen", strconv.Itoa(i)), err)
		}
	}
	if t := fc.TLS; t != nil {
		if (t.Cert == "") != (t.Key == "") {
			return nil, fmt.Errorf("%s: tls: give both cert and key (PEM files), or neither", c.at("tls"))
		}
		cfg.TLSCert, cfg.TLSKey = t.Cert, t.Key
	}
	if fc.MaxBodyBytes != nil {
		if fc.MaxBodyBytes.v < 1024 {
			return nil, fmt.Errorf("%s: max_body_bytes: at least 1K (a request body)", c.at("max_body_bytes"))
		}
		cfg.MaxBodyBytes = fc.MaxBodyBytes.v
	}
	if fc.MaxFileBytes != nil {
		cfg.MaxFileBytes = fc.MaxFileBytes.v
	}
	cfg.Admission = defaultAdmission()
	if a := fc.Admission; a != nil {
		if a.Concurrent < 0 {
			return nil, fmt.Errorf("%s: admission.concurrent %d: want a positive number, or leave it out for the host's default (%d here)", c.at("admission", "concurrent"), a.Concurrent, cfg.Admission)
		}
		if a.Concurrent > 0 {
			cfg.Admission = a.Concurrent
		}
		if a.QueueWait != nil {
			cfg.QueueWait = a.QueueWait.v
		}
	}
	lc := fc.Lifecycle
	cfg.Lifecycle = Lifecycle{IdleTimeout: DefaultIdleTimeout, MaxLifetime: DefaultMaxLifetime, DrainGrace: DefaultDrainGrace}
	if lc.IdleTimeout != nil {
		cfg.Lifecycle.IdleTimeout = lc.IdleTimeout.v
	}
	if lc.MaxLifetime != nil {
		cfg.Lifecycle.MaxLifetime = lc.MaxLifetime.v
	}
	if lc.DrainGrace != nil {
		cfg.Lifecycle.DrainGrace = lc.DrainGrace.v
	}
	if lc.IdlePause != nil {
		if lc.IdlePause.v >= cfg.Lifecycle.IdleTimeout {
			return nil, fmt.Errorf("%s: idle_pause %v: at least idle_timeout (%v), so no sandbox would ever be paused; make it shorter, or remove it", c.at("lifecycle", "idle_pause"), lc.IdlePause.v, cfg.Lifecycle.IdleTimeout)
		}
		cfg.Lifecycle.IdlePause = lc.IdlePause.v
	}
	if len(fc.Tenants) == 0 {
		return nil, fmt.Errorf("%s: no tenants: list at least one under tenants: as {name, token_sha256} (brig token prints a token and its token_sha256)", c.at("tenants"))
	}
	names, hashes := map[string]bool{}, map[[32]byte]bool{}
	for i, ft := range fc.Tenants {
		at := func(k ...string) string { return c.at(append([]string{"tenants", strconv.Itoa(i)}, k...)...) }
		if ft.Name == "" || len(ft.Name) > 64 || strings.ContainsAny(ft.Name, "\x00\n/") {
			return nil, fmt.Errorf("%s: tenant name %q: want a short name (1 to 64 bytes, no / or newline)", at("name"), ft.Name)
		}
		if names[ft.Name] {
			return nil, fmt.Errorf("%s: tenant %q given twice; give each tenant one entry", at("name"), ft.Name)
		}
		names[ft.Name] = true
		h, err := parseTokenHash(ft.TokenSHA256)
		if err != nil {
			return nil, fmt.Errorf("%s: tenant %q: %w", at("token_sha256"), ft.Name, err)
		}
		if hashes[h] {
			return nil, fmt.Errorf("%s: tenant %q has the token of another tenant; each tenant needs its own (brig token)", at("token_sha256"), ft.Name)
		}
		hashes[h] = true
		q, err := ft.Quotas.quotas(func(k string) string { return at("quotas", k) })
		if err != nil {
			return nil, err
		}
		cfg.Tenants = append(cfg.Tenants, Tenant{Name: ft.Name, TokenSHA256: h, Quotas: q})
	}
	var err error
	if cfg.Audit, err = c.auditConfig(fc.Audit, cfg.StateDir); err != nil {
		return nil, err
	}
	if cfg.Metrics, err = c.metricsConfig(fc.Metrics); err != nil {
		return nil, err
	}
	if _, ok := fc.Templates["default"]; !ok {
		return nil, fmt.Errorf("%s: templates: no template named default, which requests that name none use; add one (templates: {default: {memory: 512M}})", c.at("templates"))
	}
	for name, ft := range fc.Templates {
		if len(name) > 64 || strings.ContainsAny(name, "\x00\n/") {
			return nil, fmt.Errorf("%s: template name %q: want a short name", c.at("templates", name), name)
		}
		t, err := ft.template(name, func(k string) string { return c.at("templates", name, k) })
		if err != nil {
			return nil, err
		}
		t.RecordCode = cfg.Audit.RecordCode
		if ft.RecordCode != "" {
			if t.RecordCode, err = audit.ParseCodeMode(ft.RecordCode); err != nil {
				return nil, fmt.Errorf("%s: template %s: %w", c.at("templates", name, "record_code"), name, err)
			}
		}
		cfg.Templates[name] = t
	}
	return cfg, nil
}

// defaultAdmission is the host's cap of executions at once: four per CPU,
// and no more than one per 256 MiB of memory.
func defaultAdmission() int {
	n := 4 * runtime.NumCPU()
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		mem := uint64(si.Totalram) * uint64(si.Unit)
		n = min(n, max(1, int(mem/(256<<20))))
	}
	return n
}

func checkListen(l string) error {
	kind, addr, _ := strings.Cut(l, ":")
	switch {
	case kind == "unix" && strings.HasPrefix(addr, "/"):
		return nil
	case kind == "tcp" && strings.Contains(addr, ":"):
		return nil
	}
	return fmt.Errorf("listen %q: want unix:/ABSOLUTE/PATH or tcp:HOST:PORT", l)
}

func (fq *fileQuotas) quotas(at func(string) string) (Quotas, error) {
	q := DefaultQuotas
	if fq == nil {
		return q, nil
	}
	if v := fq.RequestsPerSecond; v != nil {
		if *v <= 0 {
			return q, fmt.Errorf("%s: requests_per_second %v: want a positive number", at("requests_per_second"), *v)
		}
		q.RequestsPerSecond = *v
	}
	ints := []struct {
		key string
		src *int
		dst *int
	}{{"burst", fq.Burst, &q.Burst}, {"concurrent", fq.Concurrent, &q.Concurrent}, {"sandboxes", fq.Sandboxes, &q.Sandboxes}, {"contexts", fq.Contexts, &q.Contexts}}
	for _, i := range ints {
		if i.src == nil {
			continue
		}
		if *i.src < 0 {
			return q, fmt.Errorf("%s: %s %d: want 0 (none allowed) or more", at(i.key), i.key, *i.src)
		}
		*i.dst = *i.src
	}
	if q.Burst < 1 {
		return q, fmt.Errorf("%s: burst %d: want at least 1 (a request needs one token of the bucket)", at("burst"), q.Burst)
	}
	if fq.WorkspaceBytes != nil {
		q.WorkspaceBytes = fq.WorkspaceBytes.v
	}
	if fq.WorkspaceInodes != nil {
		if *fq.WorkspaceInodes < 0 {
			return q, fmt.Errorf("%s: workspace_inodes: want 0 or more", at("workspace_inodes"))
		}
		q.WorkspaceInodes = *fq.WorkspaceInodes
	}
	return q, nil
}

// template turns the file's template into a jail configuration, checked
// as the library checks a Config (a bad one is refused at start, not at
// the first request).
func (ft fileTemplate) template(name string, at func(string) string) (Template, error) {
	t := Template{Name: name, Pool: ft.Pool, WorkspaceBytes: DefaultWorkspaceBytes}
	cfg := &t.Jail
	if ft.Memory != nil {
		cfg.Limits.Memory = ft.Memory.v
	}
	if ft.Pids != nil {
		if *ft.Pids <= 0 {
			return t, fmt.Errorf("%s: pids %d: want a positive whole number", at("pids"), *ft.Pids)
		}
		cfg.Limits.Pids = *ft.Pids
	}
	if ft.CPUs != nil {
		if *ft.CPUs <= 0 {
			return t, fmt.Errorf("%s: cpus %v: want a positive number like 0.5", at("cpus"), *ft.CPUs)
		}
		cfg.Limits.CPUs = *ft.CPUs
	}
	if ft.CPUTime != nil {
		cfg.Limits.CPUTime = ft.CPUTime.v
	}
	cfg.Timeout = jail.DefaultTimeout
	if ft.Timeout != nil {
		cfg.Timeout = ft.Timeout.v
	}
	cfg.OutputLimit = DefaultOutputLimit
	if ft.OutputLimit != nil {
		if ft.OutputLimit.v == 0 || ft.OutputLimit.v > jail.DefaultOutputLimit {
			return t, fmt.Errorf("%s: output-limit: want 1 byte to %dM per stream (the server holds a non-streamed answer's output in memory)", at("output-limit"), jail.DefaultOutputLimit>>20)
		}
		cfg.OutputLimit = ft.OutputLimit.v
	}
	if ft.TmpfsSize != nil {
		cfg.TmpfsSize = ft.TmpfsSize.v
	}
	cfg.Tmpfs = ft.Tmpfs
	cfg.Hostname = ft.Hostname
	if err := ft.Egress.network(&t, at); err != nil {
		return t, err
	}
	limiter := ft.Limiter
	if limiter == "" {
		limiter = "auto"
	}
	switch k := cgroup.Kind(limiter); k {
	case cgroup.Auto, cgroup.Cgroup2, cgroup.Cgroup1, cgroup.RlimitOnly:
		cfg.Limiter = k
	default:
		return t, fmt.Errorf("%s: limiter %q: want auto, cgroup2, cgroup1 or rlimit", at("limiter"), ft.Limiter)
	}
	cfg.RequireCgroups = ft.RequireCgroups
	if ft.SeccompKill {
		cfg.SeccompMode = jail.SeccompKill
	}
	for _, kv := range ft.Env {
		if !strings.Contains(kv, "=") || strings.ContainsRune(kv, 0) {
			return t, fmt.Errorf("%s: env %q: want KEY=VALUE (the server passes nothing of its own environment)", at("env"), kv)
		}
	}
	t.Env = ft.Env
	if ft.Pool < 0 || ft.Pool > 256 {
		return t, fmt.Errorf("%s: pool %d: want 0 to 256 jails kept started", at("pool"), ft.Pool)
	}
	if ft.ContextPool < 0 || ft.ContextPool > 64 {
		return t, fmt.Errorf("%s: context-pool %d: want 0 to 64 sessions of each language kept started", at("context-pool"), ft.ContextPool)
	}
	if ft.ContextPool > 0 && t.Jail.Network == "proxy" {
		return t, fmt.Errorf("%s: context-pool with net: proxy: a proxy template's contexts report their network decisions as their own, so they are started for the context, never pooled; remove context-pool", at("context-pool"))
	}
	t.ContextPool = ft.ContextPool
	if ft.WorkspaceSize != nil {
		t.WorkspaceBytes = ft.WorkspaceSize.v
	}
	if t.WorkspaceBytes < 64<<10 {
		return t, fmt.Errorf("%s: workspace-size: want at least 64K", at("workspace-size"))
	}
	t.WorkspaceInodes = max(1024, t.WorkspaceBytes>>10)
	if ft.WorkspaceInodes != nil {
		if *ft.WorkspaceInodes < 16 {
			return t, fmt.Errorf("%s: workspace-inodes: want at least 16", at("workspace-inodes"))
		}
		t.WorkspaceInodes = *ft.WorkspaceInodes
	}
	if err := checkJailConfig(*cfg); err != nil {
		return t, fmt.Errorf("%s: template %s: %w", at(""), name, err)
	}
	return t, nil
}

// checkJailConfig refuses a template a jail cannot start with, so that a
// bad template stops the server at start rather than failing every
// request: the library's own check (jail.Config.Check).
func checkJailConfig(cfg jail.Config) error { return cfg.Check() }
