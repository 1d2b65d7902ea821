package bench

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// setParentDeathSignal asks Linux to send SIGTERM to the child when the benchmark dies, so that
// no server outlives an interrupted run.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}

// killGroupOnCancel runs cmd in a process group of its own, which is killed as a whole when
// the command's context ends. Killing services.sh alone left initdb running, and the folder
// it was writing behind.
func killGroupOnCancel(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}

// memoryMiB reads a kB field of /proc/<pid>/status, such as VmRSS or VmHWM (the peak resident
// set size), in MiB.
func memoryMiB(pid int, field string) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errNoProcStatus, err)
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		value, found := strings.CutPrefix(scanner.Text(), field+":")
		if !found {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(value), "kB")), 64)
		if err != nil {
			return 0, fmt.Errorf("parse %s of process %d: %w", field, pid, err)
		}
		return kb / 1024, nil
	}
	return 0, fmt.Errorf("%w: process %d has no %s", errNoProcStatus, pid, field)
}

// resetPeakRSS sets the process's VmHWM back to its current resident set size (the value 5 of
// /proc/<pid>/clear_refs, Linux 4.0 and later), so that a later VmHWM covers only what ran in
// between.
func resetPeakRSS(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}
