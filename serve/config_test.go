package serve

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brig-sandbox/brig/audit"
)

const goodConfig = `
state_dir: /var/lib/brig
listen: [unix:/run/brig.sock, tcp:127.0.0.1:8080]
max_body_bytes: 64K
lifecycle:
  idle_timeout: 10m
  drain_grace: 3s
tenants:
  - name: alice
    token_sha256: 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
    quotas: {requests_per_second: 5, burst: 10, concurrent: 2, sandboxes: 3, workspace_bytes: 128M}
  - name: bob
    token_sha256: fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9
templates:
  default: {memory: 256M, pids: 64, cpus: 0.5, timeout: 10s, tmpfs-size: 32M, pool: 2}
  big:
    memory: 1G
    timeout: 1m
    env: [LANG=C.UTF-8]
`

func TestParseConfig(t *testing.T) {
	cfg, err := ParseConfig("brig.yaml", []byte(goodConfig))
	require.NoError(t, err)
	assert.Equal(t, "/var/lib/brig", cfg.StateDir)
	assert.Equal(t, int64(64<<10), cfg.MaxBodyBytes)
	assert.Equal(t, 10*time.Minute, cfg.Lifecycle.IdleTimeout)
	assert.Equal(t, DefaultMaxLifetime, cfg.Lifecycle.MaxLifetime)
	require.Len(t, cfg.Tenants, 2)
	assert.Equal(t, 2, cfg.Tenants[0].Quotas.Concurrent)
	assert.Equal(t, int64(128<<20), cfg.Tenants[0].Quotas.WorkspaceBytes)
	assert.Equal(t, DefaultQuotas.Contexts, cfg.Tenants[0].Quotas.Contexts, "an unnamed quota takes its default")
	assert.Equal(t, DefaultQuotas, cfg.Tenants[1].Quotas, "a tenant without quotas gets the defaults")
	def := cfg.Templates["default"]
	assert.Equal(t, int64(256<<20), def.Jail.Limits.Memory)
	assert.Equal(t, int64(64), def.Jail.Limits.Pids)
	assert.Equal(t, 10*time.Second, def.Jail.Timeout)
	assert.Equal(t, int64(32<<20), def.Jail.TmpfsSize)
	assert.Equal(t, 2, def.Pool)
	assert.Equal(t, []string{"LANG=C.UTF-8"}, cfg.Templates["big"].Env)
}

// Every config error names the file, the line and the fix.
func TestParseConfigErrors(t *testing.T) {
	good := strings.Split(goodConfig, "\n")
	edit := func(line int, text string) string {
		l := append([]string(nil), good...)
		l[line-1] = text
		return strings.Join(l, "\n")
	}
	for _, tc := range []struct {
		name, config, want string
	}{
		{"unknown top key", edit(2, "state_dri: /x"), "brig.yaml:2: field state_dri is not a key of"},
		{"unknown template key", edit(15, "  default: {memroy: 256M}"), "brig.yaml:15: field memroy"},
		{"unknown quota key", edit(11, "    quotas: {rps: 5}"), "brig.yaml:11: field rps"},
		{"bad size", edit(15, "  default: {memory: lots}"), `brig.yaml:15: size "lots"`},
		{"bad duration", edit(6, "  idle_timeout: soon"), `brig.yaml:6: duration "soon"`},
		{"bad hash", edit(10, "    token_sha256: hunter2"), "brig.yaml:10: tenant \"alice\": token_sha256"},
		{"same token", edit(13, "    token_sha256: 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"), "brig.yaml:13: tenant \"bob\" has the token of another"},
		{"no default template", edit(15, "  small: {memory: 256M}"), "no template named default"},
		{"idle pause past idle timeout", edit(6, "  idle_pause: 10h"), "brig.yaml:6: idle_pause 10h0m0s: at least idle_timeout"},
		{"tiny memory", edit(15, "  default: {memory: 1K}"), "brig.yaml:15"},
		{"context pool too big", edit(15, "  default: {context-pool: 100}"), "brig.yaml:15: context-pool 100: want 0 to 64"},
		{"context pool of a proxy template", edit(15, "  default: {net: proxy, allow: [pypi.org], context-pool: 2}"), "brig.yaml:15: context-pool with net: proxy"},
		{"bad listener", edit(3, "listen: [http://x]"), "brig.yaml:3: listen \"http://x\""},
		{"two documents", goodConfig + "\n---\nstate_dir: /x\n", "more than one YAML document"},
		{"duplicate key", edit(2, "max_body_bytes: 1M"), "brig.yaml:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig("brig.yaml", []byte(tc.config))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	_, err := ParseConfig("brig.yaml", []byte(strings.Repeat("#", MaxConfigBytes+1)))
	assert.ErrorContains(t, err, "MaxConfigBytes")
}

const observedConfig = goodConfig + `  hashed: {memory: 256M, record_code: none}
audit:
  path: /var/log/brig/audit.log
  record_code: sha256
  fsync: always
  max_bytes: 64M
  keep: 10
  on_failure: warn
metrics: {listen: tcp:127.0.0.1:9464, token_sha256: 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae}
`

func TestParseConfigAuditAndMetrics(t *testing.T) {
	cfg, err := ParseConfig("brig.yaml", []byte(goodConfig))
	require.NoError(t, err)
	assert.Equal(t, AuditConfig{Path: "/var/lib/brig/audit.log", RecordCode: audit.CodeFull, Fsync: audit.FsyncInterval}, cfg.Audit,
		"without audit:, a log in state_dir with the safe defaults")
	assert.Equal(t, MetricsConfig{}, cfg.Metrics, "without metrics:, no metrics listener")
	assert.Equal(t, audit.CodeFull, cfg.Templates["default"].RecordCode)

	cfg, err = ParseConfig("brig.yaml", []byte(observedConfig))
	require.NoError(t, err)
	assert.Equal(t, AuditConfig{Path: "/var/log/brig/audit.log", RecordCode: audit.CodeSHA256, Fsync: audit.FsyncAlways, MaxBytes: 64 << 20, Keep: 10, Warn: true}, cfg.Audit)
	assert.Equal(t, audit.CodeSHA256, cfg.Templates["default"].RecordCode, "a template takes audit.record_code")
	assert.Equal(t, audit.CodeNone, cfg.Templates["hashed"].RecordCode, "a template's record_code overrides it")
	assert.Equal(t, "tcp:127.0.0.1:9464", cfg.Metrics.Listen)
	require.NotNil(t, cfg.Metrics.TokenSHA256)
	assert.Equal(t, hashToken("foo"), *cfg.Metrics.TokenSHA256)

	cfg, err = ParseConfig("brig.yaml", []byte(goodConfig+"audit: {path: none}\n"))
	require.NoError(t, err)
	assert.Empty(t, cfg.Audit.Path, "path: none keeps no audit log")

	lines := strings.Count(goodConfig, "\n")
	for _, tc := range []struct{ name, tail, want string }{
		{"unknown audit key", "audit: {fsnyc: always}\n", fmt.Sprintf("brig.yaml:%d: field fsnyc is not a key of", lines+1)},
		{"relative path", "audit: {path: audit.log}\n", fmt.Sprintf("brig.yaml:%d: audit.path \"audit.log\": want an absolute path", lines+1)},
		{"bad record_code", "audit: {record_code: some}\n", "record_code \"some\": want full, sha256 or none"},
		{"bad fsync", "audit: {fsync: sometimes}\n", "fsync \"sometimes\": want always, interval or never"},
		{"small max_bytes", "audit: {max_bytes: 1K}\n", "audit.max_bytes 1024: want 0 (never rotate) or at least 257K"},
		{"negative keep", "audit: {keep: -1}\n", "audit.keep -1"},
		{"bad on_failure", "audit: {on_failure: ignore}\n", "audit.on_failure \"ignore\": want refuse"},
		{"bad template record_code", "", ""},
		{"unix metrics", "metrics: {listen: unix:/run/m.sock}\n", fmt.Sprintf("brig.yaml:%d: metrics.listen \"unix:/run/m.sock\": want tcp:HOST:PORT", lines+1)},
		{"metrics token in clear", "metrics: {listen: tcp:127.0.0.1:9464, token_sha256: hunter2}\n", "metrics: token_sha256"},
		{"unknown metrics key", "metrics: {listen: tcp:127.0.0.1:9464, token: x}\n", "field token is not a key of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := goodConfig + tc.tail
			if tc.tail == "" {
				text = goodConfig + "  odd: {record_code: all}\n"
				tc.want = fmt.Sprintf("brig.yaml:%d: template odd: audit: record_code \"all\"", lines+1)
			}
			_, err := ParseConfig("brig.yaml", []byte(text))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestNewToken(t *testing.T) {
	tok, sum := NewToken()
	h, err := parseTokenHash(sum)
	require.NoError(t, err)
	assert.Equal(t, h, hashToken(tok))
	tok2, _ := NewToken()
	assert.NotEqual(t, tok, tok2)
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(goodConfig))
	f.Add([]byte("tenants: [{name: a}]\ntemplates: {default: {}}"))
	f.Add([]byte("templates: {default: {memory: [1]}}"))
	f.Add([]byte(observedConfig))
	f.Add([]byte("tenants: [{name: a}]\ntemplates: {default: {record_code: sha256}}\naudit: {path: none, max_bytes: 1M}\nmetrics: {listen: tcp:[::1]:1}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig("f.yaml", data)
		if err == nil {
			if len(cfg.Tenants) == 0 {
				t.Fatal("a config without tenants was taken")
			}
			if _, ok := cfg.Templates["default"]; !ok {
				t.Fatal("a config without a default template was taken")
			}
			return
		}
		if !strings.HasPrefix(err.Error(), "f.yaml") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}
