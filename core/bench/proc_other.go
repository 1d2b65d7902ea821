//go:build !linux

package bench

import "os/exec"

func setParentDeathSignal(*exec.Cmd) {}

func killGroupOnCancel(*exec.Cmd) {}

func memoryMiB(int, string) (float64, error) { return 0, errNoProcStatus }

func resetPeakRSS(int) error { return errNoProcStatus }
