//go:build race

package flatstore

// raceEnabled: under the race detector sync.Pool drops a quarter of what
// it is given, so a flush sometimes builds its state anew.
const raceEnabled = true
