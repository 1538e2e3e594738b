package proctree

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestStatFieldsCommandWithParens(t *testing.T) {
	f := StatFields([]byte("42 (drum (worker) 1) S 7 42 42 0 -1"))
	if len(f) < 2 || f[0] != "S" || f[1] != "7" {
		t.Fatalf("fields %v", f)
	}
}

func TestTreeOfAFakeProc(t *testing.T) {
	root := t.TempDir()
	for pid, stat := range map[string]string{
		"1": "1 (init) S 0", "10": "10 (drum server) S 1", "11": "11 (drum worker) S 10",
		"12": "12 (python3) S 11", "13": "13 (zombie) Z 10", "self": "x",
	} {
		if err := os.MkdirAll(filepath.Join(root, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, pid, "stat"), []byte(stat), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := Tree(root, 10); len(got) != 3 || got[0] != 10 || got[1] != 11 || got[2] != 12 {
		t.Fatalf("tree %v, want [10 11 12] (zombie 13 left out)", got)
	}
	if Alive(root, 13) || !Alive(root, 12) || Alive(root, 99) {
		t.Fatal("Alive: zombies and missing pids are not alive")
	}
}

func TestTreeOfThisProcess(t *testing.T) {
	cmd := exec.Command("sleep", "5")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep binary")
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	tree := Tree("/proc", os.Getpid())
	for _, p := range tree {
		if p == cmd.Process.Pid {
			return
		}
	}
	t.Fatalf("child %d not in this process's tree %v", cmd.Process.Pid, tree)
}
