package iscsi

// CHAP authentication of the security negotiation stage (RFC 7143 §12.1.3,
// RFC 1994), target side.
//
// The exchange, with the keys each step carries:
//
//	initiator                               target
//	AuthMethod=CHAP,None          ──▶
//	                              ◀──       AuthMethod=CHAP        (Auth.SelectAuthMethod)
//	CHAP_A=8,7,5                  ──▶                               (chapServer.start)
//	                              ◀──       CHAP_A=8 CHAP_I=<id> CHAP_C=0x<challenge>
//	CHAP_N=<name> CHAP_R=0x<resp>
//	[CHAP_I=<id2> CHAP_C=0x<c2>]  ──▶                               (chapServer.finish)
//	                              ◀──       [CHAP_N=<out> CHAP_R=0x<resp2>]   (mutual CHAP)
//
// A response is H(id || secret || challenge), H being the digest named by
// CHAP_A. Binary values (CHAP_C, CHAP_R) travel as hex ("0x...") or base64
// ("0b...") constants (RFC 7143 §6.1); the target always sends hex, which
// every initiator reads (libiscsi reads nothing else).
//
// Seam for login.go: when Auth.SelectAuthMethod returns "CHAP", login
// creates one chapServer per connection with newCHAPServer(&target.Auth)
// (or the discovery Auth), passes the keys of the next security-stage Login
// Request to start and those of the one after to finish, and appends the
// returned "Key=Value" strings to its Login Response. Either method's error
// is an *AuthError whose LoginStatus is the status to answer (0201h
// authentication failure, 0200h initiator error); the connection is closed
// after that response. The security stage may transit to the next stage
// only after finish succeeded (chapServer.done).

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/scstd/scstd/internal/access"
)

// chapStrength orders the CHAP algorithms (access.CHAPAlgorithm, the
// configuration's chap_algorithms) from weakest (1) to strongest; 0 for
// one scstd does not implement.
func chapStrength(a access.CHAPAlgorithm) int {
	if !a.Valid() {
		return 0
	}
	return int(a-access.CHAPMD5) + 1
}

// chapResponse computes the RFC 1994 response H(id || secret || challenge).
func chapResponse(a access.CHAPAlgorithm, id byte, secret, challenge []byte) []byte {
	h := a.New()
	h.Write([]byte{id})
	h.Write(secret)
	h.Write(challenge)
	return h.Sum(nil)
}

// verifyResponse reports, in constant time with respect to the secret and
// the expected response, whether response answers challenge with identifier
// id under secret.
func verifyResponse(a access.CHAPAlgorithm, id byte, secret, challenge, response []byte) bool {
	if !a.Valid() {
		return false
	}
	return subtle.ConstantTimeCompare(chapResponse(a, id, secret, challenge), response) == 1
}

// Limits on challenges, in bytes of binary value.
const (
	// chapMinChallenge is the shortest challenge the target accepts from an
	// initiator for mutual CHAP, and the shortest it sends.
	chapMinChallenge = 16
	// chapMaxBinary is RFC 7143's limit on the binary length of CHAP_C
	// and CHAP_R.
	chapMaxBinary = 1024
)

// newCHAPChallenge returns a fresh random identifier and challenge for a.
// The challenge is as long as a's digest (at least chapMinChallenge bytes).
func newCHAPChallenge(a access.CHAPAlgorithm) (id byte, challenge []byte) {
	return newCHAPChallengeFrom(rand.Reader, a)
}

func newCHAPChallengeFrom(r io.Reader, a access.CHAPAlgorithm) (id byte, challenge []byte) {
	n := max(a.Size(), chapMinChallenge)
	buf := make([]byte, 1+n)
	if _, err := io.ReadFull(r, buf); err != nil {
		// crypto/rand.Reader never fails (it aborts the program instead);
		// only a test reader can get here.
		panic("iscsi: CHAP challenge: " + err.Error())
	}
	return buf[0], buf[1:]
}

// chooseAlgorithm picks, among the CHAP_A values the initiator offered (the
// comma-separated list already split), the strongest one in allowed (nil or
// empty: access.DefaultCHAPAlgorithms). Values that are not decimal numbers or that
// scstd does not know are ignored, as RFC 7143 §6.2 asks of unknown list
// values. The order of allowed does not matter: the strongest common
// algorithm always wins.
func chooseAlgorithm(offered []string, allowed []access.CHAPAlgorithm) (access.CHAPAlgorithm, bool) {
	if len(allowed) == 0 {
		allowed = access.DefaultCHAPAlgorithms
	}
	var best access.CHAPAlgorithm
	for _, s := range offered {
		n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 8)
		if err != nil {
			continue
		}
		a := access.CHAPAlgorithm(n)
		if !a.Valid() || chapStrength(a) <= chapStrength(best) {
			continue
		}
		for _, ok := range allowed {
			if ok == a {
				best = a
				break
			}
		}
	}
	return best, best != 0
}

// encodeCHAPBinary encodes b as an RFC 7143 §6.1 hex-constant ("0x" and
// two lower-case hex digits per byte).
func encodeCHAPBinary(b []byte) string {
	out := make([]byte, 2+hex.EncodedLen(len(b)))
	out[0], out[1] = '0', 'x'
	hex.Encode(out[2:], b)
	return string(out)
}

// decodeCHAPBinary decodes a large-binary-value: a hex-constant ("0x" or
// "0X", an odd digit count meaning a leading zero nibble) or a
// base64-constant ("0b" or "0B", RFC 4648 standard alphabet, padding
// optional). The binary length must be 1..chapMaxBinary.
func decodeCHAPBinary(s string) ([]byte, error) {
	if len(s) < 3 || s[0] != '0' {
		return nil, fmt.Errorf("binary value %.16q is neither 0x-hex nor 0b-base64", s)
	}
	body := s[2:]
	var b []byte
	var err error
	switch s[1] {
	case 'x', 'X':
		if len(body) > 2*chapMaxBinary {
			return nil, fmt.Errorf("binary value longer than %d bytes", chapMaxBinary)
		}
		if len(body)%2 == 1 {
			body = "0" + body
		}
		b, err = hex.DecodeString(body)
	case 'b', 'B':
		if len(body) > base64.StdEncoding.EncodedLen(chapMaxBinary) {
			return nil, fmt.Errorf("binary value longer than %d bytes", chapMaxBinary)
		}
		if strings.HasSuffix(body, "=") {
			b, err = base64.StdEncoding.Strict().DecodeString(body)
		} else {
			b, err = base64.RawStdEncoding.Strict().DecodeString(body)
		}
	default:
		return nil, fmt.Errorf("binary value %.16q is neither 0x-hex nor 0b-base64", s)
	}
	if err != nil {
		return nil, fmt.Errorf("malformed binary value: %v", err)
	}
	if len(b) == 0 || len(b) > chapMaxBinary {
		return nil, fmt.Errorf("binary value of %d bytes (expected 1..%d)", len(b), chapMaxBinary)
	}
	return b, nil
}

// parseCHAPIdentifier parses a CHAP_I value: a decimal or hex numerical
// value in 0..255.
func parseCHAPIdentifier(s string) (byte, error) {
	var n uint64
	var err error
	if len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		n, err = strconv.ParseUint(s[2:], 16, 8)
	} else {
		n, err = strconv.ParseUint(s, 10, 8)
	}
	if err != nil {
		return 0, fmt.Errorf("CHAP_I %.16q is not a number in 0..255", s)
	}
	return byte(n), nil
}

// AuthErrorKind classifies a failed security negotiation by the Login
// Response status it calls for.
type AuthErrorKind uint8

// The kinds of AuthError.
const (
	// AuthFailed: wrong credentials, no common algorithm, a policy refusal
	// (status 0201h, "authentication failure").
	AuthFailed AuthErrorKind = iota + 1
	// AuthMalformed: a missing key or an undecodable value (status 0200h,
	// "initiator error").
	AuthMalformed
)

// String returns the kind's name.
func (k AuthErrorKind) String() string {
	switch k {
	case AuthFailed:
		return "authentication failure"
	case AuthMalformed:
		return "initiator error"
	}
	return "AuthErrorKind(" + strconv.Itoa(int(k)) + ")"
}

// AuthError is a failed security negotiation. Its text names the CHAP user
// and the reason, never a secret, so that it can be logged as it is.
type AuthError struct {
	Kind AuthErrorKind
	// User is the CHAP name the initiator gave, if it got that far.
	User string
	// Reason says what went wrong, for the log.
	Reason string
}

// Error implements error.
func (e *AuthError) Error() string {
	if e.User != "" {
		return fmt.Sprintf("%v: CHAP user %q: %s", e.Kind, e.User, e.Reason)
	}
	return fmt.Sprintf("%v: %s", e.Kind, e.Reason)
}

// LoginStatus returns the Login Response status (class << 8 | detail) that
// answers e: 0201h for AuthFailed, 0200h for AuthMalformed.
func (e *AuthError) LoginStatus() uint16 {
	if e.Kind == AuthMalformed {
		return 0x0200
	}
	return 0x0201
}

func authFailed(user, format string, args ...any) *AuthError {
	return &AuthError{Kind: AuthFailed, User: user, Reason: fmt.Sprintf(format, args...)}
}

func authMalformed(user, format string, args ...any) *AuthError {
	return &AuthError{Kind: AuthMalformed, User: user, Reason: fmt.Sprintf(format, args...)}
}

// chapState is where a chapServer is in the exchange.
type chapState uint8

const (
	chapWantAlgorithm chapState = iota // waiting for CHAP_A
	chapWantResponse                   // challenge sent, waiting for CHAP_N/CHAP_R
	chapDone                           // initiator authenticated
	chapFailed                         // a step failed; the login must end
)

// String names the state, for logs and test failures.
func (s chapState) String() string {
	switch s {
	case chapWantAlgorithm:
		return "want-algorithm"
	case chapWantResponse:
		return "want-response"
	case chapDone:
		return "done"
	case chapFailed:
		return "failed"
	}
	return "chapState(" + strconv.Itoa(int(s)) + ")"
}

// chapServer runs one CHAP exchange for one login connection, target side.
// It is not safe for concurrent use (a login is one goroutine).
type chapServer struct {
	auth  *Auth
	rand  io.Reader // source of identifiers and challenges
	state chapState

	alg       access.CHAPAlgorithm
	id        byte
	challenge []byte
	user      string // authenticated CHAP name
	mutual    bool
	// gate, when set, is asked before a response is checked: it waits
	// for the throttle (throttle.go) and returns the function that
	// records the outcome, or an error to answer instead.
	gate func(user string) (done func(ok bool), err error)
}

// newCHAPServer returns the CHAP exchange for a login against a, which must
// have incoming users (a.Required()).
func newCHAPServer(a *Auth) *chapServer {
	return &chapServer{auth: a, rand: rand.Reader}
}

// start takes the keys of the Login Request that carries CHAP_A and returns
// the keys to answer with: CHAP_A, CHAP_I and CHAP_C.
func (c *chapServer) start(keys map[string]string) ([]string, error) {
	if c.state != chapWantAlgorithm {
		c.state = chapFailed
		return nil, authMalformed("", "CHAP_A out of sequence")
	}
	c.state = chapFailed
	offer, ok := keys["CHAP_A"]
	if !ok {
		return nil, authMalformed("", "AuthMethod=CHAP but no CHAP_A")
	}
	alg, ok := chooseAlgorithm(strings.Split(offer, ","), c.auth.Algorithms)
	if !ok {
		return nil, authFailed("", "no common CHAP algorithm: initiator offers CHAP_A=%.64s, target allows %v",
			offer, algorithmNames(c.auth.Algorithms))
	}
	c.alg = alg
	c.id, c.challenge = newCHAPChallengeFrom(c.rand, alg)
	c.state = chapWantResponse
	return []string{
		"CHAP_A=" + strconv.Itoa(int(alg)),
		"CHAP_I=" + strconv.Itoa(int(c.id)),
		"CHAP_C=" + encodeCHAPBinary(c.challenge),
	}, nil
}

// finish takes the keys of the Login Request that carries CHAP_N and
// CHAP_R (and CHAP_I and CHAP_C when the initiator wants mutual CHAP),
// checks the response against every incoming user of that name, and
// returns the keys to answer with: nothing, or CHAP_N and CHAP_R of the
// outgoing user for mutual CHAP.
func (c *chapServer) finish(keys map[string]string) ([]string, error) {
	if c.state != chapWantResponse {
		c.state = chapFailed
		return nil, authMalformed("", "CHAP_R out of sequence")
	}
	c.state = chapFailed
	name, okN := keys["CHAP_N"]
	resp, okR := keys["CHAP_R"]
	if !okN || !okR {
		return nil, authMalformed(name, "CHAP_N and CHAP_R are both required")
	}
	r, err := decodeCHAPBinary(resp)
	if err != nil {
		return nil, authMalformed(name, "CHAP_R: %v", err)
	}

	// Mutual CHAP: check the initiator's challenge before doing anything
	// with it, including refusing a reflection of ours (RFC 7143 §12.1.3).
	ci, okI := keys["CHAP_I"]
	cc, okC := keys["CHAP_C"]
	var mid byte
	var mc []byte
	if okI || okC {
		if !okI || !okC {
			return nil, authMalformed(name, "mutual CHAP needs both CHAP_I and CHAP_C")
		}
		if mid, err = parseCHAPIdentifier(ci); err != nil {
			return nil, authMalformed(name, "%v", err)
		}
		if mc, err = decodeCHAPBinary(cc); err != nil {
			return nil, authMalformed(name, "CHAP_C: %v", err)
		}
		if len(mc) < chapMinChallenge {
			return nil, authFailed(name, "initiator challenge of %d bytes is too short (at least %d)", len(mc), chapMinChallenge)
		}
		if bytes.Equal(mc, c.challenge) {
			return nil, authFailed(name, "initiator reflected the target's challenge")
		}
		if c.auth.Outgoing == nil {
			return nil, authFailed(name, "initiator asks the target to authenticate (mutual CHAP) but no outgoing user is configured")
		}
	}

	ok := false
	if c.gate != nil {
		done, err := c.gate(name)
		if err != nil {
			return nil, err
		}
		defer func() { done(ok) }()
	}
	if ok = c.auth.verify(c.alg, name, c.id, c.challenge, r); !ok {
		return nil, authFailed(name, "wrong CHAP response or unknown user (%v)", c.alg)
	}
	c.user = name
	c.state = chapDone
	if mc == nil {
		return nil, nil
	}
	c.mutual = true
	out := c.auth.Outgoing
	return []string{
		"CHAP_N=" + out.Name,
		"CHAP_R=" + encodeCHAPBinary(chapResponse(c.alg, mid, out.Secret, mc)),
	}, nil
}

// done reports whether the initiator has been authenticated.
func (c *chapServer) done() bool { return c.state == chapDone }

// User returns the authenticated CHAP name ("" before finish succeeded).
func (c *chapServer) User() string { return c.user }

func algorithmNames(as []access.CHAPAlgorithm) []string {
	if len(as) == 0 {
		as = access.DefaultCHAPAlgorithms
	}
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return s
}
