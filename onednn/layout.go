package onednn

import (
	"fmt"
	"unsafe"
)

// Layout is how a feature map's values lie in memory.
type Layout uint8

const (
	// NCHW is srmlab's layout: each channel's plane contiguous.
	NCHW Layout = iota
	// Blocked16 is oneDNN's nChw16c: channels in blocks of 16, and in each
	// block a position's 16 values side by side. The convolutions compute
	// in it, so a feature map that stays in it between them saves two
	// reorders per convolution. The channels must be a multiple of 16.
	Blocked16
)

// blockedMD describes an (n, c, h, w) feature map in Blocked16.
func (l *library) blockedMD(d ...int) (md, error) {
	var m md
	var ds dims
	for i, v := range d {
		ds[i] = int64(v)
	}
	return m, l.check(fmt.Sprintf("blocked memory descriptor %v", d), l.mdInitByTag(&m, int32(len(d)), &ds, dtF32, tagABCD16b))
}

// Reorder16 converts an (n, c, h, w) float32 feature map between NCHW and
// Blocked16: from src in NCHW into dst in Blocked16 when toBlocked is set,
// else back. c must be a multiple of 16; dst and src must not overlap.
func Reorder16(dst, src []float32, n, c, h, w int, toBlocked bool) error {
	l, err := load()
	if err != nil {
		return err
	}
	if c%16 != 0 || n < 1 || h < 1 || w < 1 || len(src) != n*c*h*w || len(dst) != len(src) {
		return fmt.Errorf("onednn: Reorder16 of %d into %d values as (%d, %d, %d, %d)", len(src), len(dst), n, c, h, w)
	}
	return l.do(func() error {
		plain, err := l.plainMD(false, n, c, h, w)
		if err != nil {
			return err
		}
		blocked, err := l.blockedMD(n, c, h, w)
		if err != nil {
			return err
		}
		from, to := &plain, &blocked
		if !toBlocked {
			from, to = to, from
		}
		return l.reorder(from, to, false, unsafe.Pointer(unsafe.SliceData(src)), unsafe.Pointer(unsafe.SliceData(dst)))
	})
}
