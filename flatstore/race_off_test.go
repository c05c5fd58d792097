//go:build !race

package flatstore

const raceEnabled = false
