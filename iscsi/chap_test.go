package iscsi

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha3"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scstd/scstd/internal/access"
	"github.com/scstd/scstd/scsi"
)

// TestCHAPMD5KnownAnswer checks chapResponse against RFC 1994's formula
// MD5(id || secret || challenge), computed here independently, and against
// a fixed vector.
func TestCHAPMD5KnownAnswer(t *testing.T) {
	id := byte(0x2a)
	secret := []byte("12charsecret")
	challenge, _ := hex.DecodeString("00112233445566778899aabbccddeeff")

	var buf []byte
	buf = append(buf, id)
	buf = append(buf, secret...)
	buf = append(buf, challenge...)
	want := md5.Sum(buf)

	got := chapResponse(access.CHAPMD5, id, secret, challenge)
	if !bytes.Equal(got, want[:]) {
		t.Fatalf("chapResponse = %x, want %x", got, want)
	}
	// Fixed vector (computed with Python's hashlib), so that a change of
	// formula in both places is caught.
	if h := hex.EncodeToString(got); h != "ec07ff45b5d90aa26dbdb6cbfef8b066" {
		t.Fatalf("chapResponse = %s, want the fixed vector", h)
	}
}

func TestCHAPAlgorithmDigests(t *testing.T) {
	id, secret, challenge := byte(7), []byte("another-secret"), []byte("0123456789abcdef0123")
	msg := append(append([]byte{id}, secret...), challenge...)
	m5 := md5.Sum(msg)
	s1 := sha1.Sum(msg)
	s256 := sha256.Sum256(msg)
	s3 := sha3.Sum256(msg)
	tests := []struct {
		alg  access.CHAPAlgorithm
		name string
		code int
		want []byte
	}{
		{access.CHAPMD5, "MD5", 5, m5[:]},
		{access.CHAPSHA1, "SHA-1", 6, s1[:]},
		{access.CHAPSHA256, "SHA-256", 7, s256[:]},
		{access.CHAPSHA3256, "SHA3-256", 8, s3[:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if int(tt.alg) != tt.code || tt.alg.String() != tt.name {
				t.Fatalf("%d %q, want %d %q", tt.alg, tt.alg, tt.code, tt.name)
			}
			if tt.alg.Size() != len(tt.want) {
				t.Fatalf("Size = %d, want %d", tt.alg.Size(), len(tt.want))
			}
			got := chapResponse(tt.alg, id, secret, challenge)
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("response %x, want %x", got, tt.want)
			}
			if !verifyResponse(tt.alg, id, secret, challenge, tt.want) {
				t.Fatal("verifyResponse rejects the right response")
			}
			if verifyResponse(tt.alg, id, []byte("wrong"), challenge, tt.want) {
				t.Fatal("verifyResponse accepts a wrong secret")
			}
			if verifyResponse(tt.alg, id+1, secret, challenge, tt.want) {
				t.Fatal("verifyResponse accepts a wrong identifier")
			}
			if verifyResponse(tt.alg, id, secret, challenge, tt.want[:len(tt.want)-1]) {
				t.Fatal("verifyResponse accepts a short response")
			}
		})
	}
	if verifyResponse(access.CHAPAlgorithm(9), 0, nil, nil, nil) {
		t.Fatal("verifyResponse accepts an unknown algorithm")
	}
}

func TestChooseAlgorithm(t *testing.T) {
	tests := []struct {
		name    string
		offered string
		allowed []access.CHAPAlgorithm
		want    access.CHAPAlgorithm
		ok      bool
	}{
		{"libiscsi default MD5", "5", nil, access.CHAPMD5, true},
		{"open-iscsi list", "7,5", nil, access.CHAPSHA256, true},
		{"strongest wins whatever the order", "5,6,8,7", nil, access.CHAPSHA3256, true},
		{"target restricts", "8,7,5", []access.CHAPAlgorithm{access.CHAPMD5, access.CHAPSHA256}, access.CHAPSHA256, true},
		{"allowed order does not matter", "5,7", []access.CHAPAlgorithm{access.CHAPMD5, access.CHAPSHA256}, access.CHAPSHA256, true},
		{"no overlap", "5", []access.CHAPAlgorithm{access.CHAPSHA256}, 0, false},
		{"unknown values ignored", "junk,129,3,6", nil, access.CHAPSHA1, true},
		{"only unknown", "81,x", nil, 0, false},
		{"empty", "", nil, 0, false},
		{"spaces", " 5 , 7 ", nil, access.CHAPSHA256, true},
		{"out of byte range", "261", nil, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := chooseAlgorithm(strings.Split(tt.offered, ","), tt.allowed)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("chooseAlgorithm(%q, %v) = %v, %v; want %v, %v", tt.offered, tt.allowed, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestCHAPBinary(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // hex of the decoded bytes; "" for an error
	}{
		{"hex lower", "0x00ff10", "00ff10"},
		{"hex upper prefix and digits", "0XABCDEF", "abcdef"},
		{"hex odd length gets a leading zero nibble", "0xabc", "0abc"},
		{"base64 padded", "0bAP8Q", "00ff10"},
		{"base64 with padding", "0bAP8QAA==", "00ff1000"},
		{"base64 unpadded", "0BAP8QAA", "00ff1000"},
		{"decimal is not a large-binary-value", "12345", ""},
		{"no digits", "0x", ""},
		{"bad hex", "0xzz", ""},
		{"bad base64", "0b!!!!", ""},
		{"other prefix", "0y12", ""},
		{"empty", "", ""},
		{"too long", "0x" + strings.Repeat("ab", chapMaxBinary+1), ""},
		{"longest", "0x" + strings.Repeat("ab", chapMaxBinary), strings.Repeat("ab", chapMaxBinary)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeCHAPBinary(tt.in)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("decodeCHAPBinary(%q) = %x, want an error", tt.in, got)
				}
				return
			}
			if err != nil || hex.EncodeToString(got) != tt.want {
				t.Fatalf("decodeCHAPBinary(%q) = %x, %v; want %s", tt.in, got, err, tt.want)
			}
			// Round trip through the encoding the target sends.
			back, err := decodeCHAPBinary(encodeCHAPBinary(got))
			if err != nil || !bytes.Equal(back, got) {
				t.Fatalf("round trip of %x: %x, %v", got, back, err)
			}
		})
	}
	if e := encodeCHAPBinary([]byte{0x01, 0xab}); e != "0x01ab" {
		t.Fatalf("encodeCHAPBinary = %q", e)
	}
}

func TestParseCHAPIdentifier(t *testing.T) {
	tests := []struct {
		in   string
		want int // -1 for an error
	}{
		{"0", 0}, {"255", 255}, {"17", 17}, {"0x1f", 31}, {"0XFF", 255},
		{"256", -1}, {"-1", -1}, {"", -1}, {"0x", -1}, {"0x100", -1}, {"0bAA==", -1}, {"1.5", -1},
	}
	for _, tt := range tests {
		got, err := parseCHAPIdentifier(tt.in)
		if tt.want < 0 {
			if err == nil {
				t.Errorf("parseCHAPIdentifier(%q) = %d, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || int(got) != tt.want {
			t.Errorf("parseCHAPIdentifier(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestNewCHAPChallenge(t *testing.T) {
	for _, a := range access.DefaultCHAPAlgorithms {
		_, c1 := newCHAPChallenge(a)
		_, c2 := newCHAPChallenge(a)
		if len(c1) != max(a.Size(), chapMinChallenge) {
			t.Errorf("%v: challenge of %d bytes", a, len(c1))
		}
		if bytes.Equal(c1, c2) {
			t.Errorf("%v: two equal challenges", a)
		}
	}
}

// testInitiator plays the initiator side of CHAP with the formulas written
// out, independently of chapServer.
type testInitiator struct {
	name, secret string
	// mutual
	mid            byte
	mchallenge     []byte
	targetName     string
	targetSecret   string
	responseFormat func([]byte) string
}

func (ti *testInitiator) respond(t *testing.T, reply []string) map[string]string {
	t.Helper()
	kv := chapKeys(t, reply)
	a, err := strconv.Atoi(kv["CHAP_A"])
	if err != nil {
		t.Fatalf("CHAP_A %q", kv["CHAP_A"])
	}
	id, err := strconv.Atoi(kv["CHAP_I"])
	if err != nil || id < 0 || id > 255 {
		t.Fatalf("CHAP_I %q", kv["CHAP_I"])
	}
	if !strings.HasPrefix(kv["CHAP_C"], "0x") {
		t.Fatalf("CHAP_C %q is not hex (libiscsi reads only 0x)", kv["CHAP_C"])
	}
	c, err := hex.DecodeString(kv["CHAP_C"][2:])
	if err != nil {
		t.Fatal(err)
	}
	r := chapResponse(access.CHAPAlgorithm(a), byte(id), []byte(ti.secret), c)
	format := ti.responseFormat
	if format == nil {
		format = func(b []byte) string { return "0x" + strings.ToUpper(hex.EncodeToString(b)) }
	}
	out := map[string]string{"CHAP_N": ti.name, "CHAP_R": format(r)}
	if ti.mchallenge != nil {
		out["CHAP_I"] = strconv.Itoa(int(ti.mid))
		out["CHAP_C"] = "0x" + hex.EncodeToString(ti.mchallenge)
	}
	return out
}

func chapKeys(t *testing.T, kvs []string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, s := range kvs {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			t.Fatalf("reply %q is not Key=Value", s)
		}
		m[k] = v
	}
	return m
}

func testAuth() *Auth {
	return &Auth{
		Incoming: []CHAPUser{
			{Name: "joe", Secret: []byte("joe-secret-12")},
			{Name: "ann", Secret: []byte("ann-secret-12")},
		},
		Outgoing: &CHAPUser{Name: "jim", Secret: []byte("jim-secret-12")},
	}
}

func TestCHAPServerExchange(t *testing.T) {
	mutualChallenge := bytes.Repeat([]byte{0x5a}, 32)
	tests := []struct {
		name      string
		auth      *Auth
		offer     string
		ini       testInitiator
		tamper    func(keys map[string]string, reply []string)
		wantKind  AuthErrorKind // 0: success
		wantAlg   string
		wantMutal bool
	}{
		{name: "one-way MD5", auth: testAuth(), offer: "5", ini: testInitiator{name: "joe", secret: "joe-secret-12"}, wantAlg: "5"},
		{name: "second user logs in", auth: testAuth(), offer: "7,5", ini: testInitiator{name: "ann", secret: "ann-secret-12"}, wantAlg: "7"},
		{name: "SHA-1", auth: testAuth(), offer: "6", ini: testInitiator{name: "joe", secret: "joe-secret-12"}, wantAlg: "6"},
		{name: "SHA3-256 chosen", auth: testAuth(), offer: "5,6,7,8", ini: testInitiator{name: "joe", secret: "joe-secret-12"}, wantAlg: "8"},
		{name: "base64 response", auth: testAuth(), offer: "7", ini: testInitiator{name: "joe", secret: "joe-secret-12",
			responseFormat: func(b []byte) string { return "0b" + base64.StdEncoding.EncodeToString(b) }}, wantAlg: "7"},
		{name: "wrong secret", auth: testAuth(), offer: "5", ini: testInitiator{name: "joe", secret: "ann-secret-12"}, wantKind: AuthFailed, wantAlg: "5"},
		{name: "unknown user", auth: testAuth(), offer: "5", ini: testInitiator{name: "eve", secret: "joe-secret-12"}, wantKind: AuthFailed, wantAlg: "5"},
		{name: "mutual", auth: testAuth(), offer: "7", ini: testInitiator{name: "joe", secret: "joe-secret-12",
			mid: 9, mchallenge: mutualChallenge, targetName: "jim", targetSecret: "jim-secret-12"}, wantAlg: "7", wantMutal: true},
		{name: "mutual without outgoing user", auth: &Auth{Incoming: testAuth().Incoming}, offer: "7",
			ini: testInitiator{name: "joe", secret: "joe-secret-12", mid: 9, mchallenge: mutualChallenge}, wantKind: AuthFailed, wantAlg: "7"},
		{name: "mutual challenge too short", auth: testAuth(), offer: "5",
			ini: testInitiator{name: "joe", secret: "joe-secret-12", mid: 1, mchallenge: []byte("short")}, wantKind: AuthFailed, wantAlg: "5"},
		{name: "reflected challenge", auth: testAuth(), offer: "5",
			ini: testInitiator{name: "joe", secret: "joe-secret-12", mid: 1, mchallenge: []byte("placeholder-challenge")},
			tamper: func(keys map[string]string, reply []string) {
				keys["CHAP_C"] = chapKeysLoose(reply)["CHAP_C"]
			}, wantKind: AuthFailed, wantAlg: "5"},
		{name: "mutual with CHAP_I missing", auth: testAuth(), offer: "5",
			ini:    testInitiator{name: "joe", secret: "joe-secret-12", mid: 1, mchallenge: mutualChallenge},
			tamper: func(keys map[string]string, _ []string) { delete(keys, "CHAP_I") }, wantKind: AuthMalformed, wantAlg: "5"},
		{name: "mutual with CHAP_I out of range", auth: testAuth(), offer: "5",
			ini:    testInitiator{name: "joe", secret: "joe-secret-12", mid: 1, mchallenge: mutualChallenge},
			tamper: func(keys map[string]string, _ []string) { keys["CHAP_I"] = "300" }, wantKind: AuthMalformed, wantAlg: "5"},
		{name: "mutual challenge over 1024 bytes", auth: testAuth(), offer: "5",
			ini: testInitiator{name: "joe", secret: "joe-secret-12", mid: 1, mchallenge: mutualChallenge},
			tamper: func(keys map[string]string, _ []string) {
				keys["CHAP_C"] = "0x" + strings.Repeat("00", 1025)
			}, wantKind: AuthMalformed, wantAlg: "5"},
		{name: "CHAP_R missing", auth: testAuth(), offer: "5", ini: testInitiator{name: "joe", secret: "joe-secret-12"},
			tamper: func(keys map[string]string, _ []string) { delete(keys, "CHAP_R") }, wantKind: AuthMalformed, wantAlg: "5"},
		{name: "CHAP_R garbage", auth: testAuth(), offer: "5", ini: testInitiator{name: "joe", secret: "joe-secret-12"},
			tamper: func(keys map[string]string, _ []string) { keys["CHAP_R"] = "0xnothex" }, wantKind: AuthMalformed, wantAlg: "5"},
		{name: "CHAP_R truncated", auth: testAuth(), offer: "5", ini: testInitiator{name: "joe", secret: "joe-secret-12"},
			tamper: func(keys map[string]string, _ []string) { keys["CHAP_R"] = keys["CHAP_R"][:10] }, wantKind: AuthFailed, wantAlg: "5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCHAPServer(tt.auth)
			reply, err := c.start(map[string]string{"CHAP_A": tt.offer})
			if err != nil {
				t.Fatalf("start: %v", err)
			}
			if got := chapKeys(t, reply)["CHAP_A"]; got != tt.wantAlg {
				t.Fatalf("CHAP_A=%s, want %s", got, tt.wantAlg)
			}
			keys := tt.ini.respond(t, reply)
			if tt.tamper != nil {
				tt.tamper(keys, reply)
			}
			final, err := c.finish(keys)
			if tt.wantKind != 0 {
				var ae *AuthError
				if !errors.As(err, &ae) || ae.Kind != tt.wantKind {
					t.Fatalf("finish error %v, want kind %v", err, tt.wantKind)
				}
				if c.state != chapFailed || c.done() || c.User() != "" {
					t.Fatalf("failed exchange in state %v, user %q", c.state, c.User())
				}
				for _, s := range []string{"joe-secret-12", "ann-secret-12", "jim-secret-12"} {
					if strings.Contains(err.Error(), s) {
						t.Fatalf("error %q shows a secret", err)
					}
				}
				if _, err := c.finish(keys); err == nil {
					t.Fatal("finish succeeds after a failure")
				}
				return
			}
			if err != nil {
				t.Fatalf("finish: %v", err)
			}
			if !c.done() || c.User() != tt.ini.name || c.state.String() != "done" {
				t.Fatalf("state %v, user %q", c.state, c.User())
			}
			if !tt.wantMutal {
				if len(final) != 0 {
					t.Fatalf("one-way CHAP answers %q", final)
				}
				return
			}
			kv := chapKeys(t, final)
			if kv["CHAP_N"] != tt.ini.targetName {
				t.Fatalf("CHAP_N=%q", kv["CHAP_N"])
			}
			alg, _ := strconv.Atoi(tt.wantAlg)
			want := chapResponse(access.CHAPAlgorithm(alg), tt.ini.mid, []byte(tt.ini.targetSecret), tt.ini.mchallenge)
			if kv["CHAP_R"] != "0x"+hex.EncodeToString(want) {
				t.Fatalf("CHAP_R=%s, want 0x%x", kv["CHAP_R"], want)
			}
		})
	}
}

func TestCHAPServerSequence(t *testing.T) {
	tests := []struct {
		name     string
		auth     *Auth
		step     func(c *chapServer) error
		wantKind AuthErrorKind
	}{
		{"finish before start", testAuth(), func(c *chapServer) error {
			_, err := c.finish(map[string]string{"CHAP_N": "joe", "CHAP_R": "0x00"})
			return err
		}, AuthMalformed},
		{"start twice", testAuth(), func(c *chapServer) error {
			if _, err := c.start(map[string]string{"CHAP_A": "5"}); err != nil {
				return err
			}
			_, err := c.start(map[string]string{"CHAP_A": "5"})
			return err
		}, AuthMalformed},
		{"no CHAP_A", testAuth(), func(c *chapServer) error {
			_, err := c.start(map[string]string{"CHAP_N": "joe"})
			return err
		}, AuthMalformed},
		{"no common algorithm", &Auth{Incoming: testAuth().Incoming, Algorithms: []access.CHAPAlgorithm{access.CHAPSHA3256}}, func(c *chapServer) error {
			_, err := c.start(map[string]string{"CHAP_A": "5,7"})
			return err
		}, AuthFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.step(newCHAPServer(tt.auth))
			var ae *AuthError
			if !errors.As(err, &ae) || ae.Kind != tt.wantKind {
				t.Fatalf("error %v, want kind %v", err, tt.wantKind)
			}
			wantStatus := map[AuthErrorKind]uint16{AuthFailed: 0x0201, AuthMalformed: 0x0200}[tt.wantKind]
			if ae.LoginStatus() != wantStatus {
				t.Fatalf("LoginStatus %04x, want %04x", ae.LoginStatus(), wantStatus)
			}
		})
	}
}

func TestSelectAuthMethod(t *testing.T) {
	chap := testAuth()
	none := &Auth{}
	tests := []struct {
		name    string
		auth    *Auth
		offered string
		want    string // "" for an error
	}{
		{"CHAP target, initiator offers both", chap, "CHAP,None", "CHAP"},
		{"CHAP target, None first", chap, "None,CHAP", "CHAP"},
		{"CHAP target refuses None", chap, "None", ""},
		{"CHAP target, SRP only", chap, "SRP", ""},
		{"open target, both", none, "CHAP,None", "None"},
		{"open target, None", none, "None", "None"},
		{"open target, CHAP only", none, "CHAP", ""},
		{"spaces", chap, "KRB5, CHAP", "CHAP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.auth.SelectAuthMethod(tt.offered)
			if tt.want == "" {
				var ae *AuthError
				if !errors.As(err, &ae) || ae.LoginStatus() != 0x0201 {
					t.Fatalf("SelectAuthMethod(%q) = %q, %v; want an authentication failure", tt.offered, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("SelectAuthMethod(%q) = %q, %v; want %q", tt.offered, got, err, tt.want)
			}
		})
	}
}

func chapKeysLoose(kvs []string) map[string]string {
	m := map[string]string{}
	for _, s := range kvs {
		k, v, _ := strings.Cut(s, "=")
		m[k] = v
	}
	return m
}

func FuzzCHAPServerFinish(f *testing.F) {
	f.Add("joe", "0x00112233", "1", "0x"+strings.Repeat("ab", 16))
	f.Add("", "0b", "", "")
	f.Add("ann", "0XFFFF", "0x1ff", "0bAAAA")
	f.Fuzz(func(t *testing.T, n, r, i, c string) {
		s := newCHAPServer(testAuth())
		if _, err := s.start(map[string]string{"CHAP_A": "5,7"}); err != nil {
			t.Fatal(err)
		}
		keys := map[string]string{"CHAP_N": n, "CHAP_R": r}
		if i != "" {
			keys["CHAP_I"] = i
		}
		if c != "" {
			keys["CHAP_C"] = c
		}
		if _, err := s.finish(keys); err == nil {
			t.Fatalf("random response accepted: %q", keys)
		}
	})
}

// chapMem is an in-memory backend for the libiscsi CHAP test.
type chapMem struct{ b []byte }

func (m *chapMem) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	return copy(p, m.b[off:]), nil
}
func (m *chapMem) WriteAt(p []byte, off int64) (int, error) { return copy(m.b[off:], p), nil }
func (m *chapMem) Size() (int64, error)                     { return int64(len(m.b)), nil }
func (m *chapMem) Sync() error                              { return nil }
func (m *chapMem) Close() error                             { return nil }

// chapLog collects the server's log for a failure message.
type chapLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *chapLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *chapLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestCHAPInterop logs in with libiscsi's iscsi-inq (CHAP MD5, the only
// algorithm of libiscsi before 1.20) and iscsi-ls (discovery CHAP),
// one-way and mutual, with right and wrong secrets. libiscsi sets T=1 on
// the requests carrying AuthMethod and CHAP_R: the target must answer T=0
// while the CHAP exchange is still going on.
func TestCHAPInterop(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	for _, tool := range []string{"iscsi-inq", "iscsi-ls"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	const iqn = "iqn.2026-11.org.example:chap"
	dev := scsi.NewDevice(scsi.DeviceConfig{Name: "chap0", Type: scsi.TypeDisk, BlockSize: 512}, &chapMem{b: make([]byte, 1<<20)})
	luns := scsi.NewLUNMap(map[scsi.LUN]*scsi.LogicalUnit{0: {Device: dev}})
	tgt := &Target{Name: iqn, Enabled: true, RelTgtPortID: 1, QueuedCommands: 32, LUNs: luns, Auth: *testAuth(),
		Params: Params{HeaderDigest: []access.Digest{access.DigestNone}, DataDigest: []access.Digest{access.DigestNone}, ImmediateData: true,
			MaxRecvDataSegmentLength: 262144, MaxXmitDataSegmentLength: 262144, MaxBurstLength: 1 << 20,
			FirstBurstLength: 65536, MaxOutstandingR2T: 1, DefaultTime2Wait: 2}}
	var log chapLog
	srv := NewServer(slog.New(slog.NewTextHandler(&log, nil)))
	srv.Publish(&Snapshot{Enabled: true, Targets: map[string]*Target{iqn: tgt}, Auth: *testAuth()})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	addr := ln.Addr().String()

	tests := []struct {
		name      string
		tool      string
		user      string // user%password
		targetEnv []string
		ok        bool
	}{
		{"one-way", "iscsi-inq", "joe%joe-secret-12", nil, true},
		{"second user", "iscsi-inq", "ann%ann-secret-12", nil, true},
		{"wrong secret", "iscsi-inq", "joe%ann-secret-12", nil, false},
		{"unknown user", "iscsi-inq", "eve%joe-secret-12", nil, false},
		{"no CHAP", "iscsi-inq", "", nil, false},
		{"mutual", "iscsi-inq", "joe%joe-secret-12",
			[]string{"LIBISCSI_CHAP_TARGET_USERNAME=jim", "LIBISCSI_CHAP_TARGET_PASSWORD=jim-secret-12"}, true},
		{"mutual, target proves the wrong secret", "iscsi-inq", "joe%joe-secret-12",
			[]string{"LIBISCSI_CHAP_TARGET_USERNAME=jim", "LIBISCSI_CHAP_TARGET_PASSWORD=not-jims-secret"}, false},
		{"discovery", "iscsi-ls", "ann%ann-secret-12", nil, true},
		{"discovery, wrong secret", "iscsi-ls", "ann%joe-secret-12", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cred := ""
			if tt.user != "" {
				cred = tt.user + "@"
			}
			url := "iscsi://" + cred + addr
			if tt.tool == "iscsi-inq" {
				url += "/" + iqn + "/0"
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, tt.tool, url)
			cmd.Env = append(os.Environ(), tt.targetEnv...)
			out, err := cmd.CombinedOutput()
			if tt.ok && err != nil {
				// The server logs a refusal after closing the connection.
				for i := 0; i < 50 && log.String() == ""; i++ {
					time.Sleep(10 * time.Millisecond)
				}
				t.Fatalf("%s %s: %v\n%s\nserver log:\n%s", tt.tool, url, err, out, log.String())
			}
			if !tt.ok && err == nil {
				t.Fatalf("%s %s succeeded:\n%s", tt.tool, url, out)
			}
			if tt.ok && tt.tool == "iscsi-ls" && !strings.Contains(string(out), iqn) {
				t.Fatalf("iscsi-ls does not list the target:\n%s", out)
			}
		})
	}
}
