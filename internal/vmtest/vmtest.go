// Package vmtest boots a small QEMU guest for tests that need what this
// host lacks: real SCSI devices and the modules to drive them. The guest is
// Debian's kernel (scripts/vm-kernel.sh fetches it into .state/vm/kernel),
// an initramfs that this package writes itself (busybox from Debian's
// busybox-static, the kernel modules, the files the test adds, and an init
// script), TCG emulation (no KVM here), a virtio-scsi disk backed by a host
// file, and user-mode networking that forwards a host loopback port to a
// port in the guest, with the guest cut off from everything else
// (restrict=on).
//
// The guest's serial console is QEMU's standard input and output: init
// runs the test's start command, prints a marker, and then reads shell
// commands that Run sends. The VM is stopped by the test that started it,
// by PID (SIGTERM, then SIGKILL), in t.Cleanup; the console is logged when
// the test fails.
package vmtest

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Assets are what the guest boots from.
type Assets struct {
	Kernel  string   // vmlinuz
	Modules []string // kernel modules (.ko), loaded in this order
	Busybox string   // a statically linked busybox
	QEMU    string   // qemu-system-x86_64
}

// FindAssets locates the kernel under dir (scripts/vm-kernel.sh's output:
// vmlinuz, modules/order and the modules), a static busybox and QEMU. It
// says what is missing and how to get it.
func FindAssets(dir string) (Assets, error) {
	var a Assets
	var missing []string
	a.Kernel = filepath.Join(dir, "vmlinuz")
	if _, err := os.Stat(a.Kernel); err != nil {
		missing = append(missing, a.Kernel+" (make vm-kernel)")
	}
	order, err := os.ReadFile(filepath.Join(dir, "modules", "order"))
	if err != nil {
		missing = append(missing, filepath.Join(dir, "modules/order")+" (make vm-kernel)")
	}
	for _, m := range strings.Fields(string(order)) {
		a.Modules = append(a.Modules, filepath.Join(dir, "modules", m+".ko"))
	}
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if static(p) {
			a.Busybox = p
			break
		}
	}
	if a.Busybox == "" {
		missing = append(missing, "a static busybox (apt-get install busybox-static)")
	}
	if a.QEMU, err = exec.LookPath("qemu-system-x86_64"); err != nil {
		missing = append(missing, "qemu-system-x86_64 (apt-get install qemu-system-x86)")
	}
	if len(missing) > 0 {
		return a, fmt.Errorf("vmtest: missing %s", strings.Join(missing, ", "))
	}
	return a, nil
}

// static reports whether path is an ELF executable without an interpreter.
func static(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

// File is one file the test puts into the guest.
type File struct {
	Path string // absolute path in the guest
	Data []byte
	Mode os.FileMode
}

// Config describes one guest.
type Config struct {
	Assets Assets
	// Disks are raw image files on the host, each a scsi-hd on one
	// virtio-scsi controller (SCSI address 0:0:i:0 in the guest, i the
	// index); DiskOptions are extra scsi-hd properties per disk
	// (",serial=...").
	Disks       []string
	DiskOptions []string
	// Files are added to the initramfs.
	Files []File
	// Start is the shell command init runs in the background once the
	// modules are loaded and the network is up (the server under test).
	Start string
	// GuestPort is forwarded from HostPort on 127.0.0.1.
	GuestPort, HostPort int
	// MemoryMB is the guest's memory (default 384).
	MemoryMB int
}

// VM is a running guest.
type VM struct {
	t       testing.TB
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	console *console
	mu      sync.Mutex
	seq     int
	stopped bool
	// Booted is how long the guest took from QEMU's start to its ready
	// marker (modules loaded, network up, Start launched).
	Booted time.Duration
}

// readyMarker is what init prints once Start runs. It is written in two
// pieces in the script so that the echo of the script itself never
// matches.
const readyMarker = "VMTEST-READY"

// initScript is the guest's /init.
const initScript = `#!/bin/busybox sh
/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin /proc /sys /dev /run /tmp
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /lib/modules/order); do insmod /lib/modules/$m.ko || echo "vmtest: insmod $m failed"; done
ip link set lo up
ip addr add 10.0.2.15/24 dev eth0
ip link set eth0 up
ip route add default via 10.0.2.2
n=0
while [ "$(ls /sys/class/scsi_generic 2>/dev/null | wc -l)" -lt "$VMTEST_DISKS" ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n+1)); done
stty -echo 2>/dev/null
sh -c "$VMTEST_START" &
echo "VMTEST""-READY"
exec sh
`

// Start boots the guest and waits for its ready marker (at most 3
// minutes). It fails the test when the guest does not come up.
func Start(t testing.TB, cfg Config) *VM {
	t.Helper()
	dir := t.TempDir()
	initrd := filepath.Join(dir, "initrd.cpio")
	if err := writeInitramfs(initrd, cfg); err != nil {
		t.Fatal(err)
	}
	mem := cfg.MemoryMB
	if mem == 0 {
		mem = 384
	}
	args := []string{
		"-nodefaults", "-no-reboot", "-display", "none", "-serial", "stdio", "-monitor", "none",
		"-machine", "pc", "-accel", "tcg", "-cpu", "max", "-smp", "1", "-m", strconv.Itoa(mem),
		"-kernel", cfg.Assets.Kernel, "-initrd", initrd,
		"-append", fmt.Sprintf("console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init VMTEST_DISKS=%d VMTEST_START=%s",
			len(cfg.Disks), "/vmtest-start"),
		"-device", "virtio-scsi-pci,id=scsi0",
		"-netdev", fmt.Sprintf("user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:%d-:%d", cfg.HostPort, cfg.GuestPort),
		"-device", "virtio-net-pci,netdev=net0",
	}
	for i, d := range cfg.Disks {
		opt := ""
		if i < len(cfg.DiskOptions) {
			opt = cfg.DiskOptions[i]
		}
		args = append(args,
			"-drive", fmt.Sprintf("file=%s,if=none,id=disk%d,format=raw,cache=writeback", d, i),
			"-device", fmt.Sprintf("scsi-hd,drive=disk%d,bus=scsi0.0,channel=0,scsi-id=%d,lun=0%s", i, i, opt))
	}
	cmd := exec.Command(cfg.Assets.QEMU, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout // QEMU's own complaints land in the console log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("vmtest: %v", err)
	}
	vm := &VM{t: t, cmd: cmd, stdin: stdin, console: newConsole(stdout)}
	t.Cleanup(vm.Stop)
	if _, err := vm.console.waitFor(readyMarker, 0, 3*time.Minute); err != nil {
		t.Fatalf("vmtest: the guest did not come up: %v\nconsole:\n%s", err, vm.console.text())
	}
	vm.Booted = time.Since(start)
	return vm
}

// Run runs a shell command in the guest and returns its output and exit
// status. It fails the test when the guest does not answer in time.
func (vm *VM) Run(command string, timeout time.Duration) (string, int) {
	vm.t.Helper()
	vm.mu.Lock()
	vm.seq++
	n := vm.seq
	vm.mu.Unlock()
	begin := fmt.Sprintf("@@B%d@@", n)
	end := fmt.Sprintf("@@E%d@@", n)
	from := vm.console.len()
	// Markers are printed from pieces so that an echoed command line
	// never matches them.
	line := fmt.Sprintf("echo '@@B''%d@@'; %s; echo \"@@E\"'%d@@' $?\n", n, command, n)
	if _, err := io.WriteString(vm.stdin, line); err != nil {
		vm.t.Fatalf("vmtest: writing to the console: %v", err)
	}
	out, err := vm.console.waitFor(end, from, timeout)
	if err != nil {
		vm.t.Fatalf("vmtest: %q: %v\nconsole:\n%s", command, err, vm.console.text())
	}
	if i := strings.Index(out, begin); i >= 0 {
		out = out[i+len(begin):]
	}
	body, status, _ := strings.Cut(out[strings.Index(out, "\n")+1:], end)
	code, _ := strconv.Atoi(strings.Fields(status + " -1")[0])
	return strings.TrimSuffix(body, "\n"), code
}

// Console returns everything the guest printed so far.
func (vm *VM) Console() string { return vm.console.text() }

// Stop stops the guest by its PID: SIGTERM, then SIGKILL after 10 s. A
// failed test gets the console in its log.
func (vm *VM) Stop() {
	vm.mu.Lock()
	if vm.stopped {
		vm.mu.Unlock()
		return
	}
	vm.stopped = true
	vm.mu.Unlock()
	p := vm.cmd.Process
	_ = p.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = vm.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.Kill()
		<-done
	}
	if vm.t.Failed() {
		vm.t.Logf("guest console:\n%s", tail(vm.console.text(), 20000))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// console collects the guest's serial output.
type console struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	cond *sync.Cond
	eof  bool
}

func newConsole(r io.Reader) *console {
	c := &console{}
	c.cond = sync.NewCond(&c.mu)
	go func() {
		br := bufio.NewReader(r)
		b := make([]byte, 4096)
		for {
			n, err := br.Read(b)
			c.mu.Lock()
			c.buf.Write(bytes.ReplaceAll(b[:n], []byte("\r"), nil))
			if err != nil {
				c.eof = true
			}
			c.cond.Broadcast()
			c.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return c
}

func (c *console) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Len()
}

func (c *console) text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// waitFor waits until s appears in the output after offset from, and
// returns the output from there to the end of the line that holds s.
func (c *console) waitFor(s string, from int, timeout time.Duration) (string, error) {
	timer := time.AfterFunc(timeout, func() {
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	defer timer.Stop()
	deadline := time.Now().Add(timeout)
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		out := c.buf.String()[from:]
		if i := strings.Index(out, s); i >= 0 {
			if j := strings.IndexByte(out[i:], '\n'); j >= 0 {
				return out[:i+j], nil
			}
		}
		if c.eof {
			return "", errors.New("the guest stopped")
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no %q after %v", s, timeout)
		}
		c.cond.Wait()
	}
}
