package audit

import (
	"path/filepath"
	"testing"
)

// BenchmarkAppend is the cost of a record (a run with its code, verdict
// and outputs) under each fsync setting.
func BenchmarkAppend(b *testing.B) {
	for _, fs := range []Fsync{FsyncInterval, FsyncNever, FsyncAlways} {
		b.Run("fsync="+string(fs), func(b *testing.B) {
			l, err := Open(filepath.Join(b.TempDir(), "audit.log"), Options{Fsync: fs})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			r := sample(0)
			b.ReportAllocs()
			for b.Loop() {
				if err := l.Append(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
