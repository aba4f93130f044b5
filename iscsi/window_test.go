package iscsi

import "testing"

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
