package ephemeral_test

import (
	"testing"

	"github.com/mycelsync/mycel/ephemeral"
	"github.com/mycelsync/mycel/ephemeral/seenstoretest"
)

func TestMemSeenStore(t *testing.T) {
	seenstoretest.Run(t, func(t *testing.T) (ephemeral.SeenStore, func() ephemeral.SeenStore) {
		s := ephemeral.NewMemSeenStore()
		return s, func() ephemeral.SeenStore { return s }
	})
}
