//go:build race

package main

// raceEnabled: the race detector's shadow memory multiplies a process's
// resident memory, so peak RSS bounds mean nothing under -race.
const raceEnabled = true
