package config

import "testing"

// TestLogLevel: log_level takes the four level names, is "" when unset
// (the -log-level flag then decides), and a near miss says what was meant.
func TestLogLevel(t *testing.T) {
	for _, tt := range []struct {
		name, src string
		want      LogLevel
		wantErr   string
	}{
		{name: "unset", src: ``, want: ""},
		{name: "debug", src: `log_level = "debug"`, want: LogDebug},
		{name: "info", src: `log_level = "info"`, want: LogInfo},
		{name: "warn", src: `log_level = "warn"`, want: LogWarn},
		{name: "error", src: `log_level = "error"`, want: LogError},
		{name: "upper case", src: `log_level = "DEBUG"`, wantErr: `got "DEBUG". Did you mean "debug"?`},
		{name: "warning", src: `log_level = "warning"`, wantErr: `Did you mean "warn"?`},
		{name: "trace", src: `log_level = "trace"`, wantErr: `The most verbose level is "debug".`},
		{name: "empty", src: `log_level = ""`, wantErr: `Expected "debug", "info", "warn" or "error", got "".`},
		{name: "number", src: `log_level = 2`, wantErr: "Invalid log_level"},
		{name: "in the iscsi block", src: "iscsi {\n  log_level = \"debug\"\n}", wantErr: "Unsupported argument"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := parseExpect(t, tt.src, "log.hcl", tt.wantErr)
			if cfg == nil {
				return
			}
			if cfg.LogLevel != tt.want {
				t.Errorf("LogLevel %q, want %q", cfg.LogLevel, tt.want)
			}
			if _, set := cfg.Attrs["log_level"]; set != (tt.want != "") {
				t.Errorf("Attrs[log_level] set = %v", set)
			}
		})
	}
}
