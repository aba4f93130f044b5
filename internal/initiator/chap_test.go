package initiator

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/scstd/scstd/internal/access"
	"github.com/scstd/scstd/iscsi"
	"github.com/scstd/scstd/scsi"
)

// startCHAPServer serves testTarget (one empty LUN map) requiring CHAP
// with auth, and returns its address.
func startCHAPServer(t *testing.T, auth iscsi.Auth) string {
	t.Helper()
	luns := scsi.NewLUNMap(map[scsi.LUN]*scsi.LogicalUnit{0: {Device: scsi.NewDevice(scsi.DeviceConfig{Name: "d0"}, nil)}})
	s := iscsi.NewServer(nil)
	s.Publish(&iscsi.Snapshot{Enabled: true, Targets: map[string]*iscsi.Target{
		testTarget: {Name: testTarget, Enabled: true, Params: defaultParams, QueuedCommands: 32, LUNs: luns,
			Auth: auth},
	}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return ln.Addr().String()
}

func TestCHAPLogin(t *testing.T) {
	const (
		user, secret     = "alice", "alice-secret-0123"
		tuser, tsecret   = "target", "target-secret-456"
		wrong            = "wrong-secret-7890"
		statusAuthFailed = iscsi.LoginAuthFailed
	)
	full := iscsi.Auth{Incoming: []iscsi.CHAPUser{{Name: user, Secret: []byte(secret)}},
		Outgoing: &iscsi.CHAPUser{Name: tuser, Secret: []byte(tsecret)}}
	weak := full
	weak.Algorithms = []access.CHAPAlgorithm{access.CHAPMD5, access.CHAPSHA1}
	for _, c := range []struct {
		name    string
		auth    iscsi.Auth
		chap    CHAP
		wantAlg access.CHAPAlgorithm
		status  iscsi.LoginStatus // non-zero: refused with it
		err     error
	}{
		{"default offer takes SHA3-256", full, CHAP{Name: user, Secret: secret}, access.CHAPSHA3256, 0, nil},
		{"SHA-256 and MD5 offered", full, CHAP{Algorithms: []access.CHAPAlgorithm{access.CHAPMD5, access.CHAPSHA256},
			Name: user, Secret: secret}, access.CHAPSHA256, 0, nil},
		{"target allows MD5 and SHA-1", weak, CHAP{Name: user, Secret: secret}, access.CHAPSHA1, 0, nil},
		{"mutual", full, CHAP{Name: user, Secret: secret, TargetName: tuser, TargetSecret: tsecret}, access.CHAPSHA3256, 0, nil},
		{"mutual with a wrong target secret", full, CHAP{Name: user, Secret: secret, TargetSecret: wrong}, 0, 0, ErrTargetAuth},
		{"wrong secret", full, CHAP{Name: user, Secret: wrong}, 0, statusAuthFailed, nil},
		{"unknown user", full, CHAP{Name: "mallory", Secret: secret}, 0, statusAuthFailed, nil},
		{"reflected challenge", full, CHAP{Name: user, Secret: secret, Reflect: true}, 0, statusAuthFailed, nil},
		{"no common algorithm", weak, CHAP{Algorithms: []access.CHAPAlgorithm{access.CHAPSHA256}, Name: user, Secret: secret},
			0, statusAuthFailed, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn := dial(t, startCHAPServer(t, c.auth))
			err := conn.Login(Options{TargetName: testTarget, CHAP: &c.chap})
			var le *LoginError
			switch {
			case c.status != 0:
				if !errors.As(err, &le) || le.Status != c.status {
					t.Fatalf("Login: %v, want status %v", err, c.status)
				}
			case c.err != nil:
				if !errors.Is(err, c.err) {
					t.Fatalf("Login: %v, want %v", err, c.err)
				}
			case err != nil:
				t.Fatalf("Login: %v", err)
			default:
				if conn.CHAPAlgorithm != c.wantAlg {
					t.Errorf("algorithm %v, want %v", conn.CHAPAlgorithm, c.wantAlg)
				}
				if _, err := conn.NOP([]byte("ping")); err != nil {
					t.Errorf("NOP after a CHAP login: %v", err)
				}
			}
		})
	}
}
