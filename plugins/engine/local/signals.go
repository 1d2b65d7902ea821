package main

import (
	"os"
	"os/signal"
	"syscall"
)

// exitOnTerm makes the plugin exit on SIGTERM, but never while a job is being started.
// systemd stops a service by sending SIGTERM to each of its processes, plugins included. A job
// process started but not yet recorded would be unknown to the next engine, which would start
// the job a second time. Running jobs keep running, and the next engine adopts them.
func (e *localEngine) exitOnTerm() {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	go e.exitBetweenStarts(term, func() { os.Exit(0) })
}

// exitBetweenStarts calls exit after a signal arrives on term, once no job start is in
// progress. exit does not return in production, so the lock stays held.
func (e *localEngine) exitBetweenStarts(term <-chan os.Signal, exit func()) {
	<-term
	e.mu.Lock()
	e.logger.Info("stopping on SIGTERM; running jobs keep running and the next start adopts them")
	exit()
}
