package iscsi

import (
	"fmt"
	"testing"
)

func TestDataInSegmentation(t *testing.T) {
	tests := []struct {
		name                     string
		total, maxXmit, maxBurst uint32
		want                     string // length, F marked with '*'
	}{
		{"one PDU", 512, 8192, 262144, "[512*]"},
		{"split by MaxXmitDSL", 20000, 8192, 262144, "[8192 8192 3616*]"},
		{"burst boundaries", 20000, 8192, 10000, "[8192 1808* 8192 1808*]"},
		{"burst smaller than PDU", 10000, 8192, 4096, "[4096* 4096* 1808*]"},
		{"exact multiple", 16384, 8192, 262144, "[8192 8192*]"},
		{"defaults for zero limits", 10000, 0, 0, "[8192 1808*]"},
	}
	for _, tc := range tests {
		var got []string
		for off := uint32(0); off < tc.total; {
			n, final := dataInSegment(off, tc.total, tc.maxXmit, tc.maxBurst)
			if n == 0 {
				t.Fatalf("%s: zero-length segment at %d", tc.name, off)
			}
			s := fmt.Sprint(n)
			if final {
				s += "*"
			}
			got = append(got, s)
			off += n
		}
		if s := fmt.Sprint(got); s != tc.want {
			t.Errorf("%s: segments %s, want %s", tc.name, s, tc.want)
		}
	}
}

// TestResidual follows libiscsi's iSCSIResiduals expectations (block
// size 512): the expected length is the EDTL, the actual one what the
// CDB transfers.

func TestResidual(t *testing.T) {
	tests := []struct {
		name             string
		expected, actual uint32
		over, under      bool
		count            uint32
	}{
		{"READ10 1 block, EDTL 0", 0, 512, true, false, 512},
		{"READ10 1 block, EDTL 10000", 10000, 512, false, true, 10000 - 512},
		{"READ10 1 block, EDTL 200", 200, 512, true, false, 312},
		{"READ10 2 blocks, EDTL 1 block", 512, 1024, true, false, 512},
		{"WRITE10 1 block, EDTL 2 blocks", 1024, 512, false, true, 512},
		{"exact", 4096, 4096, false, false, 0},
	}
	for _, tc := range tests {
		over, under, count := residual(tc.expected, tc.actual)
		if over != tc.over || under != tc.under || count != tc.count {
			t.Errorf("%s: residual = (O %v, U %v, %d), want (O %v, U %v, %d)",
				tc.name, over, under, count, tc.over, tc.under, tc.count)
		}
	}
}
