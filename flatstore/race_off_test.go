//go:build !race

package flatstore_test

const raceEnabled = false
