package pluginapi

import (
	"errors"
	"testing"

	"github.com/estela-go/estela-go/sdk/errdefs"
)

func TestConfigureResponseErr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		diagnostics []Diagnostic
		want        string
	}{
		{"empty", nil, ""},
		{"warning only", []Diagnostic{{Severity: SeverityWarning, Summary: "slow disk", Path: "data_dir"}}, ""},
		{
			"errors with paths",
			[]Diagnostic{
				{Severity: SeverityError, Summary: "missing", Path: "data_dir"},
				{Severity: SeverityWarning, Summary: "ignored", Path: "x"},
				{Severity: SeverityError, Summary: "not an object", Detail: "Write the block as name = value lines."},
			},
			"invalid settings: data_dir: missing; not an object (Write the block as name = value lines)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp := &ConfigureResponse{Diagnostics: tt.diagnostics}
			err := resp.Err()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Err() = %v, want nil", err)
				}
				if resp.HasErrors() {
					t.Error("HasErrors() = true, want false")
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Err() = %v, want %q", err, tt.want)
			}
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Errorf("Err() does not wrap errdefs.ErrInvalid")
			}
			if !resp.HasErrors() {
				t.Error("HasErrors() = false, want true")
			}
		})
	}
}

func TestAddHelpers(t *testing.T) {
	t.Parallel()
	var resp ConfigureResponse
	resp.AddError("registry.server", "missing", "set registry.server")
	resp.AddWarning("python", "old", "")
	if len(resp.Diagnostics) != 2 {
		t.Fatalf("got %d diagnostics, want 2", len(resp.Diagnostics))
	}
	if got := resp.Diagnostics[0]; got.Severity != SeverityError || got.Path != "registry.server" || got.Detail != "set registry.server" {
		t.Errorf("first diagnostic = %+v", got)
	}
	if got := resp.Diagnostics[1]; got.Severity != SeverityWarning || got.Path != "python" {
		t.Errorf("second diagnostic = %+v", got)
	}
}
