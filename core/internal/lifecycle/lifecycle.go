// Package lifecycle is the job state machine: which status changes are allowed, and who may
// make them. Every writer of a job's status checks with it first.
//
//	IN_QUEUE ──dispatch──▶ WAITING ──job──▶ RUNNING ──job──▶ COMPLETED | ERROR
//	IN_QUEUE, WAITING, RUNNING ──user──▶ STOPPED
//	WAITING, RUNNING ──platform──▶ ERROR (the engine lost or failed the job)
//
// COMPLETED, ERROR and STOPPED are terminal: nothing leaves them.
package lifecycle

import (
	"errors"
	"fmt"
)

// Job statuses.
const (
	InQueue   = "IN_QUEUE"
	Waiting   = "WAITING"
	Running   = "RUNNING"
	Completed = "COMPLETED"
	Error     = "ERROR"
	Stopped   = "STOPPED"
)

// Actor is the party that requests a status change.
type Actor int

const (
	// User is a person or client acting through a user token.
	User Actor = iota
	// JobProcess is the job itself, reporting through its job token.
	JobProcess
	// Platform is the dispatcher and the reconciler.
	Platform
)

// ErrInvalidTransition is wrapped by every refusal of Check.
var ErrInvalidTransition = errors.New("invalid status transition")

// ErrJobStopped is returned for any change to a stopped job. Its text is the message estela
// clients know.
var ErrJobStopped = fmt.Errorf("%w: Job is stopped", ErrInvalidTransition)

// Valid reports whether s is one of the six statuses.
func Valid(s string) bool {
	switch s {
	case InQueue, Waiting, Running, Completed, Error, Stopped:
		return true
	}
	return false
}

// Terminal reports whether s is a status a job never leaves.
func Terminal(s string) bool {
	return s == Completed || s == Error || s == Stopped
}

// allowed lists, per actor, the status changes it may make.
var allowed = map[Actor]map[string][]string{
	User: {
		InQueue: {Stopped},
		Waiting: {Stopped},
		Running: {Stopped},
	},
	JobProcess: {
		// A job may report COMPLETED or ERROR while still WAITING when its RUNNING report
		// was lost on the way.
		Waiting: {Running, Completed, Error},
		Running: {Completed, Error},
	},
	Platform: {
		InQueue: {Waiting, Error},
		Waiting: {InQueue, Running, Error},
		Running: {Error},
	},
}

// Check returns nil when actor may move a job from one status to another, and an error
// wrapping ErrInvalidTransition that gives the reason otherwise.
func Check(from, to string, actor Actor) error {
	if !Valid(to) {
		return fmt.Errorf("%w: unknown status %q", ErrInvalidTransition, to)
	}
	if from == Stopped {
		return ErrJobStopped
	}
	if Terminal(from) {
		return fmt.Errorf("%w: the job already ended with status %s", ErrInvalidTransition, from)
	}
	for _, next := range allowed[actor][from] {
		if next == to {
			return nil
		}
	}
	if actor == User {
		return fmt.Errorf("%w: a user may only set status STOPPED, and only on a job that has not ended", ErrInvalidTransition)
	}
	return fmt.Errorf("%w: from %s to %s", ErrInvalidTransition, from, to)
}
