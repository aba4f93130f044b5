package initiator

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/scstd/scstd/internal/access"
	"github.com/scstd/scstd/iscsi"
)

// CHAP are the credentials of a CHAP login (RFC 7143 §12.1.3).
type CHAP struct {
	// Algorithms are offered as CHAP_A, in this order; empty offers
	// SHA3-256, SHA-256, SHA-1 and MD5.
	Algorithms []access.CHAPAlgorithm
	// Name and Secret answer the target's challenge.
	Name, Secret string
	// TargetSecret, when set, asks the target to authenticate too (mutual
	// CHAP): the target must answer our challenge with it. TargetName,
	// when set, is the CHAP_N the target must give.
	TargetName, TargetSecret string
	// Reflect sends the target's own identifier and challenge back as
	// this side's CHAP_I and CHAP_C (the reflection attack a target must
	// refuse). It implies mutual CHAP.
	Reflect bool
}

// ErrTargetAuth is returned by Login when the target's mutual CHAP answer
// is wrong.
var ErrTargetAuth = errors.New("initiator: the target failed mutual CHAP authentication")

// chapAnswer is the RFC 1994 response H(id || secret || challenge).
func chapAnswer(a access.CHAPAlgorithm, id byte, secret string, challenge []byte) []byte {
	h := a.New()
	h.Write([]byte{id})
	h.Write([]byte(secret))
	h.Write(challenge)
	return h.Sum(nil)
}

// hexValue decodes a 0x hex-constant.
func hexValue(s string) ([]byte, error) {
	if len(s) < 3 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') {
		return nil, fmt.Errorf("initiator: %.32q is not a hex constant", s)
	}
	body := s[2:]
	if len(body)%2 == 1 {
		body = "0" + body
	}
	return hex.DecodeString(body)
}

// chapSecurity runs the security stage with CHAP: AuthMethod, then
// CHAP_A, then CHAP_N and CHAP_R (with CHAP_I and CHAP_C for mutual CHAP),
// leaving the login at the start of the operational stage. It returns the
// algorithm the target chose.
func (c *Conn) chapSecurity(o Options, leading iscsi.Text, itt uint32) (access.CHAPAlgorithm, error) {
	ch := o.CHAP
	step := func(keys iscsi.Text, transit bool) (iscsi.LoginResponse, iscsi.Text, error) {
		req := iscsi.LoginRequest{Transit: transit, CSG: iscsi.StageSecurity, ISID: o.ISID, TSIH: o.TSIH,
			ITT: itt, CmdSN: c.cmdSN, ExpStatSN: c.expStatSN}
		if transit {
			req.NSG = iscsi.StageOperational
		}
		rsp, got, err := c.loginExchange(req, keys)
		if err != nil {
			return rsp, nil, err
		}
		c.Params.Keys = append(c.Params.Keys, got...)
		if rsp.Status != iscsi.LoginSuccess {
			return rsp, got, &LoginError{Status: rsp.Status, Keys: got}
		}
		return rsp, got, nil
	}

	_, got, err := step(append(leading, iscsi.KV{Key: "AuthMethod", Value: "CHAP,None"}), false)
	if err != nil {
		return 0, err
	}
	if m, _ := got.Get("AuthMethod"); m != "CHAP" {
		return 0, fmt.Errorf("initiator: target chose AuthMethod=%q, want CHAP", m)
	}

	algs := ch.Algorithms
	if len(algs) == 0 {
		algs = access.DefaultCHAPAlgorithms
	}
	offer := make([]string, len(algs))
	for i, a := range algs {
		offer[i] = strconv.Itoa(int(a))
	}
	_, got, err = step(iscsi.Text{{Key: "CHAP_A", Value: strings.Join(offer, ",")}}, false)
	if err != nil {
		return 0, err
	}
	av, _ := got.Get("CHAP_A")
	iv, _ := got.Get("CHAP_I")
	cv, _ := got.Get("CHAP_C")
	an, err := strconv.Atoi(av)
	alg := access.CHAPAlgorithm(an)
	if err != nil || !alg.Valid() {
		return 0, fmt.Errorf("initiator: target chose CHAP_A=%q", av)
	}
	id, err := strconv.ParseUint(iv, 10, 8)
	if err != nil {
		return 0, fmt.Errorf("initiator: CHAP_I=%q: %v", iv, err)
	}
	challenge, err := hexValue(cv)
	if err != nil {
		return 0, err
	}

	keys := iscsi.Text{
		{Key: "CHAP_N", Value: ch.Name},
		{Key: "CHAP_R", Value: "0x" + hex.EncodeToString(chapAnswer(alg, byte(id), ch.Secret, challenge))},
	}
	mutual := ch.TargetSecret != "" || ch.Reflect
	var myID byte
	var mine []byte
	if mutual {
		if ch.Reflect {
			myID, mine = byte(id), challenge
		} else {
			buf := make([]byte, 1+max(alg.Size(), 16))
			rand.Read(buf)
			myID, mine = buf[0], buf[1:]
		}
		keys.Add("CHAP_I", strconv.Itoa(int(myID)))
		keys.Add("CHAP_C", "0x"+hex.EncodeToString(mine))
	}
	rsp, got, err := step(keys, true)
	if err != nil {
		return 0, err
	}
	if mutual {
		n, _ := got.Get("CHAP_N")
		r, _ := got.Get("CHAP_R")
		resp, err := hexValue(r)
		if err != nil || (ch.TargetName != "" && n != ch.TargetName) ||
			subtle.ConstantTimeCompare(resp, chapAnswer(alg, myID, ch.TargetSecret, mine)) != 1 {
			return 0, ErrTargetAuth
		}
	}
	if !rsp.Transit || rsp.NSG != iscsi.StageOperational {
		return 0, fmt.Errorf("initiator: target stays in the security stage after CHAP_R (T=%v NSG=%v)", rsp.Transit, rsp.NSG)
	}
	return alg, nil
}
