// Package seccomp compiles a system call filter into a classic BPF program
// for seccomp(2), in pure Go (golang.org/x/net/bpf), and installs it on
// the calling thread.
//
// The program checks the architecture first (a foreign one, and x32 on
// x86_64, get the ForeignArch action), then tries the system calls that
// have argument conditions or a non-allow action, one after the other, and
// finally finds the remaining allowed numbers by a binary search over
// their ranges; anything else gets the default action. A filter of a few
// hundred allowed calls thus runs about a dozen instructions per call.
//
// The package knows nothing of names: its caller maps names to numbers.
package seccomp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/net/bpf"
)

// Return values of a filter (SECCOMP_RET_*).
const (
	RetKillProcess uint32 = 0x80000000
	RetTrap        uint32 = 0x00030000
	RetErrno       uint32 = 0x00050000 // | errno
	RetAllow       uint32 = 0x7fff0000
)

// Architectures (AUDIT_ARCH_*).
const (
	ArchX86_64  uint32 = 0xc000003e
	ArchAArch64 uint32 = 0xc00000b7
)

// x32SyscallBit marks the x32 ABI's system call numbers on x86_64.
const x32SyscallBit = 0x40000000

// Op compares a system call argument.
type Op int

// The comparisons.
const (
	OpEq       Op = iota // arg == Value
	OpNe                 // arg != Value
	OpMaskedEq           // arg & Mask == Value
)

// Arg is a condition on one argument (0 to 5) of a system call.
type Arg struct {
	Index uint
	Op    Op
	Value uint64
	Mask  uint64 // OpMaskedEq only
}

// Rule gives the system call Nr the return value Ret when all of Args
// hold. The rules of one number are tried in order; when none applies
// the call gets the default action.
type Rule struct {
	Nr   uint32
	Args []Arg
	Ret  uint32
}

// Filter is what Compile turns into a program.
type Filter struct {
	Arch        uint32 // the architecture the rules' numbers are for
	Rules       []Rule
	Default     uint32 // for numbers no rule gives a value
	ForeignArch uint32 // for other architectures, and x32 on x86_64
}

// Offsets in struct seccomp_data.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// Compile turns f into a BPF program.
func Compile(f Filter) ([]bpf.RawInstruction, error) {
	if f.Arch != ArchX86_64 && f.Arch != ArchAArch64 {
		return nil, fmt.Errorf("seccomp: unknown architecture %#x", f.Arch)
	}
	byNr := map[uint32][]Rule{}
	for _, r := range f.Rules {
		for _, a := range r.Args {
			if a.Index > 5 {
				return nil, fmt.Errorf("seccomp: system call %d: argument %d", r.Nr, a.Index)
			}
		}
		byNr[r.Nr] = append(byNr[r.Nr], r)
	}
	// Numbers whose one rule is an unconditional allow go to the search;
	// the others are tested one by one.
	var allowed, special []uint32
	for nr, rules := range byNr {
		if len(rules) == 1 && len(rules[0].Args) == 0 && rules[0].Ret == RetAllow {
			allowed = append(allowed, nr)
		} else {
			special = append(special, nr)
		}
	}
	slices.Sort(allowed)
	slices.Sort(special)

	var a assembler
	a.load(offArch)
	a.jumpIf(bpf.JumpEqual, f.Arch, "arch", "foreign")
	a.label("arch")
	a.load(offNr)
	if f.Arch == ArchX86_64 {
		a.jumpIf(bpf.JumpGreaterOrEqual, x32SyscallBit, "foreign", "native")
		a.label("native")
	}
	for _, nr := range special {
		a.jumpIf(bpf.JumpEqual, nr, fmt.Sprintf("nr%d", nr), fmt.Sprintf("not%d", nr))
		a.label(fmt.Sprintf("not%d", nr))
	}
	a.search(rangesOf(allowed), "allow", "default")
	for _, nr := range special {
		a.label(fmt.Sprintf("nr%d", nr))
		for i, r := range byNr[nr] {
			next := fmt.Sprintf("nr%d.%d", nr, i+1)
			for j, arg := range r.Args {
				a.arg(arg, fmt.Sprintf("nr%d.%d.%d", nr, i, j), next)
				a.label(fmt.Sprintf("nr%d.%d.%d", nr, i, j))
			}
			a.ret(r.Ret)
			a.label(next)
		}
		a.jump("default")
	}
	a.label("allow")
	a.ret(RetAllow)
	a.label("default")
	a.ret(f.Default)
	a.label("foreign")
	a.ret(f.ForeignArch)
	return a.assemble()
}

type numRange struct{ lo, hi uint32 }

func rangesOf(sorted []uint32) []numRange {
	var out []numRange
	for _, n := range sorted {
		if len(out) > 0 && out[len(out)-1].hi+1 == n {
			out[len(out)-1].hi = n
			continue
		}
		out = append(out, numRange{n, n})
	}
	return out
}

// assembler lays out instructions with symbolic jump targets and turns
// conditional jumps that reach too far (over 255 instructions) into short
// ones to unconditional jumps.
type assembler struct {
	items []item
	seq   int
}

type item struct {
	ins           bpf.Instruction // a plain instruction, or nil
	label         string          // a label, when ins and cond are unset
	jump          string          // an unconditional jump's target
	cond          bool            // a conditional jump
	test          bpf.JumpTest
	val           uint32
	ifTrue, ifNot string
}

func (a *assembler) load(off uint32) {
	a.items = append(a.items, item{ins: bpf.LoadAbsolute{Off: off, Size: 4}})
}
func (a *assembler) ret(v uint32)   { a.items = append(a.items, item{ins: bpf.RetConstant{Val: v}}) }
func (a *assembler) label(l string) { a.items = append(a.items, item{label: l}) }
func (a *assembler) jump(l string)  { a.items = append(a.items, item{jump: l}) }
func (a *assembler) jumpIf(t bpf.JumpTest, v uint32, ifTrue, ifNot string) {
	a.items = append(a.items, item{cond: true, test: t, val: v, ifTrue: ifTrue, ifNot: ifNot})
}

func (a *assembler) fresh() string { a.seq++; return fmt.Sprintf(".%d", a.seq) }

// search emits a binary search of the accumulator over the ranges.
func (a *assembler) search(rs []numRange, in, out string) {
	if len(rs) == 0 {
		a.jump(out)
		return
	}
	mid := len(rs) / 2
	r := rs[mid]
	left, notLeft, right := a.fresh(), a.fresh(), a.fresh()
	a.jumpIf(bpf.JumpGreaterOrEqual, r.lo, notLeft, left)
	a.label(notLeft)
	a.jumpIf(bpf.JumpGreaterThan, r.hi, right, in)
	a.label(left)
	a.search(rs[:mid], in, out)
	a.label(right)
	a.search(rs[mid+1:], in, out)
}

// arg emits a test of one argument: on success it goes on to ok, on
// failure to fail. 64-bit values are compared as two 32-bit halves.
func (a *assembler) arg(c Arg, ok, fail string) {
	lo, hi := argOffsets(c.Index)
	cmp := func(off, val, mask uint32, eqTarget, neTarget string) {
		a.load(off)
		if mask != 0xffffffff {
			a.items = append(a.items, item{ins: bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: mask}})
		}
		a.jumpIf(bpf.JumpEqual, val, eqTarget, neTarget)
	}
	mask := uint64(0xffffffffffffffff)
	if c.Op == OpMaskedEq {
		mask = c.Mask
	}
	vlo, vhi := uint32(c.Value), uint32(c.Value>>32)
	mlo, mhi := uint32(mask), uint32(mask>>32)
	half := a.fresh()
	switch c.Op {
	case OpEq, OpMaskedEq:
		cmp(hi, vhi, mhi, half, fail)
		a.label(half)
		cmp(lo, vlo, mlo, ok, fail)
	case OpNe:
		cmp(hi, vhi, mhi, half, ok)
		a.label(half)
		cmp(lo, vlo, mlo, fail, ok)
	}
}

// argOffsets are the offsets of the low and high halves of an argument.
func argOffsets(i uint) (lo, hi uint32) {
	off := uint32(offArgs + 8*i)
	if binary.NativeEndian.Uint16([]byte{1, 0}) == 1 {
		return off, off + 4
	}
	return off + 4, off
}

func (a *assembler) assemble() ([]bpf.RawInstruction, error) {
	// Expand far conditional jumps until the layout is stable: each
	// expansion only lengthens the program.
	far := map[int]bool{}
	for {
		pos, labels := a.layout(far)
		changed := false
		for i, it := range a.items {
			if !it.cond || far[i] {
				continue
			}
			next := pos[i] + 1
			if labels[it.ifTrue]-next > 255 || labels[it.ifNot]-next > 255 {
				far[i] = true
				changed = true
			}
		}
		if !changed {
			return a.emit(far, pos, labels)
		}
	}
}

// layout returns the position of each item and label.
func (a *assembler) layout(far map[int]bool) ([]int, map[string]int) {
	pos := make([]int, len(a.items))
	labels := map[string]int{}
	p := 0
	for i, it := range a.items {
		pos[i] = p
		switch {
		case it.label != "" && it.ins == nil && !it.cond && it.jump == "":
			labels[it.label] = p
		case far[i]:
			p += 3 // jif +0/+1, ja true, ja false
		default:
			p++
		}
	}
	return pos, labels
}

func (a *assembler) emit(far map[int]bool, pos []int, labels map[string]int) ([]bpf.RawInstruction, error) {
	var prog []bpf.Instruction
	target := func(l string) (int, error) {
		t, ok := labels[l]
		if !ok {
			return 0, fmt.Errorf("seccomp: no label %q", l)
		}
		return t, nil
	}
	for i, it := range a.items {
		switch {
		case it.ins != nil:
			prog = append(prog, it.ins)
		case it.jump != "":
			t, err := target(it.jump)
			if err != nil {
				return nil, err
			}
			prog = append(prog, bpf.Jump{Skip: uint32(t - pos[i] - 1)})
		case it.cond:
			tt, err := target(it.ifTrue)
			if err != nil {
				return nil, err
			}
			tf, err := target(it.ifNot)
			if err != nil {
				return nil, err
			}
			if far[i] {
				prog = append(prog,
					bpf.JumpIf{Cond: it.test, Val: it.val, SkipTrue: 0, SkipFalse: 1},
					bpf.Jump{Skip: uint32(tt - pos[i] - 2)},
					bpf.Jump{Skip: uint32(tf - pos[i] - 3)})
			} else {
				prog = append(prog, bpf.JumpIf{Cond: it.test, Val: it.val, SkipTrue: uint8(tt - pos[i] - 1), SkipFalse: uint8(tf - pos[i] - 1)})
			}
		}
	}
	if len(prog) > 4096 {
		return nil, errors.New("seccomp: program longer than the kernel's 4096 instructions")
	}
	return bpf.Assemble(prog)
}
