// Package proctree reads the process tree from /proc: drum's /stats/ lists the server's
// processes, and the tests and benchmarks follow the processes a server starts.
package proctree

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// StatFields returns the fields of a /proc/PID/stat line after the command name, which
// may itself hold spaces and parentheses: [0] is the state, [1] the parent pid.
func StatFields(stat []byte) []string {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(stat[i+1:]))
}

// Children maps every live (not zombie) process under procRoot (normally "/proc") to
// its children's pids, sorted, from one pass over the directory.
func Children(procRoot string) map[int][]int {
	out := map[int][]int{}
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return out
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(procRoot, e.Name(), "stat"))
		if err != nil {
			continue
		}
		f := StatFields(b)
		if len(f) < 2 || f[0] == "Z" {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil {
			out[ppid] = append(out[ppid], pid)
		}
	}
	for _, c := range out {
		sort.Ints(c)
	}
	return out
}

// Descendants lists pid's descendants, depth first.
func Descendants(children map[int][]int, pid int) []int {
	var out []int
	for _, c := range children[pid] {
		out = append(out, c)
		out = append(out, Descendants(children, c)...)
	}
	return out
}

// Tree is pid followed by all its descendants.
func Tree(procRoot string, pid int) []int {
	return append([]int{pid}, Descendants(Children(procRoot), pid)...)
}

// Alive reports whether pid exists under procRoot and is not a zombie.
func Alive(procRoot string, pid int) bool {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	f := StatFields(b)
	return len(f) > 0 && f[0] != "Z"
}
