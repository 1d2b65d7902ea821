package lifecycle

import (
	"errors"
	"testing"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		from, to string
		actor    Actor
		ok       bool
	}{
		{"user stops queued job", InQueue, Stopped, User, true},
		{"user stops waiting job", Waiting, Stopped, User, true},
		{"user stops running job", Running, Stopped, User, true},
		{"user cannot complete", Running, Completed, User, false},
		{"user cannot restart", InQueue, Running, User, false},
		{"user cannot stop finished job", Completed, Stopped, User, false},
		{"job reports running", Waiting, Running, JobProcess, true},
		{"job reports completed", Running, Completed, JobProcess, true},
		{"job reports error", Running, Error, JobProcess, true},
		{"job completes after lost running report", Waiting, Completed, JobProcess, true},
		{"job cannot stop itself", Running, Stopped, JobProcess, false},
		{"job cannot leave stopped", Stopped, Completed, JobProcess, false},
		{"job cannot reopen", Completed, Running, JobProcess, false},
		{"job cannot go back to waiting", Running, Waiting, JobProcess, false},
		{"platform dispatches", InQueue, Waiting, Platform, true},
		{"platform requeues", Waiting, InQueue, Platform, true},
		{"platform marks lost job", Running, Error, Platform, true},
		{"platform cannot complete", Running, Completed, Platform, false},
		{"error is terminal", Error, Completed, Platform, false},
		{"unknown status", Running, "PAUSED", JobProcess, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := Check(tt.from, tt.to, tt.actor)
			if tt.ok && err != nil {
				t.Errorf("Check(%s, %s) = %v, want nil", tt.from, tt.to, err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalidTransition) {
				t.Errorf("Check(%s, %s) = %v, want ErrInvalidTransition", tt.from, tt.to, err)
			}
		})
	}
}

func TestCheckStoppedMessage(t *testing.T) {
	t.Parallel()
	err := Check(Stopped, Completed, JobProcess)
	if !errors.Is(err, ErrJobStopped) {
		t.Fatalf("Check(STOPPED, COMPLETED) = %v, want ErrJobStopped", err)
	}
}
