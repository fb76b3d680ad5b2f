package cgroups

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	v1OOMControl = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"
	v2MemEvents  = "low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n"
)

func TestParseOOMKill(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     uint64
		wantErr  bool
	}{
		{name: "v1 memory.oom_control", in: v1OOMControl, want: 3},
		{name: "v2 memory.events", in: v2MemEvents, want: 2},
		{name: "zero", in: "oom_kill 0", want: 0},
		{name: "old kernel", in: "oom_kill_disable 0\nunder_oom 0\n", wantErr: true},
		{name: "garbage", in: "oom_kill many\n", wantErr: true},
		{name: "no value", in: "oom_kill\n", wantErr: true},
		{name: "empty", in: "", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := ParseOOMKill(strings.NewReader(tc.in))
			if tc.wantErr {
				require.Error(t, err)
				assert.True(t, strings.HasPrefix(err.Error(), "cgroups: "), err.Error())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, n)
		})
	}
}

func TestParseLimit(t *testing.T) {
	for in, want := range map[string]uint64{
		"max\n":                 0,
		"9223372036854771712\n": 0, // v1 "no limit"
		"-1":                    0,
		"16777216\n":            16 << 20,
		"0":                     0,
	} {
		got, err := parseLimit(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	_, err := parseLimit("lots")
	require.Error(t, err)
}

// v1MemoryStat is a trimmed memory.stat of a cgroup v1 leaf.
const v1MemoryStat = `cache 4096
rss 1048576
rss_huge 0
shmem 0
mapped_file 8192
swap 0
pgfault 300
pgmajfault 2
inactive_anon 1040000
active_anon 8576
inactive_file 4096
active_file 0
unevictable 0
hierarchical_memory_limit 16777216
hierarchical_memsw_limit 16777216
total_cache 8192
total_rss 2097152
total_mapped_file 16384
total_swap 0
total_pgfault 600
total_pgmajfault 4
total_inactive_anon 2080000
total_active_anon 17152
total_inactive_file 8192
total_active_file 0
total_unevictable 0
`

func TestV1MemoryCounters(t *testing.T) {
	m, err := parseFlatKeyed(strings.NewReader(v1MemoryStat))
	require.NoError(t, err)
	assert.Equal(t, MemoryCounters{
		Cache: 4096, RSS: 1 << 20, MappedFile: 8192, PgFault: 300, PgMajFault: 2,
		InactiveAnon: 1040000, ActiveAnon: 8576, InactiveFile: 4096,
	}, v1MemoryCounters(m, ""))
	assert.Equal(t, MemoryCounters{
		Cache: 8192, RSS: 2 << 20, MappedFile: 16384, PgFault: 600, PgMajFault: 4,
		InactiveAnon: 2080000, ActiveAnon: 17152, InactiveFile: 8192,
	}, v1MemoryCounters(m, "total_"))
	assert.Equal(t, uint64(16777216), m["hierarchical_memory_limit"])
}

func TestV1CPUTicks(t *testing.T) {
	m, err := parseFlatKeyed(strings.NewReader("user 150\nsystem 25\n"))
	require.NoError(t, err)
	user, sys := v1CPUTicks(m)
	assert.Equal(t, uint64(1_500_000_000), user)
	assert.Equal(t, uint64(250_000_000), sys)
}

func TestParseFlatKeyedErrors(t *testing.T) {
	for _, in := range []string{"novalue\n", "key -1\n", "key 1 2\n"} {
		_, err := parseFlatKeyed(strings.NewReader(in))
		assert.Error(t, err, "%q", in)
	}
	m, err := parseFlatKeyed(strings.NewReader("\n a 1 \n\nb 2"))
	require.NoError(t, err)
	assert.Equal(t, map[string]uint64{"a": 1, "b": 2}, m)
}

func TestModeString(t *testing.T) {
	assert.Equal(t, "unavailable", Unavailable.String())
	assert.Equal(t, "legacy", Legacy.String())
	assert.Equal(t, "unified", Unified.String())
	assert.Equal(t, "Mode(7)", Mode(7).String())
}
