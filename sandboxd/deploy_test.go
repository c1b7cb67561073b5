package sandboxd

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// yamlDocs reads the YAML documents of a file as JSON values.
func yamlDocs(t testing.TB, file string) []map[string]any {
	t.Helper()
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var docs []map[string]any
	for {
		var v any
		if err := dec.Decode(&v); err != nil {
			require.ErrorContains(t, err, "EOF", file)
			break
		}
		if v == nil {
			continue
		}
		b, err := json.Marshal(v)
		require.NoError(t, err, file)
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m), file)
		docs = append(docs, m)
	}
	return docs
}

// crdSchemas loads the structural schema of every CRD that ships in the
// agent-sandbox module (k8s/crds), by apiVersion and kind.
func crdSchemas(t testing.TB) map[string]*openapi3.Schema {
	out := map[string]*openapi3.Schema{}
	files, err := filepath.Glob(filepath.Join(agentSandboxDir(t), "k8s/crds/*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		for _, crd := range yamlDocs(t, file) {
			spec := crd["spec"].(map[string]any)
			group := spec["group"].(string)
			kind := spec["names"].(map[string]any)["kind"].(string)
			for _, v := range spec["versions"].([]any) {
				v := v.(map[string]any)
				raw, err := json.Marshal(v["schema"].(map[string]any)["openAPIV3Schema"])
				require.NoError(t, err)
				var s openapi3.Schema
				require.NoError(t, json.Unmarshal(raw, &s), file)
				out[group+"/"+v["name"].(string)+" "+kind] = &s
			}
		}
	}
	return out
}

// unknownFields lists the fields of v that schema s does not declare: the
// API server would prune them silently (or refuse them under strict field
// validation), so a typo in a manifest would do nothing.
func unknownFields(s *openapi3.Schema, v any, at string) []string {
	if s == nil {
		return nil
	}
	if p, ok := s.Extensions["x-kubernetes-preserve-unknown-fields"]; ok && p == true {
		return nil
	}
	var out []string
	switch v := v.(type) {
	case map[string]any:
		if len(s.Properties) == 0 {
			if s.AdditionalProperties.Schema != nil {
				for k, e := range v {
					out = append(out, unknownFields(s.AdditionalProperties.Schema.Value, e, at+"."+k)...)
				}
			}
			return out // an object the CRD leaves open (metadata, a map)
		}
		for k, e := range v {
			ps, ok := s.Properties[k]
			if !ok {
				out = append(out, at+"."+k)
				continue
			}
			out = append(out, unknownFields(ps.Value, e, at+"."+k)...)
		}
	case []any:
		if s.Items != nil {
			for i, e := range v {
				out = append(out, unknownFields(s.Items.Value, e, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	}
	sort.Strings(out)
	return out
}

// TestManifestsMatchTheCRDs: every manifest in deploy/kubernetes is of a
// kind the agent-sandbox CRDs define, valid against its schema (types,
// enums, required fields, formats) and without a field the schema does
// not know; the template runs brig serve --sandboxd.
func TestManifestsMatchTheCRDs(t *testing.T) {
	schemas := crdSchemas(t)
	files, err := filepath.Glob("../deploy/kubernetes/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	kinds := map[string]bool{}
	for _, file := range files {
		for _, doc := range yamlDocs(t, file) {
			key := doc["apiVersion"].(string) + " " + doc["kind"].(string)
			s, ok := schemas[key]
			require.True(t, ok, "%s: %s is not a kind of agent-sandbox's CRDs", file, key)
			require.NoError(t, s.VisitJSON(doc, openapi3.EnableFormatValidation()), "%s: %s", file, key)
			assert.Empty(t, unknownFields(s, doc, doc["kind"].(string)), "%s: fields the CRD does not know", file)
			kinds[doc["kind"].(string)] = true
			if doc["kind"] == "SandboxTemplate" {
				b, _ := json.Marshal(doc)
				assert.Contains(t, string(b), `"args":["serve","--sandboxd"`, "%s runs brig serve --sandboxd", file)
				assert.Contains(t, string(b), `"hostUsers":false`)
				assert.Contains(t, string(b), `"procMount":"Unmasked"`)
				assert.Contains(t, string(b), `"appArmorProfile":{"type":"Unconfined"}`)
			}
		}
	}
	assert.True(t, kinds["SandboxTemplate"] && kinds["SandboxWarmPool"], "a SandboxTemplate and a SandboxWarmPool: %v", kinds)

	// The check itself fails where it must: a typo and a wrong type.
	s := schemas["extensions.agents.x-k8s.io/v1beta1 SandboxWarmPool"]
	bad := map[string]any{"apiVersion": "extensions.agents.x-k8s.io/v1beta1", "kind": "SandboxWarmPool",
		"spec": map[string]any{"replica": 2.0, "sandboxTemplateRef": map[string]any{"name": "x"}}}
	assert.Equal(t, []string{"SandboxWarmPool.spec.replica"}, unknownFields(s, bad, "SandboxWarmPool"))
	bad["spec"] = map[string]any{"replicas": "two", "sandboxTemplateRef": map[string]any{"name": "x"}}
	assert.Error(t, s.VisitJSON(bad))
	bad["spec"] = map[string]any{"replicas": 2.0}
	assert.Error(t, s.VisitJSON(bad), "sandboxTemplateRef is required")
}

// TestContainerfile: the image recipe builds from Debian with python3 and
// the static brig of make build, and runs brig serve --sandboxd. (No
// network here to build it: the file is checked, not built.)
func TestContainerfile(t *testing.T) {
	b, err := os.ReadFile("../contrib/Containerfile")
	require.NoError(t, err)
	s := string(b)
	for _, want := range []string{"FROM docker.io/library/debian:", "python3", "COPY build/brig /usr/local/bin/brig",
		`ENTRYPOINT ["/usr/local/bin/brig"]`, `"serve", "--sandboxd"`, "chown 1000:1000 /workspace"} {
		assert.Contains(t, s, want)
	}
	assert.False(t, strings.Contains(s, "curl") || strings.Contains(s, "wget"), "nothing fetched outside Debian's packages")
}
