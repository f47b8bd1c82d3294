package memstore_test

import (
	"testing"

	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/memstore"
	"github.com/mycelsync/mycel/feed/storetest"
)

func TestStorage(t *testing.T) {
	storetest.Run(t, func(t *testing.T) feed.Storage { return memstore.New() })
}
