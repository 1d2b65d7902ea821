package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// serverProcess is one estela-server process (api or worker) started by the benchmark.
type serverProcess struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	err     error
}

// stopTimeout is how long a server may take to shut down after SIGTERM before it is killed.
const stopTimeout = 30 * time.Second

// startServer runs `estela-server -config CONFIG command` with its output in WorkDir/name.log.
// The database and Redis URLs go through the environment, so no password is written to disk.
// Inherited environment variables that would override the config file are removed.
func (p *platform) startServer(command, name string, env ...string) (*serverProcess, error) {
	logPath := filepath.Join(p.opts.WorkDir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create log of %s: %w", name, err)
	}
	defer logFile.Close()
	cmd := exec.Command(p.opts.ServerBinary, "-config", p.configPath, command)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(serverEnv(), "DATABASE_URL="+p.dbURL, "REDIS_URL="+p.redisURL, "ESTELA_LOG_LEVEL=info")
	cmd.Env = append(cmd.Env, env...)
	pprofAddr := ""
	if p.opts.Pprof {
		if pprofAddr, err = freeLoopbackAddress(); err != nil {
			return nil, err
		}
		cmd.Env = append(cmd.Env, "ESTELA_PPROF_ADDR="+pprofAddr)
	}
	setParentDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	s := &serverProcess{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		close(s.exited)
	}()
	p.processes = append(p.processes, s)
	p.log.Info("server process started", "name", name, "pid", cmd.Process.Pid, "log", logPath, "pprof", pprofAddr)
	return s, nil
}

// serverEnv returns this process's environment without the variables that estela-server reads
// in place of its config file.
func serverEnv() []string {
	overrides := []string{"ESTELA_LISTEN=", "ESTELA_API_HOST=", "ESTELA_PLUGIN_DIR=", "DATABASE_URL=", "REDIS_URL=", "ESTELA_LOG_LEVEL=", "ESTELA_ADMIN_", "ESTELA_PPROF_ADDR="}
	var env []string
	for _, kv := range os.Environ() {
		keep := true
		for _, prefix := range overrides {
			if strings.HasPrefix(kv, prefix) {
				keep = false
			}
		}
		if keep {
			env = append(env, kv)
		}
	}
	return env
}

// stop sends SIGTERM and waits for the process to exit, killing it after stopTimeout.
func (s *serverProcess) stop() {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(stopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// waitForLog waits until the process's log contains text.
func (s *serverProcess) waitForLog(ctx context.Context, text string, timeout time.Duration) error {
	return poll(ctx, timeout, 100*time.Millisecond, s.name+" to log "+strconv.Quote(text), func() (bool, error) {
		if err := s.exitError(); err != nil {
			return false, err
		}
		data, err := os.ReadFile(s.logPath)
		return bytes.Contains(data, []byte(text)), err
	})
}

// logCounter counts the lines of a process's log that contain a text, from where the log
// ended when the counter was made, reading only what was added since its last call.
type logCounter struct {
	path   string
	text   []byte
	offset int64
	// partial is the end of the last read that was not yet a whole line.
	partial []byte
	count   int
}

func (s *serverProcess) countLog(text string) (*logCounter, error) {
	info, err := os.Stat(s.logPath)
	if err != nil {
		return nil, err
	}
	return &logCounter{path: s.logPath, text: []byte(text), offset: info.Size()}, nil
}

// lines returns how many lines containing the text were written so far.
func (c *logCounter) lines() (int, error) {
	f, err := os.Open(c.path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	data := make([]byte, 1<<20)
	for {
		n, err := f.ReadAt(data, c.offset)
		c.offset += int64(n)
		chunk := append(c.partial, data[:n]...)
		last := bytes.LastIndexByte(chunk, '\n')
		c.count += bytes.Count(chunk[:last+1], c.text)
		c.partial = append([]byte(nil), chunk[last+1:]...)
		if err != nil || n < len(data) {
			return c.count, nil
		}
	}
}

// waitForHTTP waits until GET url returns 200.
func (s *serverProcess) waitForHTTP(ctx context.Context, client *http.Client, url string, timeout time.Duration) error {
	return poll(ctx, timeout, 100*time.Millisecond, s.name+" to answer on "+url, func() (bool, error) {
		if err := s.exitError(); err != nil {
			return false, err
		}
		resp, err := client.Get(url)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

// exitError returns an error with the end of the log when the process has exited.
func (s *serverProcess) exitError() error {
	select {
	case <-s.exited:
	default:
		return nil
	}
	data, _ := os.ReadFile(s.logPath)
	if len(data) == 0 {
		return fmt.Errorf("%s exited (%v) without writing to its log; check that %s is an estela-server binary", s.name, s.err, s.cmd.Path)
	}
	if len(data) > 2000 {
		data = data[len(data)-2000:]
	}
	return fmt.Errorf("%s exited (%v); end of %s:\n%s", s.name, s.err, s.logPath, data)
}

// poll calls check every interval until it returns true or an error, ctx ends or timeout
// passes.
func poll(ctx context.Context, timeout, interval time.Duration, what string, check func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		done, err := check()
		if err != nil || done {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// freeLoopbackAddress returns a 127.0.0.1 address whose port was free a moment ago.
func freeLoopbackAddress() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// errNoProcStatus is returned where /proc/<pid>/status cannot be read, outside Linux.
var errNoProcStatus = errors.New("no /proc status for the process")
