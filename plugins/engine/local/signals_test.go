package main

import (
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// A SIGTERM that comes while a job starts waits for the start to end, so that no job process
// is left unrecorded.
func TestTermWaitsForJobStart(t *testing.T) {
	t.Parallel()
	e := newEngine(hclog.NewNullLogger())
	term := make(chan os.Signal, 1)
	exited := make(chan struct{})
	go e.exitBetweenStarts(term, func() { close(exited) })

	e.mu.Lock() // a job start in progress, as CreateJob holds the lock
	term <- syscall.SIGTERM
	select {
	case <-exited:
		t.Fatal("the plugin exited while a job was being started")
	case <-time.After(100 * time.Millisecond):
	}
	e.mu.Unlock()
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the plugin did not exit within 30 s of the end of the job start")
	}
}
