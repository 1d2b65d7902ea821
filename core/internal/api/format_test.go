package api

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

func TestFormatDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		micros int64
		want   string
	}{
		{0, "00:00:00"},
		{83 * 1e6, "00:01:23"},
		{(86400 + 5) * 1e6, "1 00:00:05"},
		{1500000, "00:00:01.500000"},
	}
	for _, tt := range tests {
		if got := formatDuration(tt.micros); got != tt.want {
			t.Errorf("formatDuration(%d) = %q, want %q", tt.micros, got, tt.want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int64
	}{
		{"123", 123e6},
		{"12.5", 12.5e6},
		{"0:00:00", 0},
		{"0:01:23", 83e6},
		{"1 day, 2:03:04", (86400 + 2*3600 + 3*60 + 4) * 1e6},
		{"2 days, 0:00:01", (2*86400 + 1) * 1e6},
		{"1 02:03:04.5", (86400+2*3600+3*60+4)*1e6 + 500000},
	}
	for _, tt := range tests {
		got, err := parseDuration(tt.in)
		if err != nil {
			t.Errorf("parseDuration(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("parseDuration(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
	for _, bad := range []string{"", "soon", "-5", "1:2"} {
		if _, err := parseDuration(bad); err == nil {
			t.Errorf("parseDuration(%q) succeeded, want an error", bad)
		}
	}
}

func TestFormatJobTime(t *testing.T) {
	t.Parallel()
	at := time.Date(2024, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600))
	if got, want := formatJobTime(at), "2024-01-02T02:04:05.000000Z"; got != want {
		t.Errorf("formatJobTime = %q, want %q", got, want)
	}
}

// The job list writes times and durations with appends, not fmt and time.Format. These compare
// both ways over many values.
func TestFormatsMatchFmtAndTimeFormat(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		at := time.Unix(rng.Int64N(420e9)-80e9, rng.Int64N(1e9))
		if got, want := formatJobTime(at), at.UTC().Format("2006-01-02T15:04:05.000000Z"); got != want {
			t.Fatalf("formatJobTime(%v) = %q, want %q", at, got, want)
		}
		micros := rng.Int64N(400 * 86400 * 1e6)
		if rng.IntN(4) == 0 {
			micros -= micros % 1e6
		}
		if got, want := formatDuration(micros), durationWithFmt(micros); got != want {
			t.Fatalf("formatDuration(%d) = %q, want %q", micros, got, want)
		}
	}
}

func durationWithFmt(micros int64) string {
	days, rest := micros/(86400*1e6), micros%(86400*1e6)
	s := fmt.Sprintf("%02d:%02d:%02d", rest/3600e6, rest/60e6%60, rest/1e6%60)
	if days > 0 {
		s = fmt.Sprintf("%d %s", days, s)
	}
	if us := rest % 1e6; us > 0 {
		s += fmt.Sprintf(".%06d", us)
	}
	return s
}
