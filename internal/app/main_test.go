package app

import (
	"os"
	"testing"

	"github.com/freshen-io/freshen/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopShared()
	os.Exit(code)
}
