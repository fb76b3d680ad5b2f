package cgroups

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResourcesValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		r      Resources
		fields []string // fields reported, in order; none means valid
	}{
		{name: "zero", r: Resources{}},
		{name: "typical", r: Resources{MemoryLimit: 256 << 20, CPUShares: 1024, PidsMax: 1024, Devices: true}},
		{name: "bounds", r: Resources{MemoryLimit: MinMemoryLimit, CPUShares: MinCPUShares}},
		{name: "max shares", r: Resources{CPUShares: MaxCPUShares}},
		{name: "negative memory", r: Resources{MemoryLimit: -1}, fields: []string{"MemoryLimit"}},
		{name: "tiny memory", r: Resources{MemoryLimit: MinMemoryLimit - 1}, fields: []string{"MemoryLimit"}},
		{name: "shares too low", r: Resources{CPUShares: 1}, fields: []string{"CPUShares"}},
		{name: "shares too high", r: Resources{CPUShares: MaxCPUShares + 1}, fields: []string{"CPUShares"}},
		{name: "shares huge", r: Resources{CPUShares: 1 << 63}, fields: []string{"CPUShares"}},
		{name: "negative pids", r: Resources{PidsMax: -5}, fields: []string{"PidsMax"}},
		{name: "all bad", r: Resources{MemoryLimit: 1, CPUShares: 1, PidsMax: -1}, fields: []string{"MemoryLimit", "CPUShares", "PidsMax"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.r.Validate()
			if len(tc.fields) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalid)
			var got []string
			for _, e := range unjoin(err) {
				var re *ResourceError
				require.ErrorAs(t, e, &re)
				got = append(got, re.Field)
				assert.Contains(t, re.Error(), "cgroups: invalid "+re.Field)
			}
			assert.Equal(t, tc.fields, got)
		})
	}
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestSharesToWeight(t *testing.T) {
	for _, tc := range []struct{ shares, weight uint64 }{
		{0, 0}, // unset stays unset
		{1, 1}, // below the v1 range: clamped
		{2, 1},
		{3, 2},
		{512, 59},
		{1024, 100}, // the defaults map onto each other
		{2048, 174},
		{262143, 10000},
		{262144, 10000},
		{1 << 40, 10000},
	} {
		assert.Equal(t, tc.weight, sharesToWeight(tc.shares), "shares %d", tc.shares)
	}
	prev := uint64(0)
	for s := uint64(2); s <= MaxCPUShares; s += 97 {
		w := sharesToWeight(s)
		require.GreaterOrEqual(t, w, prev, "monotonic at %d", s)
		require.LessOrEqual(t, w, uint64(10000))
		prev = w
	}
}

func TestCleanPath(t *testing.T) {
	for in, want := range map[string]string{
		"/paaskit/h1":   "/paaskit/h1",
		"paaskit/h1":    "/paaskit/h1",
		"//paaskit/h1/": "/paaskit/h1",
		"/a/./b":        "/a/b",
	} {
		got, err := cleanPath(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "/", "..", "/a/../b", "/a/..", "."} {
		_, err := cleanPath(in)
		assert.True(t, errors.Is(err, ErrInvalid), "%q: %v", in, err)
	}
}
