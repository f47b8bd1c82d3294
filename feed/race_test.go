//go:build race

package feed

// raceEnabled: the race detector's runtime allocates more per object,
// so tests that bound allocations allow for it.
const raceEnabled = true
