package cli

import (
	"log/slog"
	"os"
	"strings"
)

// newLogger returns a text logger on stderr for one component. The level
// comes from CALICO_LOG_LEVEL (debug, info, warn, error; default info).
func newLogger(component string) *slog.Logger {
	level := slog.LevelInfo
	switch strings.ToLower(os.Getenv("CALICO_LOG_LEVEL")) {
	case "debug":
		level = slog.LevelDebug
	case "warn", "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	l := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if component != "" {
		l = l.With("component", component)
	}
	return l
}
