package main

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/paaskit/paaskit/staging"
)

func TestSampleConfig(t *testing.T) {
	b, err := os.ReadFile("stager.yml")
	require.NoError(t, err)
	c, err := ParseConfig(b)
	require.NoError(t, err)
	assert.Equal(t, []string{"staging"}, c.Queues)
	assert.Equal(t, 4, c.Workers)
	assert.Equal(t, 15*time.Minute, c.MaxStagingDuration)
	assert.True(t, c.Stacks["cflinuxfs"].Host)
	assert.Equal(t, int64(1024), c.Container.MemoryMB)
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml string }{
		{"no work dir", "stacks: {s: {rootfs: /x}}"},
		{"no stacks", "work_dir: /tmp/x"},
		{"unknown default stack", "work_dir: /tmp/x\nstacks: {s: {rootfs: /x}}\ndefault_stack: t"},
		{"not yaml", "work_dir: [\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.yaml))
			assert.ErrorIs(t, err, ErrInvalidConfig)
		})
	}
}

func TestDecodeRequest(t *testing.T) {
	k, _, v1, _, err := decodeRequest([]byte(`{"app_id": 12, "download_uri": "http://cc/a", "upload_uri": "http://cc/b",
		"properties": {"framework_info": {"name": "standalone"}, "meta": {"command": "./run"}}}`))
	require.NoError(t, err)
	assert.Equal(t, kindV1, k)
	assert.Equal(t, FlexString("12"), v1.AppID)
	k, id, _, dea, err := decodeRequest([]byte(`{"app_id": "g", "task_id": "t", "download_uri": "http://cc/a", "upload_uri": "http://cc/b", "properties": {}}`))
	require.NoError(t, err)
	assert.Equal(t, kindDEA, k)
	assert.Equal(t, "t", id)
	assert.Equal(t, "g", dea.AppID)
	assert.Equal(t, "./run", startCommand([]byte(`{"command": "./run"}`)))
	assert.Equal(t, ErrTypeTimeout, errType(&staging.Error{Code: staging.CodeStagingFailed, Err: staging.ErrTimeout}))
	assert.Equal(t, ErrTypeNoAppDetected, errType(&staging.Error{Code: staging.CodeNoAppDetected, Err: staging.ErrNoAppDetected}))
	assert.Equal(t, ErrTypeBusy, errType(ErrBusy))
	assert.Equal(t, ErrTypeStagingError, errType(errors.New("other")))
}
