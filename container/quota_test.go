package container

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The kernel reads these layouts; the fixtures are the bytes that
// setquota(8) and xfs_io pass for the same values on a little-endian
// machine.
func TestQuotactlEncoding(t *testing.T) {
	assert.Equal(t, uint32(0x80000802), qcmd(qSetQuota, prjQuota), "QCMD(Q_SETQUOTA, PRJQUOTA)")
	assert.Equal(t, uint32(0x80000702), qcmd(qGetQuota, prjQuota), "QCMD(Q_GETQUOTA, PRJQUOTA)")

	d := limitDqblk(10<<20+1, 500) // rounds up to whole KiB blocks
	assert.Equal(t, uint64(10<<10+1), d.BHardLimit)
	assert.Equal(t, d.BHardLimit, d.BSoftLimit)
	assert.Equal(t, uint64(500), d.IHardLimit)
	b := d.encode()
	require.Len(t, b, dqblkSize)
	if binary.NativeEndian.Uint16([]byte{1, 0}) == 1 { // little endian
		fixture := []byte{
			0x01, 0x28, 0, 0, 0, 0, 0, 0, // bhardlimit 10241
			0x01, 0x28, 0, 0, 0, 0, 0, 0, // bsoftlimit
			0, 0, 0, 0, 0, 0, 0, 0, // curspace
			0xf4, 0x01, 0, 0, 0, 0, 0, 0, // ihardlimit 500
			0xf4, 0x01, 0, 0, 0, 0, 0, 0, // isoftlimit
			0, 0, 0, 0, 0, 0, 0, 0, // curinodes
			0, 0, 0, 0, 0, 0, 0, 0, // btime
			0, 0, 0, 0, 0, 0, 0, 0, // itime
			0x05, 0, 0, 0, // valid: QIF_BLIMITS|QIF_ILIMITS
			0, 0, 0, 0, // padding to 72
		}
		assert.Equal(t, fixture, b)
	}
	back, err := decodeDqblk(b)
	require.NoError(t, err)
	assert.Equal(t, d, back)
	_, err = decodeDqblk(b[:10])
	assert.Error(t, err)

	x := fsxattr{XFlags: fsXFlagProjInherit, ProjID: 70000}
	xb := x.encode()
	require.Len(t, xb, fsxattrSize)
	assert.Equal(t, uint32(70000), binary.NativeEndian.Uint32(xb[12:16]), "fsx_projid at offset 12")
	assert.Equal(t, x, decodeFsxattr(xb))

	p := projectID("/depot", "web-0")
	assert.GreaterOrEqual(t, p, uint32(65536))
	assert.Equal(t, p, projectID("/depot", "web-0"))
	assert.NotEqual(t, p, projectID("/depot", "web-1"))
}
