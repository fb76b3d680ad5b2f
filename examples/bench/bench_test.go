package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/paaskit/paaskit/container"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	if container.Init() {
		return
	}
	os.Exit(m.Run())
}

func ptr(v float64) *float64 { return &v }

func TestPercentile(t *testing.T) {
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(100 - i) // 100..1, unsorted
	}
	tests := []struct {
		name    string
		samples []float64
		p, want float64
	}{
		{"one sample", []float64{7}, 90, 7},
		{"median of odd", []float64{3, 1, 2}, 50, 2},
		{"median of even interpolates", []float64{4, 1, 3, 2}, 50, 2.5},
		{"p90 interpolates", []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 90, 9.1},
		{"p0 is min", []float64{5, 3, 9}, 0, 3},
		{"p100 is max", []float64{5, 3, 9}, 100, 9},
		{"p50 of 1..100", hundred, 50, 50.5},
		{"p90 of 1..100", hundred, 90, 90.1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			orig := append([]float64(nil), tc.samples...)
			got, err := percentile(tc.samples, tc.p)
			require.NoError(t, err)
			assert.InDelta(t, tc.want, got, 1e-9)
			assert.Equal(t, orig, tc.samples, "samples are not modified")
		})
	}
}

func TestPercentileErrors(t *testing.T) {
	_, err := percentile(nil, 50)
	assert.Error(t, err)
	_, err = percentile([]float64{1}, 101)
	assert.Error(t, err)
	_, err = percentile([]float64{1}, -1)
	assert.Error(t, err)
}

func TestRatio(t *testing.T) {
	tests := []struct {
		name string
		a, b *float64
		want *float64
	}{
		{"both measured", ptr(1.2), ptr(4.8), ptr(0.25)},
		{"numerator n/a", nil, ptr(4.8), nil},
		{"denominator n/a", ptr(1.2), nil, nil},
		{"both n/a", nil, nil, nil},
		{"zero denominator", ptr(1), ptr(0), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ratio(tc.a, tc.b)
			if tc.want == nil {
				assert.Nil(t, got)
				return
			}
			require.NotNil(t, got)
			assert.InDelta(t, *tc.want, *got, 1e-9)
		})
	}
}

// sampleReport is a report with a measured figure, an n/a one, a ratio
// derived from an n/a figure, and a count.
func sampleReport(log *bytes.Buffer) *report {
	r := &report{log: log}
	r.add("container.lifecycle.p50", 5.123, "ms")
	r.addNA("container.lifecycle.crun.p50", "ms", "crun", errors.New("cgroups: hybrid mode unsupported"))
	r.add("container.lifecycle.runc.p50", 21.3, "ms")
	r.addMaybe("container.lifecycle.vs_runc", ratio(r.value("container.lifecycle.p50"), r.value("container.lifecycle.runc.p50")), "ratio")
	r.addMaybe("container.lifecycle.vs_crun", ratio(r.value("container.lifecycle.p50"), r.value("container.lifecycle.crun.p50")), "ratio")
	r.add("container.scale.leftovers", 0, "count")
	return r
}

func TestWriteText(t *testing.T) {
	var log, out bytes.Buffer
	r := sampleReport(&log)
	require.NoError(t, r.write(&out, false))
	assert.Equal(t, `BENCH container.lifecycle.p50 5.12 ms
BENCH container.lifecycle.crun.p50 n/a ms
BENCH container.lifecycle.runc.p50 21.30 ms
BENCH container.lifecycle.vs_runc 0.24 ratio
BENCH container.lifecycle.vs_crun n/a ratio
BENCH container.scale.leftovers 0 count
`, out.String())
	assert.Equal(t, "# crun: cgroups: hybrid mode unsupported\n", log.String(), "one comment, for the n/a with a reason")
}

func TestWriteJSON(t *testing.T) {
	var log, out bytes.Buffer
	r := sampleReport(&log)
	require.NoError(t, r.write(&out, true))
	var got []map[string]any
	require.NoError(t, json.Unmarshal(out.Bytes(), &got), out.String())
	want := []map[string]any{
		{"name": "container.lifecycle.p50", "value": 5.12, "unit": "ms"},
		{"name": "container.lifecycle.crun.p50", "value": nil, "unit": "ms"},
		{"name": "container.lifecycle.runc.p50", "value": 21.3, "unit": "ms"},
		{"name": "container.lifecycle.vs_runc", "value": 0.24, "unit": "ratio"},
		{"name": "container.lifecycle.vs_crun", "value": nil, "unit": "ratio"},
		{"name": "container.scale.leftovers", "value": 0.0, "unit": "count"},
	}
	assert.Equal(t, want, got)
	assert.Contains(t, out.String(), `"value": null`)
}

func TestWriteEmpty(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, (&report{}).write(&out, true))
	assert.Equal(t, "[]\n", out.String())
}

func TestParsePSS(t *testing.T) {
	in := `55d0c8a1e000-7ffd4b5f2000 ---p 00000000 00:00 0                      [rollup]
Rss:                7420 kB
Pss:                2291 kB
Pss_Anon:           1912 kB
`
	kb, err := parsePSS(strings.NewReader(in))
	require.NoError(t, err)
	assert.EqualValues(t, 2291, kb)

	_, err = parsePSS(strings.NewReader("Rss: 1 kB\n"))
	assert.Error(t, err)
}

func TestCountLinesContaining(t *testing.T) {
	in := "36 25 0:32 / /tmp/depot/containers/a/rootfs rw - overlay overlay rw\n" +
		"37 25 0:33 / /proc rw - proc proc rw\n" +
		"38 25 0:34 / /x rw - overlay overlay rw,lowerdir=/s,upperdir=/tmp/depot/containers/b/upper\n"
	n, err := countLinesContaining(strings.NewReader(in), "/tmp/depot")
	require.NoError(t, err)
	assert.Equal(t, 2, n)
}

func TestOCISpec(t *testing.T) {
	s := ociSpec("/stack", []string{"/bin/true"}, "/paaskit-bench-1-oci/x")
	assert.Equal(t, []string{"/bin/true"}, s.Process.Args)
	assert.False(t, s.Process.Terminal)
	assert.True(t, s.Root.Readonly)
	assert.Equal(t, "/stack", s.Root.Path)
	assert.Equal(t, "/paaskit-bench-1-oci/x", s.Linux.CgroupsPath)
	var ns []string
	for _, n := range s.Linux.Namespaces {
		ns = append(ns, string(n.Type))
	}
	assert.ElementsMatch(t, []string{"pid", "mount", "ipc", "uts", "network"}, ns)
}

func TestSuiteSelection(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		code    int
		wantErr string
	}{
		{"not implemented alone", []string{"-suite", "push"}, 2, "suite push not implemented yet\n"},
		{"unknown", []string{"-suite", "nope"}, 2, `bench: unknown suite "nope"`},
		{"bad n", []string{"-n", "0"}, 2, "must be at least 1"},
		{"extra args", []string{"container"}, 2, "unexpected arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			assert.Equal(t, tc.code, run(tc.args, &out, &errb))
			assert.Contains(t, errb.String(), tc.wantErr)
			assert.Empty(t, out.String())
		})
	}
}
