package iscsi

import (
	"fmt"
	"testing"
)

func TestUnsolicitedEnd(t *testing.T) {
	tests := []struct {
		name                  string
		edtl, imm, firstBurst uint32
		initialR2T, final     bool
		want                  uint32
	}{
		{"InitialR2T=Yes, no immediate data", 65536, 0, 65536, true, true, 0},
		{"InitialR2T=Yes, immediate data", 65536, 8192, 65536, true, true, 8192},
		{"InitialR2T=No, F clear: up to FirstBurstLength", 1 << 20, 8192, 65536, false, false, 65536},
		{"InitialR2T=No, F clear, EDTL below FirstBurstLength", 16384, 8192, 65536, false, false, 16384},
		{"InitialR2T=No, F set: immediate only", 1 << 20, 8192, 65536, false, true, 8192},
		{"InitialR2T=No, no immediate, F clear", 1 << 20, 0, 65536, false, false, 65536},
	}
	for _, tc := range tests {
		if got := unsolicitedEnd(tc.edtl, tc.imm, tc.firstBurst, tc.initialR2T, tc.final); got != tc.want {
			t.Errorf("%s: unsolicitedEnd = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestR2TPlan drives planR2TsLocked as Data-Out completes R2Ts and checks
// the R2Ts it issues: offsets, lengths, and never more than
// MaxOutstandingR2T at once.

func TestR2TPlan(t *testing.T) {
	tests := []struct {
		name                       string
		edtl, start, maxBurst, out uint32
		want                       string // "offset+length" of every R2T in order
	}{
		{"one R2T", 4096, 0, 262144, 1, "[0+4096]"},
		{"after immediate data", 10000, 512, 262144, 1, "[512+9488]"},
		{"split by MaxBurstLength", 10000, 0, 4096, 1, "[0+4096 4096+4096 8192+1808]"},
		{"two outstanding", 20000, 0, 8192, 2, "[0+8192 8192+8192 16384+3616]"},
		{"all data unsolicited", 65536, 65536, 8192, 1, "[]"},
		{"MaxBurstLength 0 means 256KiB", 300000, 0, 0, 4, "[0+262144 262144+37856]"},
	}
	for _, tc := range tests {
		s := NewServer(nil)
		ss := &session{srv: s, params: Negotiated{MaxBurstLength: tc.maxBurst, MaxOutstandingR2T: tc.out}}
		c := &conn{ss: ss}
		tk := &task{edtl: tc.edtl, r2tNext: tc.start}
		var got []string
		for range 100 {
			n := c.planR2TsLocked(tk)
			if uint32(len(tk.r2ts)) > max(tc.out, 1) {
				t.Fatalf("%s: %d R2Ts outstanding, MaxOutstandingR2T %d", tc.name, len(tk.r2ts), tc.out)
			}
			for i := range n {
				r := tk.sendingR2T[i]
				got = append(got, fmt.Sprintf("%d+%d", r.off, r.length))
			}
			if len(tk.r2ts) == 0 {
				break
			}
			// The initiator answers the oldest R2T in full.
			tk.r2ts = tk.r2ts[1:]
		}
		if s := fmt.Sprint(got); s != tc.want {
			t.Errorf("%s: R2Ts %s, want %s", tc.name, s, tc.want)
		}
	}
}

// TestDataInSegmentation checks Data-In PDU lengths and F bits: at most
// MaxXmitDataSegmentLength per PDU, sequences (F) ending at every
// MaxBurstLength boundary and at the end.
