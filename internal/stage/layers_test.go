package stage

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// cLayers ranks the C files (stage.h explains the layers): a file may
// include only headers of a lower rank, its own header, and, in the
// concern layer, another concern's header. cgo's
// -Werror=implicit-function-declaration (execstage.go) makes a call
// without its header's include a build error, so the includes are the
// calls: they only go down. A C file added to the package must be ranked
// here.
var cLayers = map[string]int{
	"stage.h": 0, // constants and wire structs
	"base":    1, // failures, events, fd reads
	"wire":    2, // the spec and request readers
	// The isolation concerns, each with a parent- and a child-side entry.
	"user": 3, "cgroup": 3, "mount": 3, "net": 3, "ipc": 3, "tty": 3, "proxy": 3,
	"pid": 3, "signals": 3, "rlimit": 3, "caps": 3, "seccomp": 3,
	// The stages: recipes that call the concerns in order.
	"execstage": 4,
	"init":      5,
	"helper":    6,
	"spawner":   7,
	"stage.c":   8, // the dispatch on argv[0]
}

const concernRank = 3

var quotedInclude = regexp.MustCompile(`^\s*#\s*include\s+"([^"]+)"`)

// unit is a C file's place in cLayers: stage.h and stage.c are ranked
// apart, every other pair by their shared name.
func unit(file string) string {
	if file == "stage.h" || file == "stage.c" {
		return file
	}
	return strings.TrimSuffix(strings.TrimSuffix(file, ".c"), ".h")
}

// cIncludes maps every .c and .h file of the package to the headers it
// includes with quotes.
func cIncludes(t *testing.T) map[string][]string {
	t.Helper()
	files, err := filepath.Glob("*.[ch]")
	if err != nil || len(files) == 0 {
		t.Fatalf("no C files found here (%v)", err)
	}
	out := map[string][]string{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		out[f] = nil
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			if m := quotedInclude.FindStringSubmatch(sc.Text()); m != nil {
				out[f] = append(out[f], m[1])
			}
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestCIncludesGoDown holds the C to its layers: every file ranked, no
// include of a higher layer (a concern never reaches a stage, the bottom
// never a concern), each .c including its own header, and no cycle.
func TestCIncludesGoDown(t *testing.T) {
	incs := cIncludes(t)
	edges := map[string][]string{}
	for file, headers := range incs {
		from := unit(file)
		rank, ok := cLayers[from]
		if !ok {
			t.Errorf("%s is not ranked in cLayers: say which layer it belongs to", file)
			continue
		}
		own := strings.TrimSuffix(file, ".c") + ".h"
		if strings.HasSuffix(file, ".c") && incs[own] != nil && !contains(headers, own) {
			t.Errorf("%s does not include its own header %s", file, own)
		}
		for _, h := range headers {
			if _, exists := incs[h]; !exists {
				t.Errorf("%s includes %s, which is not in the package", file, h)
				continue
			}
			to := unit(h)
			if to == from {
				continue
			}
			hrank, ok := cLayers[to]
			if !ok {
				continue // reported as unranked above
			}
			if hrank > rank || (hrank == rank && rank != concernRank) {
				t.Errorf("%s (layer %d) includes %s (layer %d): calls must go down", file, rank, h, hrank)
			}
			edges[from] = append(edges[from], to)
		}
	}
	if cycle := findCycle(edges); cycle != nil {
		t.Errorf("include cycle: %s", strings.Join(cycle, " → "))
	}
}

// findCycle returns one cycle of the graph, or nil.
func findCycle(edges map[string][]string) []string {
	const (
		unseen = iota
		open
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(n string) []string
	visit = func(n string) []string {
		state[n] = open
		stack = append(stack, n)
		for _, m := range edges[n] {
			switch state[m] {
			case open:
				i := len(stack) - 1
				for stack[i] != m {
					i--
				}
				return append(append([]string{}, stack[i:]...), m)
			case unseen:
				if c := visit(m); c != nil {
					return c
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
		return nil
	}
	nodes := make([]string, 0, len(edges))
	for n := range edges {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	for _, n := range nodes {
		if state[n] == unseen {
			if c := visit(n); c != nil {
				return c
			}
		}
	}
	return nil
}

func contains(v []string, s string) bool {
	for _, x := range v {
		if x == s {
			return true
		}
	}
	return false
}

// TestFindCycle: the checker itself finds a cycle between concerns (which
// the layers allow to include each other) and passes a chain.
func TestFindCycle(t *testing.T) {
	if c := findCycle(map[string][]string{"user": {"base"}, "ipc": {"user"}, "mount": {"user", "base"}}); c != nil {
		t.Errorf("a chain reported as a cycle: %v", c)
	}
	c := findCycle(map[string][]string{"user": {"mount"}, "mount": {"ipc"}, "ipc": {"user"}})
	if len(c) != 4 || c[0] != c[3] {
		t.Errorf("cycle not found: %v", c)
	}
}
