package main

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"
)

// startLog is what a 10,000-LUN start writes before "scstd running":
// 21,000 "change applied" records.
func startLog() []byte {
	var b bytes.Buffer
	b.WriteString(`{"time":"2026-12-07T13:20:31.002Z","level":"INFO","msg":"open file limit","limit":20000}` + "\n")
	for i := range 21000 {
		fmt.Fprintf(&b, `{"time":"2026-12-07T13:20:31.314Z","level":"INFO","msg":"change applied","generation":1,"op":"AddDevice","address":"device.n%d","attribute":"","old":"","new":"handler = \"vdisk_nullio\", size = 1GiB","impact":"hot","reason":""}`+"\n", i)
	}
	b.WriteString(`{"time":"2026-12-07T13:20:31.330Z","level":"INFO","msg":"scstd running","version":"dev"}` + "\n")
	return b.Bytes()
}

func BenchmarkDaemonRead(b *testing.B) {
	log := startLog()
	b.SetBytes(int64(len(log)))
	for b.Loop() {
		d := &daemon{exited: make(chan struct{})}
		d.changed = sync.NewCond(&d.mu)
		d.read(bytes.NewReader(log))
		if _, _, err := d.waitRecord("scstd running", 0, time.Second); err != nil {
			b.Fatal(err)
		}
	}
}

func TestRecordMsg(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{`{"time":"2026-12-07T13:20:31.330Z","level":"INFO","msg":"scstd running","version":"dev"}`, "scstd running"},
		{`{"time":"t","level":"WARN","msg":"a \"quoted\" word","k":1}`, `a "quoted" word`},
		{`{"time":"t","level":"INFO","msg":"tab\tthere"}`, "tab\tthere"},
		{`{"time":"t","level":"INFO","msg":""}`, ""},
		{`{"time":"t","level":"INFO"}`, ""},
		{`time=t level=INFO msg="scstd running"`, ""},
		{`{"time":"t","msg":"cut`, ""},
		{``, ""},
	} {
		if got := recordMsg([]byte(tc.line)); got != tc.want {
			t.Errorf("recordMsg(%s) = %q, want %q", tc.line, got, tc.want)
		}
	}
}
