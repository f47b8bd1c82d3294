package apitest

import (
	"testing"

	"github.com/mycelsync/mycel/node/api"
)

func TestFakeContract(t *testing.T) {
	Contract(t, func(t *testing.T) api.Backend { return New() })
}
