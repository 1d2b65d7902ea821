package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// exitStatus is the exit code and signal of a job's main process.
type exitStatus struct {
	// known is false for a process adopted after a restart: it is not this
	// process's child, so its exit status cannot be read.
	known  bool
	code   int32
	signal syscall.Signal // 0 unless a signal killed it
}

// process is a job's running main process. The job runs in its own process
// group, whose id is the main process's pid.
type process interface {
	// signal sends sig to the job's process group.
	signal(sig syscall.Signal) error
	// wait blocks until the main process exits.
	wait() exitStatus
}

// childProcess is a job process this engine started.
type childProcess struct {
	cmd *exec.Cmd
}

func (c *childProcess) signal(sig syscall.Signal) error {
	return syscall.Kill(-c.cmd.Process.Pid, sig)
}

func (c *childProcess) wait() exitStatus {
	_ = c.cmd.Wait() // ProcessState records how it ended
	status, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok {
		return exitStatus{known: true, code: int32(c.cmd.ProcessState.ExitCode())}
	}
	if status.Signaled() {
		return exitStatus{known: true, code: 128 + int32(status.Signal()), signal: status.Signal()}
	}
	return exitStatus{known: true, code: int32(status.ExitStatus())}
}

// adoptedProcess is a job process started by an earlier run of this plugin.
// It is identified by pid and start time, so a reused pid is not mistaken
// for it.
type adoptedProcess struct {
	pid          int
	startTicks   uint64
	pollInterval time.Duration
}

func (a *adoptedProcess) signal(sig syscall.Signal) error {
	if !processAlive(a.pid, a.startTicks) {
		return syscall.ESRCH
	}
	return syscall.Kill(-a.pid, sig)
}

// wait polls /proc, because only a parent can wait for a process.
func (a *adoptedProcess) wait() exitStatus {
	for processAlive(a.pid, a.startTicks) {
		time.Sleep(a.pollInterval)
	}
	return exitStatus{}
}

// processAlive reports whether pid is a live process (not a zombie) that
// started at startTicks.
func processAlive(pid int, startTicks uint64) bool {
	state, ticks, err := readProcStat(pid)
	if err != nil {
		return false
	}
	return ticks == startTicks && state != "Z" && state != "X"
}

// readProcStat returns the state and start time of pid from
// /proc/<pid>/stat: fields 3 and 22, the start time in clock ticks since
// boot (proc(5)).
func readProcStat(pid int) (string, uint64, error) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", 0, err
	}
	// The command name in field 2 is in parentheses and may contain spaces
	// and parentheses itself, so the fields after it are found from the last ')'.
	end := strings.LastIndexByte(string(raw), ')')
	if end < 0 {
		return "", 0, errors.New("malformed /proc stat line")
	}
	fields := strings.Fields(string(raw[end+1:]))
	const startTimeIndex = 22 - 3 // field 22, counted from field 3
	if len(fields) <= startTimeIndex {
		return "", 0, fmt.Errorf("/proc/%d/stat has %d fields after the command name", pid, len(fields))
	}
	ticks, err := strconv.ParseUint(fields[startTimeIndex], 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("parse start time of pid %d: %w", pid, err)
	}
	return fields[0], ticks, nil
}
