package seccomp

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/bpf"
)

// run runs prog on a seccomp_data in the VM of x/net/bpf, which loads
// words big-endian: the data is laid out so, and the argument halves are
// placed where argOffsets says the kernel finds them.
func run(t *testing.T, prog []bpf.RawInstruction, arch, nr uint32, args ...uint64) uint32 {
	t.Helper()
	ins, ok := bpf.Disassemble(prog)
	require.True(t, ok)
	vm, err := bpf.NewVM(ins)
	require.NoError(t, err)
	data := make([]byte, 64)
	binary.BigEndian.PutUint32(data[offNr:], nr)
	binary.BigEndian.PutUint32(data[offArch:], arch)
	for i, v := range args {
		lo, hi := argOffsets(uint(i))
		binary.BigEndian.PutUint32(data[lo:], uint32(v))
		binary.BigEndian.PutUint32(data[hi:], uint32(v>>32))
	}
	out, err := vm.Run(data)
	require.NoError(t, err)
	return uint32(out)
}

func TestCompiledFilterDecides(t *testing.T) {
	const eperm = RetErrno | 1
	f := Filter{Arch: ArchX86_64, Default: eperm, ForeignArch: RetKillProcess}
	// Many allowed numbers with holes, so the search has work and the
	// program grows past the reach of a conditional jump.
	for nr := uint32(0); nr < 900; nr++ {
		if nr%3 != 1 {
			f.Rules = append(f.Rules, Rule{Nr: nr, Ret: RetAllow})
		}
	}
	f.Rules = append(f.Rules,
		Rule{Nr: 1000, Args: []Arg{{Index: 0, Op: OpMaskedEq, Mask: 0x10000000, Value: 0x10000000}}, Ret: eperm},
		Rule{Nr: 1000, Ret: RetAllow},
		Rule{Nr: 1001, Args: []Arg{{Index: 1, Op: OpEq, Value: 0x5412}}, Ret: eperm},
		Rule{Nr: 1001, Ret: RetAllow},
		Rule{Nr: 1002, Ret: RetErrno | 38},
		Rule{Nr: 1003, Args: []Arg{{Index: 2, Op: OpNe, Value: 1 << 40}}, Ret: eperm},
		Rule{Nr: 1003, Ret: RetAllow},
	)
	prog, err := Compile(f)
	require.NoError(t, err)
	require.Greater(t, len(prog), 256, "the test should need far jumps")
	for nr := uint32(0); nr < 910; nr++ {
		want := RetAllow
		if nr%3 == 1 || nr >= 900 {
			want = eperm
		}
		assert.Equal(t, want, run(t, prog, ArchX86_64, nr), "nr %d", nr)
	}
	assert.Equal(t, eperm, run(t, prog, ArchX86_64, 1000, 0x10000000|0x11), "flag set")
	assert.Equal(t, RetAllow, run(t, prog, ArchX86_64, 1000, 0x11), "flag clear")
	assert.Equal(t, eperm, run(t, prog, ArchX86_64, 1001, 3, 0x5412))
	assert.Equal(t, RetAllow, run(t, prog, ArchX86_64, 1001, 3, 0x5413))
	assert.Equal(t, RetAllow, run(t, prog, ArchX86_64, 1001, 3, 0x1_00005412), "the high half counts")
	assert.Equal(t, RetErrno|38, run(t, prog, ArchX86_64, 1002))
	assert.Equal(t, RetAllow, run(t, prog, ArchX86_64, 1003, 0, 0, 1<<40))
	assert.Equal(t, eperm, run(t, prog, ArchX86_64, 1003, 0, 0, 1<<41))
	assert.Equal(t, RetKillProcess, run(t, prog, ArchAArch64, 0), "foreign architecture")
	assert.Equal(t, RetKillProcess, run(t, prog, ArchX86_64, x32SyscallBit|1), "x32")
	assert.Equal(t, eperm, run(t, prog, ArchX86_64, 9999), "unknown number")
}

func TestCompileRefusesBadFilters(t *testing.T) {
	_, err := Compile(Filter{Arch: 1})
	assert.Error(t, err)
	_, err = Compile(Filter{Arch: ArchAArch64, Rules: []Rule{{Nr: 1, Args: []Arg{{Index: 6}}}}})
	assert.Error(t, err)
	prog, err := Compile(Filter{Arch: ArchAArch64, Default: RetAllow, ForeignArch: RetKillProcess})
	require.NoError(t, err)
	assert.Equal(t, RetAllow, run(t, prog, ArchAArch64, 0x40000001), "no x32 check on arm64")
}
