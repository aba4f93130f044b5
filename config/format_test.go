package config

import "testing"

func TestFormat(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{
			name: "indent and align",
			in:   "target \"iqn.2026-11.org.example:a\" {\nqueued_commands=64\n  rsp_timeout = 90\nlun \"0\" {\ndevice=\"d\"\n}\n}\n",
			want: "target \"iqn.2026-11.org.example:a\" {\n  queued_commands = 64\n  rsp_timeout     = 90\n  lun \"0\" {\n    device = \"d\"\n  }\n}\n",
		},
		{
			name: "already canonical",
			in:   "disruptive_changes = \"allow\"\n",
			want: "disruptive_changes = \"allow\"\n",
		},
		{
			name: "comments kept",
			in:   "# portals\niscsi {\n portals = [\"127.0.0.1:3260\"]  # loopback\n}\n",
			want: "# portals\niscsi {\n  portals = [\"127.0.0.1:3260\"] # loopback\n}\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, diags := Format([]byte(tt.in), "fmt.hcl")
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			if string(got) != tt.want {
				t.Fatalf("Format:\n%s\nwant:\n%s", got, tt.want)
			}
			again, _ := Format(got, "fmt.hcl")
			if string(again) != string(got) {
				t.Errorf("not idempotent:\n%s", again)
			}
		})
	}
	// hclwrite would lay "(0.0. 0)" out as "(0.0.0)", which does not
	// parse (FuzzLoad found it): the file is refused, not broken.
	if out, diags := Format([]byte("A{\nA=(0.0. 0)\n}"), "index.hcl"); !diags.HasErrors() || diags[0].Summary != "Cannot format this file" {
		t.Errorf("Format of an index on a number: %q, %v", out, diags)
	}
	if _, diags := Format([]byte("target {\n"), "broken.hcl"); !diags.HasErrors() {
		t.Error("Format accepted a syntax error")
	} else if diags[0].Subject == nil || diags[0].Subject.Filename != "broken.hcl" {
		t.Errorf("syntax error without a subject in broken.hcl: %v", diags[0])
	}
}
