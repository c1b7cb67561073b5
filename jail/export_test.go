package jail

// For the tests of package jail_test (the hostile corpus and the soak, which
// use internal/hostile/apirun and so cannot be inside package jail).
var (
	BuildBrig     = buildBrig
	HostileIDs    = hostileIDs
	RequirePython = requirePython
)
