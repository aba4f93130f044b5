package iscsi

import (
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/scstd/scstd/scsi"
)

// wireHex decodes a hex string written with spaces and line breaks for
// readability.
func wireHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func bhsOf(t testing.TB, s string) BHS {
	t.Helper()
	b := wireHex(t, s)
	if len(b) != BHSLen {
		t.Fatalf("hex is %d bytes, want 48", len(b))
	}
	return BHS(b)
}

// pduCodec is what every per-kind struct implements.
type pduCodec interface {
	Encode(*BHS)
	Decode(*BHS) error
}

func TestPDURoundTrip(t *testing.T) {
	lun1 := [8]byte{0x00, 0x01}
	tests := []struct {
		name string
		pdu  pduCodec
		// BHS as hex, 4 bytes per group; DataSegmentLength/TotalAHSLength stay 0.
		hex string
	}{
		{"scsi command READ(10) simple", &SCSICommand{Immediate: false, Final: true, Read: true, Attr: scsi.Simple,
			LUN: lun1, ITT: 0x11223344, ExpectedDataTransferLength: 4096, CmdSN: 7, ExpStatSN: 9,
			CDB: [16]byte{0x28, 0, 0, 0, 0, 0x10, 0, 0, 8, 0}},
			// op=01 F|R|attr=1 (c1) | LUN 0001.. | ITT | EDTL=4096 | CmdSN=7 | ExpStatSN=9 | CDB
			"01c10000 00000000 00010000 00000000 11223344 00001000 00000007 00000009" +
				"28000000 00100000 08000000 00000000"},
		{"scsi command immediate WRITE ordered", &SCSICommand{Immediate: true, Write: true, Attr: scsi.Ordered,
			ITT: 1, ExpectedDataTransferLength: 512, CmdSN: 1, ExpStatSN: 1, CDB: [16]byte{0x2a}},
			"41220000 00000000 00000000 00000000 00000001 00000200 00000001 00000001" +
				"2a000000 00000000 00000000 00000000"},
		{"scsi response good with underflow", &SCSIResponse{Underflow: true, Response: CommandCompleted, Status: 0,
			ITT: 0x11223344, StatSN: 5, ExpCmdSN: 8, MaxCmdSN: 39, ResidualCount: 512},
			// op=21 flags=82 (1 + U) resp=00 status=00 | ... | StatSN | ExpCmdSN | MaxCmdSN | ExpDataSN | BidiRes | Res
			"21820000 00000000 00000000 00000000 11223344 00000000 00000005 00000008" +
				"00000027 00000000 00000000 00000200"},
		{"scsi response check condition", &SCSIResponse{Response: CommandCompleted, Status: 0x02, ITT: 3,
			StatSN: 1, ExpCmdSN: 2, MaxCmdSN: 33, ExpDataSN: 1},
			"21800002 00000000 00000000 00000000 00000003 00000000 00000001 00000002" +
				"00000021 00000001 00000000 00000000"},
		{"task mgmt abort task", &TaskMgmtRequest{Immediate: true, Function: TMAbortTask, LUN: lun1, ITT: 0x20,
			RTT: 0x10, CmdSN: 4, ExpStatSN: 3, RefCmdSN: 2, ExpDataSN: 0},
			"42810000 00000000 00010000 00000000 00000020 00000010 00000004 00000003" +
				"00000002 00000000 00000000 00000000"},
		{"task mgmt response complete", &TaskMgmtResponse{Response: TMFunctionComplete, ITT: 0x20, StatSN: 3, ExpCmdSN: 5, MaxCmdSN: 36},
			"22800000 00000000 00000000 00000000 00000020 00000000 00000003 00000005" +
				"00000024 00000000 00000000 00000000"},
		{"data-out final", &DataOut{Final: true, LUN: lun1, ITT: 9, TTT: 0xabcd, ExpStatSN: 2, DataSN: 1, BufferOffset: 8192},
			"05800000 00000000 00010000 00000000 00000009 0000abcd 00000000 00000002" +
				"00000000 00000001 00002000 00000000"},
		{"data-in with status", &DataIn{Final: true, HasStatus: true, Underflow: true, Status: 0, ITT: 9,
			TTT: ReservedTag, StatSN: 4, ExpCmdSN: 5, MaxCmdSN: 36, DataSN: 0, BufferOffset: 0, ResidualCount: 100},
			// flags=83: F + U + S
			"25830000 00000000 00000000 00000000 00000009 ffffffff 00000004 00000005" +
				"00000024 00000000 00000000 00000064"},
		{"data-in middle", &DataIn{LUN: lun1, ITT: 9, TTT: ReservedTag, ExpCmdSN: 5, MaxCmdSN: 36, DataSN: 2, BufferOffset: 16384},
			"25000000 00000000 00010000 00000000 00000009 ffffffff 00000000 00000005" +
				"00000024 00000002 00004000 00000000"},
		{"r2t", &R2T{LUN: lun1, ITT: 9, TTT: 1, StatSN: 4, ExpCmdSN: 5, MaxCmdSN: 36, R2TSN: 0, BufferOffset: 65536,
			DesiredDataTransferLength: 262144},
			"31800000 00000000 00010000 00000000 00000009 00000001 00000004 00000005" +
				"00000024 00000000 00010000 00040000"},
		{"async logout request", &AsyncMessage{StatSN: 8, ExpCmdSN: 9, MaxCmdSN: 40, Event: AsyncLogoutRequest, Parameter3: 10},
			"32800000 00000000 00000000 00000000 ffffffff 00000000 00000008 00000009" +
				"00000028 01000000 0000000a 00000000"},
		{"text request final", &TextRequest{Final: true, ITT: 1, TTT: ReservedTag, CmdSN: 1, ExpStatSN: 1},
			"04800000 00000000 00000000 00000000 00000001 ffffffff 00000001 00000001" +
				"00000000 00000000 00000000 00000000"},
		{"text response continue", &TextResponse{Continue: true, ITT: 1, TTT: 5, StatSN: 1, ExpCmdSN: 2, MaxCmdSN: 2},
			"24400000 00000000 00000000 00000000 00000001 00000005 00000001 00000002" +
				"00000002 00000000 00000000 00000000"},
		{"login request security->operational", &LoginRequest{Transit: true, CSG: StageSecurity, NSG: StageOperational,
			ISID: [6]byte{0x80, 0x12, 0x34, 0x56, 0x78, 0x9a}, TSIH: 0, ITT: 0, CID: 1, CmdSN: 1, ExpStatSN: 0},
			// op=43 (I + 03) flags=81 (T, CSG 0, NSG 1) vmax=0 vmin=0 | ISID | TSIH | ITT | CID | CmdSN | ExpStatSN
			"43810000 00000000 80123456 789a0000 00000000 00010000 00000001 00000000" +
				"00000000 00000000 00000000 00000000"},
		{"login request operational->full", &LoginRequest{Transit: true, CSG: StageOperational, NSG: StageFullFeature,
			ISID: [6]byte{0x40, 0, 0, 1, 0, 0}, TSIH: 0, ITT: 1, CID: 0, CmdSN: 1, ExpStatSN: 1},
			"43870000 00000000 40000001 00000000 00000001 00000000 00000001 00000001" +
				"00000000 00000000 00000000 00000000"},
		{"login response success", &LoginResponse{Transit: true, CSG: StageOperational, NSG: StageFullFeature,
			ISID: [6]byte{0x40, 0, 0, 1, 0, 0}, TSIH: 0x0102, ITT: 1, StatSN: 1, ExpCmdSN: 1, MaxCmdSN: 32},
			"23870000 00000000 40000001 00000102 00000001 00000000 00000001 00000001" +
				"00000020 00000000 00000000 00000000"},
		{"login response not found", &LoginResponse{Status: LoginNotFound, ITT: 1},
			"23000000 00000000 00000000 00000000 00000001 00000000 00000000 00000000" +
				"00000000 02030000 00000000 00000000"},
		{"logout request close session", &LogoutRequest{Immediate: true, Reason: LogoutCloseSession, ITT: 7, CID: 0, CmdSN: 3, ExpStatSN: 2},
			"46800000 00000000 00000000 00000000 00000007 00000000 00000003 00000002" +
				"00000000 00000000 00000000 00000000"},
		{"logout response", &LogoutResponse{Response: LogoutSuccess, ITT: 7, StatSN: 2, ExpCmdSN: 4, MaxCmdSN: 35, Time2Wait: 2, Time2Retain: 20},
			"26800000 00000000 00000000 00000000 00000007 00000000 00000002 00000004" +
				"00000023 00000000 00020014 00000000"},
		{"snack status", &SNACKRequest{Type: SNACKStatus, ITT: ReservedTag, TTT: 0, ExpStatSN: 4, BegRun: 2, RunLength: 1},
			"10810000 00000000 00000000 00000000 ffffffff 00000000 00000000 00000004" +
				"00000000 00000000 00000002 00000001"},
		{"reject protocol error", &Reject{Reason: RejectProtocolError, StatSN: 3, ExpCmdSN: 4, MaxCmdSN: 35},
			"3f800400 00000000 00000000 00000000 ffffffff 00000000 00000003 00000004" +
				"00000023 00000000 00000000 00000000"},
		{"nop-out ping", &NOPOut{Immediate: true, ITT: 0x55, TTT: ReservedTag, CmdSN: 10, ExpStatSN: 6},
			"40800000 00000000 00000000 00000000 00000055 ffffffff 0000000a 00000006" +
				"00000000 00000000 00000000 00000000"},
		{"nop-in target ping", &NOPIn{ITT: ReservedTag, TTT: 0x77, StatSN: 6, ExpCmdSN: 10, MaxCmdSN: 41},
			"20800000 00000000 00000000 00000000 ffffffff 00000077 00000006 0000000a" +
				"00000029 00000000 00000000 00000000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := bhsOf(t, tc.hex)
			var h BHS
			tc.pdu.Encode(&h)
			if h != want {
				t.Fatalf("encode:\n got %x\nwant %x", h, want)
			}
			back := reflect.New(reflect.TypeOf(tc.pdu).Elem()).Interface().(pduCodec)
			if err := back.Decode(&h); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(back, tc.pdu) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", back, tc.pdu)
			}
		})
	}
}

func TestPDUDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		pdu  pduCodec
		hex  string
	}{
		{"wrong opcode", &SCSICommand{},
			"00800000 00000000 00000000 00000000 00000001 ffffffff 00000000 00000000 00000000 00000000 00000000 00000000"},
		{"reserved task attribute", &SCSICommand{},
			"01870000 00000000 00000000 00000000 00000001 00000000 00000000 00000000 00000000 00000000 00000000 00000000"},
		{"login T and C", &LoginRequest{},
			"43c10000 00000000 00000000 00000000 00000001 00000000 00000000 00000000 00000000 00000000 00000000 00000000"},
		{"login CSG reserved", &LoginRequest{},
			"43080000 00000000 00000000 00000000 00000001 00000000 00000000 00000000 00000000 00000000 00000000 00000000"},
		{"login transit backwards", &LoginRequest{},
			"43840000 00000000 00000000 00000000 00000001 00000000 00000000 00000000 00000000 00000000 00000000 00000000"},
		{"login NSG reserved", &LoginRequest{},
			"43820000 00000000 00000000 00000000 00000001 00000000 00000000 00000000 00000000 00000000 00000000 00000000"},
		{"text F and C", &TextRequest{},
			"04c00000 00000000 00000000 00000000 00000001 ffffffff 00000000 00000000 00000000 00000000 00000000 00000000"},
		{"logout reserved reason", &LogoutRequest{},
			"06830000 00000000 00000000 00000000 00000001 00000000 00000000 00000000 00000000 00000000 00000000 00000000"},
		{"snack reserved type", &SNACKRequest{},
			"10840000 00000000 00000000 00000000 00000001 00000000 00000000 00000000 00000000 00000000 00000000 00000000"},
		{"nop-out both tags reserved, not immediate", &NOPOut{},
			"00800000 00000000 00000000 00000000 ffffffff ffffffff 00000000 00000000 00000000 00000000 00000000 00000000"},
		{"data-in S without F", &DataIn{},
			"25010000 00000000 00000000 00000000 00000001 ffffffff 00000000 00000000 00000000 00000000 00000000 00000000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := bhsOf(t, tc.hex)
			err := tc.pdu.Decode(&h)
			var pe *ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("Decode = %v, want *ProtocolError", err)
			}
		})
	}
}

func TestEnumStrings(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{OpSCSICommand.String(), "SCSI_COMMAND"},
		{Opcode(0x1c).String(), "OPCODE_0x1c"},
		{scsi.HeadOfQueue.String(), "HEAD_OF_QUEUE"},
		{TMLogicalUnitReset.String(), "LOGICAL_UNIT_RESET"},
		{TMFunction(0).String(), "TMF_0"},
		{TMFunctionRejected.String(), "FUNCTION_REJECTED"},
		{LoginNotFound.String(), "NOT_FOUND"},
		{LoginStatus(0x0399).String(), "LOGIN_STATUS_0399"},
		{StageFullFeature.String(), "FULL_FEATURE"},
		{RejectDataDigestError.String(), "DATA_DIGEST_ERROR"},
		{LogoutCloseConnection.String(), "CLOSE_CONNECTION"},
		{LogoutCIDNotFound.String(), "CID_NOT_FOUND"},
		{SNACKDataACK.String(), "DATA_ACK"},
		{AsyncSessionDrop.String(), "SESSION_DROP"},
		{AHSExtendedCDB.String(), "EXTENDED_CDB"},
		{TargetFailure.String(), "TARGET_FAILURE"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("String() = %q, want %q", tc.got, tc.want)
		}
	}
}
