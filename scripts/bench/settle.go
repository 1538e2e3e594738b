package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// cpuTicks is the CPU time (user+system, clock ticks) used so far by the server's tree.
func (s *server) cpuTicks() int64 {
	var total int64
	for _, pid := range s.tree() {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
		if err != nil {
			continue
		}
		// Fields after the command name, which may hold spaces: state is field 3,
		// utime and stime are fields 14 and 15.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		total += u + st
	}
	return total
}

// settle waits until the server has finished the work a closed-loop run left queued
// (requests the load generator abandoned at its deadline are still being predicted):
// the next run, on this server or on a neighbour pinned to the same CPUs, must not pay
// for it. Idle means under 2 ticks (20 ms) of CPU in 100 ms; bounded by limit.
func (s *server) settle(limit time.Duration) {
	deadline := time.Now().Add(limit)
	prev := s.cpuTicks()
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		cur := s.cpuTicks()
		if cur-prev < 2 {
			return
		}
		prev = cur
	}
}
