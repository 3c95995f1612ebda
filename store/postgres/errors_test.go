package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cuttledeploy/cuttle"
)

func TestDBErrorKinds(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want cuttle.Kind
	}{
		{context.DeadlineExceeded, cuttle.KindUnavailable},
		{fmt.Errorf("query: %w", context.Canceled), cuttle.KindUnavailable},
		{&pgconn.PgError{Code: "57P01"}, cuttle.KindUnavailable}, // admin shutdown
		{&pgconn.PgError{Code: "53300"}, cuttle.KindUnavailable}, // too many connections
		{&pgconn.PgError{Code: "08006"}, cuttle.KindUnavailable}, // connection failure
		{&pgconn.PgError{Code: "23505"}, cuttle.KindInternal},
		{&pgconn.PgError{Code: "42P01"}, cuttle.KindInternal},
		{fmt.Errorf("dial: %w", syscall.ECONNREFUSED), cuttle.KindUnavailable},
		{io.ErrUnexpectedEOF, cuttle.KindUnavailable},
		{errors.New("something else"), cuttle.KindInternal},
		{cuttle.Errorf(cuttle.KindConflict, "kept"), cuttle.KindConflict},
	} {
		err := dbError(tc.err, "testing")
		if got := cuttle.KindOf(err); got != tc.want {
			t.Errorf("dbError(%v) has kind %d, want %d", tc.err, got, tc.want)
		}
		if !errors.Is(err, tc.err) {
			t.Errorf("dbError(%v) = %v does not wrap its cause", tc.err, err)
		}
	}
	if dbError(nil, "testing") != nil {
		t.Error("dbError(nil) is not nil")
	}
}
