package main

import (
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
)

// Profiling for the benchmark (docs/benchmarks.md, "Where the CPU goes"):
// not a flag, so that it stays out of the usage and the manual. With
// SCSTD_CPUPROFILE=FILE `scstd run` writes a CPU profile of its whole life
// to FILE, with SCSTD_MEMPROFILE=FILE an allocation profile when it stops.
const (
	envCPUProfile = "SCSTD_CPUPROFILE"
	envMemProfile = "SCSTD_MEMPROFILE"
)

// startProfiles starts what the environment asks for and returns the
// function that writes the profiles out; failures are logged, never fatal.
func startProfiles(log *slog.Logger, getenv func(string) string) (stop func()) {
	var cpu *os.File
	if path := getenv(envCPUProfile); path != "" {
		f, err := os.Create(path)
		if err == nil {
			err = pprof.StartCPUProfile(f)
			if err != nil {
				f.Close()
			}
		}
		if err != nil {
			log.Warn("CPU profile not written", "env", envCPUProfile, "err", err)
		} else {
			cpu = f
			log.Info("writing a CPU profile", "file", path)
		}
	}
	memPath := getenv(envMemProfile)
	return func() {
		if cpu != nil {
			pprof.StopCPUProfile()
			if err := cpu.Close(); err != nil {
				log.Warn("CPU profile", "err", err)
			}
		}
		if memPath == "" {
			return
		}
		f, err := os.Create(memPath)
		if err == nil {
			runtime.GC()
			err = pprof.Lookup("allocs").WriteTo(f, 0)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			log.Warn("allocation profile not written", "env", envMemProfile, "err", err)
		}
	}
}
