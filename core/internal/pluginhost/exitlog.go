package pluginhost

import "github.com/hashicorp/go-hclog"

// exitLogger is the logger given to go-plugin, which logs every plugin exit with an error at
// ERROR. systemd stops a service by sending SIGTERM to each of its processes (KillMode's
// default), so the plugins end on that signal as the server shuts down. exitLogger logs exits
// on SIGTERM or SIGINT at INFO. The host logs a warning of its own when it starts an exited
// plugin again.
type exitLogger struct {
	hclog.Logger
}

// goPluginExitMessage is the message go-plugin logs when a plugin process ends.
const goPluginExitMessage = "plugin process exited"

// Error logs at ERROR, except go-plugin's exit message for an exit on SIGTERM or SIGINT.
func (l exitLogger) Error(msg string, args ...any) {
	if msg == goPluginExitMessage && exitedOnStopSignal(args) {
		l.Logger.Info("plugin process exited on a stop signal", args...)
		return
	}
	l.Logger.Error(msg, args...)
}

// exitedOnStopSignal reports whether the "error" value among hclog's key-value args is the
// error of a process ended by SIGTERM or SIGINT, as os/exec words it.
func exitedOnStopSignal(args []any) bool {
	for i := 0; i+1 < len(args); i += 2 {
		if args[i] == "error" {
			return args[i+1] == "signal: terminated" || args[i+1] == "signal: interrupt"
		}
	}
	return false
}
