package jail

import "os"

// A jail's helper and init are this same binary started again under a
// marker argv[0]. Dispatching from a package init function means a program
// that imports jail needs no line in main at all, and a forgotten call can
// never make the helper run the embedding program's main.
func init() {
	if len(os.Args) == 0 {
		return
	}
	switch os.Args[0] {
	case helperArg0:
		runHelper()
	case initArg0:
		runInit()
	}
}
