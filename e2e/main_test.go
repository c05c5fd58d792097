package e2e

import (
	"testing"

	"github.com/flatstore/flatstore/internal/fbtest"
)

// TestMain removes the harness build directory (plugin .so and host) when the
// end-to-end tests end. One TestMain serves every test file of this package.
func TestMain(m *testing.M) { fbtest.Main(m) }
