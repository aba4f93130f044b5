package iscsi

import (
	"fmt"
	"testing"
)

func TestSerialArithmetic(t *testing.T) {
	tests := []struct {
		name string
		a, b uint32
		less bool
	}{
		{"equal", 5, 5, false},
		{"plain less", 1, 2, true},
		{"plain greater", 2, 1, false},
		{"wrap: max before 0", 0xffffffff, 0, true},
		{"wrap: 0 after max", 0, 0xffffffff, false},
		{"wrap: near max before small", 0xfffffff0, 0x10, true},
		{"half space apart minus one", 0, 0x7fffffff, true},
		{"half space apart plus one", 0, 0x80000001, false},
	}
	for _, tc := range tests {
		if got := snLess(tc.a, tc.b); got != tc.less {
			t.Errorf("%s: snLess(%#x, %#x) = %v, want %v", tc.name, tc.a, tc.b, got, tc.less)
		}
	}
}

func TestCmdSNWindow(t *testing.T) {
	tests := []struct {
		name          string
		sn, exp, max  uint32
		inside        bool
		wantMaxQueued uint32 // windowMax(exp, 32, 0)
	}{
		{"at ExpCmdSN", 10, 10, 41, true, 41},
		{"at MaxCmdSN", 41, 10, 41, true, 41},
		{"MaxCmdSN+1 (libiscsi CmdSnTooHigh)", 42, 10, 41, false, 41},
		{"ExpCmdSN-1 (libiscsi CmdSnTooLow)", 9, 10, 41, false, 41},
		{"window across wrap, before 0", 0xfffffffe, 0xfffffff0, 0x0f, true, 0x0f},
		{"window across wrap, after 0", 0x05, 0xfffffff0, 0x0f, true, 0x0f},
		{"window across wrap, beyond", 0x10, 0xfffffff0, 0x0f, false, 0x0f},
		{"window across wrap, behind", 0xffffffef, 0xfffffff0, 0x0f, false, 0x0f},
		{"closed window (max = exp-1)", 10, 10, 9, false, 41},
	}
	for _, tc := range tests {
		if got := inWindow(tc.sn, tc.exp, tc.max); got != tc.inside {
			t.Errorf("%s: inWindow(%#x, %#x, %#x) = %v, want %v", tc.name, tc.sn, tc.exp, tc.max, got, tc.inside)
		}
		if got := windowMax(tc.exp, 32, 0); got != tc.wantMaxQueued {
			t.Errorf("%s: windowMax(%#x, 32, 0) = %#x, want %#x", tc.name, tc.exp, got, tc.wantMaxQueued)
		}
	}
}

func TestWindowMax(t *testing.T) {
	tests := []struct {
		name                  string
		exp, queued, inFlight uint32
		want                  uint32
	}{
		{"empty queue of 32", 1, 32, 0, 32},
		{"one executing", 2, 32, 1, 32},
		{"queue full: window closed", 33, 32, 32, 32},
		{"more in flight than queue (queue lowered by reload)", 40, 16, 20, 39},
		{"queue of one", 7, 1, 0, 7},
		{"wraps", 0xffffffff, 4, 0, 2},
	}
	for _, tc := range tests {
		if got := windowMax(tc.exp, tc.queued, tc.inFlight); got != tc.want {
			t.Errorf("%s: windowMax(%#x, %d, %d) = %#x, want %#x", tc.name, tc.exp, tc.queued, tc.inFlight, got, tc.want)
		}
	}
}

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

func TestLogoutResponse(t *testing.T) {
	tests := []struct {
		name   string
		reason LogoutReason
		cid    uint16
		want   LogoutResponseCode
	}{
		{"close session", LogoutCloseSession, 9, LogoutSuccess},
		{"close this connection", LogoutCloseConnection, 1, LogoutSuccess},
		{"close another connection", LogoutCloseConnection, 2, LogoutCIDNotFound},
		{"remove for recovery at ERL0", LogoutRemoveForRecovery, 1, LogoutRecoveryNotSupported},
	}
	for _, tc := range tests {
		req := LogoutRequest{Reason: tc.reason, CID: tc.cid}
		if got := logoutResponse(&req, 1); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
