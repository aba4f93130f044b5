package hctl

import "testing"

func TestValid(t *testing.T) {
	for s, want := range map[string]bool{
		"0:0:1:0":                    true,
		"12:3:45:678":                true,
		"0:0:0:18446744073709551615": true,  // a 64-bit LUN
		"4294967296:0:0:0":           false, // a host beyond 32 bits
		"/dev/sg2":                   false,
		"0:0:1":                      false,
		"a:b:c:d":                    false,
		"0:0:1:0:0":                  false,
		"0:0:+1:0":                   false,
		"0::1:0":                     false,
		"":                           false,
	} {
		if Valid(s) != want {
			t.Errorf("Valid(%q) = %v", s, !want)
		}
	}
}
