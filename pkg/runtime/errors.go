package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Errors callers branch on; every error this package returns wraps at most
// one of them, plus the endpoint and call that failed.
var (
	ErrSocketMissing = errors.New("socket does not exist")
	ErrNotSocket     = errors.New("not a unix socket")
	ErrPermission    = errors.New("permission denied")
	ErrUnavailable   = errors.New("runtime not reachable")
	ErrTimeout       = errors.New("runtime did not answer in time")
	ErrUnimplemented = errors.New("runtime does not implement the call")
)

// fromGRPC maps a gRPC error to one of the sentinels, keeping the original
// message for the log.
func fromGRPC(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %v", ErrTimeout, err)
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	msg := st.Message()
	switch st.Code() {
	case codes.DeadlineExceeded:
		return fmt.Errorf("%w: %s", ErrTimeout, msg)
	case codes.Unimplemented:
		return fmt.Errorf("%w: %s", ErrUnimplemented, msg)
	case codes.Unavailable:
		switch {
		case strings.Contains(msg, "permission denied"):
			return fmt.Errorf("%w: %s", ErrPermission, msg)
		case strings.Contains(msg, "no such file or directory"):
			return fmt.Errorf("%w: %s", ErrSocketMissing, msg)
		}
		return fmt.Errorf("%w: %s", ErrUnavailable, msg)
	}
	return err
}
