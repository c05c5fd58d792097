//go:build race

package flatstore_test

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// allocation counts that rely on the pool mean nothing under -race.
const raceEnabled = true
