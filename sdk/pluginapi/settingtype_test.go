package pluginapi

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestSettingTypeSummary(t *testing.T) {
	t.Parallel()
	type settings struct {
		Count   *int              `json:"count"`
		Ratio   float64           `json:"ratio"`
		Name    string            `json:"name"`
		Enabled bool              `json:"enabled"`
		Tags    []string          `json:"tags"`
		Labels  map[string]string `json:"labels"`
	}
	tests := []struct {
		raw  string
		want string
	}{
		{`{"count": "2"}`, "must be a whole number, not a string: write it without quotes, or convert env(...) with tonumber(env(...))"},
		{`{"count": 1.5}`, "must be a whole number, not 1.5"},
		{`{"count": 99999999999999999999}`, "99999999999999999999 is out of range for this setting"},
		{`{"count": true}`, "must be a whole number, not true or false"},
		{`{"ratio": "0.5"}`, "must be a number, not a string: write it without quotes, or convert env(...) with tonumber(env(...))"},
		{`{"name": 3}`, "must be a string, not a number: write it in quotes"},
		{`{"name": false}`, "must be a string, not true or false: write it in quotes"},
		{`{"enabled": "true"}`, "must be true or false, not a string: write it without quotes, or convert env(...) with tobool(env(...))"},
		{`{"tags": "a"}`, "must be a list, not a string"},
		{`{"labels": [1]}`, "must be an object, not a list"},
	}
	for _, tt := range tests {
		var s settings
		var typeErr *json.UnmarshalTypeError
		if err := json.Unmarshal([]byte(tt.raw), &s); !errors.As(err, &typeErr) {
			t.Fatalf("Unmarshal(%s) = %v, want a type error", tt.raw, err)
		}
		if got := SettingTypeSummary(typeErr); got != tt.want {
			t.Errorf("SettingTypeSummary for %s = %q, want %q", tt.raw, got, tt.want)
		}
	}
}
