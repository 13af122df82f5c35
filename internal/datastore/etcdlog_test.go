package datastore

import (
	"errors"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func TestEtcdLogFilter(t *testing.T) {
	storage := zapcore.Entry{Level: zapcore.ErrorLevel, Message: "failed to update storage version"}
	if !benignStartupError(storage, []zapcore.Field{zap.Error(errors.New("cannot detect storage schema version: missing term information"))}) {
		t.Error("benign start-up error not recognised")
	}
	if benignStartupError(storage, []zapcore.Field{zap.Error(errors.New("disk full"))}) {
		t.Error("real storage error hidden")
	}
}
