package netlab

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// Wheel is a minimal pure-Python wheel (PEP 427) made by the test: one
// module whose VALUE names it, and the dist-info pip checks.
type Wheel struct {
	Name, Version string
	File          string // name-version-py3-none-any.whl
	Data          []byte
	SHA256        string // hex, for the index's #sha256= fragment
	Value         string // what `import NAME; NAME.VALUE` gives
}

// BuildWheel makes the wheel of a package called name.
func BuildWheel(name, version string) (Wheel, error) {
	w := Wheel{Name: name, Version: version, File: fmt.Sprintf("%s-%s-py3-none-any.whl", name, version)}
	w.Value = fmt.Sprintf("%s %s from the netlab index", name, version)
	info := fmt.Sprintf("%s-%s.dist-info", name, version)
	files := []struct{ path, body string }{
		{name + "/__init__.py", fmt.Sprintf("VALUE = %q\n", w.Value)},
		{info + "/METADATA", fmt.Sprintf("Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: a wheel made by brig's netlab\n", name, version)},
		{info + "/WHEEL", "Wheel-Version: 1.0\nGenerator: brig-netlab\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
	}
	var record strings.Builder
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		fw, err := zw.Create(f.path)
		if err != nil {
			return w, err
		}
		if _, err := fw.Write([]byte(f.body)); err != nil {
			return w, err
		}
		sum := sha256.Sum256([]byte(f.body))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", f.path, base64.RawURLEncoding.EncodeToString(sum[:]), len(f.body))
	}
	fmt.Fprintf(&record, "%s/RECORD,,\n", info)
	fw, err := zw.Create(info + "/RECORD")
	if err != nil {
		return w, err
	}
	if _, err := fw.Write([]byte(record.String())); err != nil {
		return w, err
	}
	if err := zw.Close(); err != nil {
		return w, err
	}
	w.Data = buf.Bytes()
	sum := sha256.Sum256(w.Data)
	w.SHA256 = hex.EncodeToString(sum[:])
	return w, nil
}
