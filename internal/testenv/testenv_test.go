package testenv

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestScaled(t *testing.T) {
	t.Setenv("BRIG_TIME_SCALE", "2.5")
	assert.Equal(t, 5*time.Second, Scaled(2*time.Second))
	t.Setenv("BRIG_TIME_SCALE", "nonsense")
	assert.Equal(t, 2*time.Second, Scaled(2*time.Second))
	t.Setenv("BRIG_TIME_SCALE", "-3")
	assert.Equal(t, 2*time.Second, Scaled(2*time.Second))
}
