package pluginhost

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestExitLoggerLevels(t *testing.T) {
	t.Parallel()
	tests := []struct {
		exit      string
		wantLevel string
	}{
		{"signal: terminated", "[INFO]"},
		{"signal: interrupt", "[INFO]"},
		{"signal: killed", "[ERROR]"},
		{"exit status 2", "[ERROR]"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		log := exitLogger{hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Info})}
		log.Error(goPluginExitMessage, "plugin", "/bin/engine", "id", 42, "error", tt.exit)
		if !strings.Contains(out.String(), tt.wantLevel) {
			t.Errorf("exit %q logged %q, want level %s", tt.exit, out.String(), tt.wantLevel)
		}
		if !strings.Contains(out.String(), tt.exit) {
			t.Errorf("exit %q logged %q, want the exit error in the line", tt.exit, out.String())
		}
	}

	var out bytes.Buffer
	log := exitLogger{hclog.New(&hclog.LoggerOptions{Output: &out})}
	log.Error("another failure", "error", "signal: terminated")
	if !strings.Contains(out.String(), "[ERROR]") {
		t.Errorf("another message logged %q, want it at ERROR", out.String())
	}
}
