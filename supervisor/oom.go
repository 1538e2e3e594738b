package supervisor

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// cgroupOOMKills returns how many processes the kernel's OOM killer has killed in this
// process's memory cgroup (v2 memory.events, else v1 memory.oom_control). A worker
// that died of SIGKILL while this counter moved was killed for memory.
func cgroupOOMKills() (int, bool) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "": // cgroup v2
			if n, ok := readCounter(filepath.Join("/sys/fs/cgroup", parts[2], "memory.events"), "oom_kill"); ok {
				return n, true
			}
		case strings.Contains(","+parts[1]+",", ",memory,"): // cgroup v1
			if n, ok := readCounter(filepath.Join("/sys/fs/cgroup/memory", parts[2], "memory.oom_control"), "oom_kill"); ok {
				return n, true
			}
		}
	}
	return 0, false
}

func readCounter(path, key string) (int, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 2 && fields[0] == key {
			n, err := strconv.Atoi(fields[1])
			return n, err == nil
		}
	}
	return 0, false
}
