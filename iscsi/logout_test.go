package iscsi

import "testing"

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
