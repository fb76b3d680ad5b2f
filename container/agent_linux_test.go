package container

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCopyCapped(t *testing.T) {
	var out bytes.Buffer
	dropped := copyCapped(&out, strings.NewReader(strings.Repeat("x", 100)), 10, nil)
	assert.Equal(t, int64(90), dropped)
	assert.Equal(t, strings.Repeat("x", 10)+"\n[paaskit: output limit of 10 bytes reached; the rest is dropped]\n", out.String())

	out.Reset()
	assert.Zero(t, copyCapped(&out, strings.NewReader("short"), 10, nil))
	assert.Equal(t, "short", out.String())

	out.Reset()
	assert.Zero(t, copyCapped(&out, strings.NewReader(strings.Repeat("y", 1<<20)), 0, nil), "no cap")
	assert.Equal(t, 1<<20, out.Len())
}

func TestMergeEnvLaterWins(t *testing.T) {
	got := mergeEnv([]string{"PATH=/bin", "HOME=/"}, []string{"A=1", "HOME=/home/vcap"}, []string{"A=2"})
	assert.Equal(t, []string{"PATH=/bin", "HOME=/home/vcap", "A=2"}, got)
	assert.Equal(t, "2", envValue(got, "A"))
	assert.Equal(t, "", envValue(got, "MISSING"))
}
