package api

import (
	"errors"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestJoinFieldErrors(t *testing.T) {
	t.Parallel()
	if err := joinFieldErrors(nil, nil); err != nil {
		t.Errorf("joinFieldErrors(nil, nil) = %v, want nil", err)
	}

	err := joinFieldErrors(errField("page", "bad page"), nil, errField("status", "bad status"), errField("page", "again"))
	var e *apiError
	if !errors.As(err, &e) || e.status != http.StatusBadRequest {
		t.Fatalf("joinFieldErrors of field errors = %v, want a 400", err)
	}
	want := map[string][]string{"page": {"bad page", "again"}, "status": {"bad status"}}
	if diff := cmp.Diff(want, e.body); diff != "" {
		t.Errorf("merged body (-want +got):\n%s", diff)
	}

	// An error that names no field is returned as it is.
	if err := joinFieldErrors(errField("page", "bad page"), errNotFound); err != errNotFound {
		t.Errorf("joinFieldErrors with a 404 = %v, want the 404", err)
	}
	plain := errors.New("database down")
	if err := joinFieldErrors(nil, plain); err != plain {
		t.Errorf("joinFieldErrors with a plain error = %v, want it unchanged", err)
	}
}
