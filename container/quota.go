package container

import (
	"encoding/binary"
	"fmt"
)

// Disk limits (warden's limit_disk and repquota). A container's writable
// layer is what a disk limit caps and what disk usage measures; the stack
// below it is shared and read-only. Three backends exist; the Manager
// picks the first that works on the host (see WithQuota):
//
//   - QuotaKernel: project quotas on the file system holding the depot,
//     set with quotactl(2) on the container's upper directory. Enforced by
//     the kernel, changed at will, cheap to read. Needs a kernel and file
//     system with project quota enabled (ext4 with the quota and project
//     features, or XFS with prjquota); the Manager probes with quotactl
//     and steps aside, giving the kernel's reason, when it fails.
//   - QuotaImage: the writable layer lives on its own ext4 file system in
//     a sparse image file on a loop device, mounted inside the container's
//     mount namespace only. The byte limit is the image's size and the
//     inode limit its inode count: hard, enforced by the file system
//     (writing past it fails with ENOSPC), and growing the byte limit
//     later resizes the file system online. Shrinking is refused, and the
//     inode limit is fixed at create. Needs mkfs.ext4 (e2fsprogs) and loop
//     devices. Usage costs one statfs per container.
//   - QuotaScanner: no enforcement; usage is measured by walking the
//     writable layer (cost grows with its number of files). Used when
//     neither of the others works, and for containers without a limit.
//
// The backend of each container is recorded in its state, so a re-opened
// Manager reads usage the same way.

// QuotaBackend names a disk quota backend.
type QuotaBackend string

// The quota backends.
const (
	QuotaAuto    QuotaBackend = ""        // probe: kernel, then image, then scanner
	QuotaKernel  QuotaBackend = "kernel"  // project quotas through quotactl
	QuotaImage   QuotaBackend = "image"   // an ext4 image per container
	QuotaScanner QuotaBackend = "scanner" // measure only
)

// DiskUsage is what a container's writable layer uses and its limits
// (0: none).
type DiskUsage struct {
	Bytes, Inodes           uint64
	LimitBytes, LimitInodes uint64
	// Backend measured (and enforces) it.
	Backend QuotaBackend
}

// QuotaEntry is one line of a quota report, as warden's repquota printed:
// a container, what it uses and its limits.
type QuotaEntry struct {
	Handle string
	DiskUsage
	Err error // why this container could not be measured
}

// diskState is a container's disk limit, kept in its state file.
type diskState struct {
	Backend     QuotaBackend `json:"backend"`
	LimitBytes  uint64       `json:"limit_bytes,omitempty"`
	LimitInodes uint64       `json:"limit_inodes,omitempty"`
	ProjectID   uint32       `json:"project_id,omitempty"` // kernel
	Loop        string       `json:"loop,omitempty"`       // image: the loop device
	AgentFD     int          `json:"agent_fd,omitempty"`   // image: the agent's fd of the file system's root
	BaseBytes   uint64       `json:"base_bytes,omitempty"` // image: used by the empty file system
	BaseInodes  uint64       `json:"base_inodes,omitempty"`
}

// The kernel's quotactl interface (include/uapi/linux/quota.h).
const (
	qGetQuota = 0x800007
	qSetQuota = 0x800008
	prjQuota  = 2
	// qifLimits | qifUsage: which dqblk fields are valid.
	qifBLimits = 1
	qifILimits = 4
	qifSpace   = 2
	qifInodes  = 8
	// dqblkSize is sizeof(struct if_dqblk) on every architecture.
	dqblkSize = 72
	// quotaBlock is the unit of dqb_bhardlimit and dqb_bsoftlimit.
	quotaBlock = 1024
)

// qcmd builds quotactl's cmd argument (QCMD in quota.h).
func qcmd(cmd, typ uint32) uint32 { return cmd<<8 | typ&0xff }

// dqblk is struct if_dqblk.
type dqblk struct {
	BHardLimit, BSoftLimit, CurSpace  uint64 // blocks of 1 KiB; bytes
	IHardLimit, ISoftLimit, CurInodes uint64
	BTime, ITime                      uint64
	Valid                             uint32
}

// encode lays d out as the kernel reads it (native byte order).
func (d *dqblk) encode() []byte {
	b := make([]byte, dqblkSize)
	o := binary.NativeEndian
	for i, v := range []uint64{d.BHardLimit, d.BSoftLimit, d.CurSpace, d.IHardLimit, d.ISoftLimit, d.CurInodes, d.BTime, d.ITime} {
		o.PutUint64(b[i*8:], v)
	}
	o.PutUint32(b[64:], d.Valid)
	return b
}

func decodeDqblk(b []byte) (dqblk, error) {
	if len(b) < dqblkSize {
		return dqblk{}, fmt.Errorf("container: dqblk of %d bytes", len(b))
	}
	o := binary.NativeEndian
	var d dqblk
	for i, p := range []*uint64{&d.BHardLimit, &d.BSoftLimit, &d.CurSpace, &d.IHardLimit, &d.ISoftLimit, &d.CurInodes, &d.BTime, &d.ITime} {
		*p = o.Uint64(b[i*8:])
	}
	d.Valid = o.Uint32(b[64:])
	return d, nil
}

// limitDqblk is the dqblk that sets hard limits (soft = hard) in bytes and
// inodes; byte limits round up to whole quota blocks.
func limitDqblk(bytes, inodes uint64) dqblk {
	blocks := (bytes + quotaBlock - 1) / quotaBlock
	return dqblk{BHardLimit: blocks, BSoftLimit: blocks, IHardLimit: inodes, ISoftLimit: inodes, Valid: qifBLimits | qifILimits}
}

// fsxattr is struct fsxattr of FS_IOC_FSGETXATTR and FS_IOC_FSSETXATTR,
// which carries a directory's project id.
type fsxattr struct {
	XFlags, ExtSize, NextENTs, ProjID, CowExtSize uint32
	Pad                                           [8]byte
}

const (
	fsxattrSize        = 28
	fsXFlagProjInherit = 0x00000200
)

func (x *fsxattr) encode() []byte {
	b := make([]byte, fsxattrSize)
	o := binary.NativeEndian
	for i, v := range []uint32{x.XFlags, x.ExtSize, x.NextENTs, x.ProjID, x.CowExtSize} {
		o.PutUint32(b[i*4:], v)
	}
	copy(b[20:], x.Pad[:])
	return b
}

func decodeFsxattr(b []byte) fsxattr {
	o := binary.NativeEndian
	var x fsxattr
	for i, p := range []*uint32{&x.XFlags, &x.ExtSize, &x.NextENTs, &x.ProjID, &x.CowExtSize} {
		*p = o.Uint32(b[i*4:])
	}
	copy(x.Pad[:], b[20:28])
	return x
}

// projectID derives a project id from the depot and handle (ids below
// 65536 are left to the host's own projects).
func projectID(depot, handle string) uint32 {
	var h uint32 = 2166136261
	for _, b := range []byte(depot + "\x00" + handle) {
		h = (h ^ uint32(b)) * 16777619
	}
	return 65536 + h%(1<<30)
}
