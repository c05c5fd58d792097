package filestore

import (
	"time"
)

// Status describes one event file, as the control endpoint reports it.
type Status struct {
	Path string `json:"path"`
	Open bool   `json:"open"`
	// Moved is true when reopen_check found the path moved or removed
	// without a rotate call, until the next rotate call.
	Moved        bool      `json:"moved,omitempty"`
	Lines        uint64    `json:"lines"`
	Bytes        uint64    `json:"bytes"`
	LastRotation time.Time `json:"last_rotation,omitzero"`
	LastReason   string    `json:"last_rotation_reason,omitempty"`
}
