package scheduler_test

import (
	"errors"
	"testing"
	"time"

	"github.com/estela-go/estela-go/core/internal/scheduler"
)

func TestParseValidSchedules(t *testing.T) {
	t.Parallel()
	from := time.Date(2024, 2, 27, 10, 0, 30, 0, time.UTC) // a Tuesday
	tests := []struct {
		expr string
		want time.Time
	}{
		{"* * * * *", time.Date(2024, 2, 27, 10, 1, 0, 0, time.UTC)},
		{"*/15 * * * *", time.Date(2024, 2, 27, 10, 15, 0, 0, time.UTC)},
		{"0 3 * * *", time.Date(2024, 2, 28, 3, 0, 0, 0, time.UTC)},
		{"30 9 * * MON-FRI", time.Date(2024, 2, 28, 9, 30, 0, 0, time.UTC)},
		{"0 0 29 2 *", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)},
		{"0 0 1 jan,jul ?", time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC)},
		{"  5  4 * * 0 ", time.Date(2024, 3, 3, 4, 5, 0, 0, time.UTC)},
		// Both day fields restricted: either one matching fires, as in Vixie cron.
		{"0 12 1 * 3", time.Date(2024, 2, 28, 12, 0, 0, 0, time.UTC)},
		// 7 is Sunday, as in Vixie cron and croniter.
		{"0 0 * * 7", time.Date(2024, 3, 3, 0, 0, 0, 0, time.UTC)},
		{"0 0 * * 6-7", time.Date(2024, 3, 2, 0, 0, 0, 0, time.UTC)},
		{"0 0 * * 1-7/6", time.Date(2024, 3, 3, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			t.Parallel()
			sched, err := scheduler.Parse(tt.expr)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.expr, err)
			}
			if got := sched.Next(from); !got.Equal(tt.want) || got.Location() != time.UTC {
				t.Errorf("Next(%s) = %s, want %s in UTC", from, got, tt.want)
			}
		})
	}
}

func TestNextIsStrictlyAfter(t *testing.T) {
	t.Parallel()
	sched, err := scheduler.Parse("0 * * * *")
	if err != nil {
		t.Fatal(err)
	}
	onTheHour := time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)
	if got, want := sched.Next(onTheHour), onTheHour.Add(time.Hour); !got.Equal(want) {
		t.Errorf("Next(%s) = %s, want %s", onTheHour, got, want)
	}
	local := onTheHour.In(time.FixedZone("UTC+5", 5*3600))
	if got, want := sched.Next(local), onTheHour.Add(time.Hour); !got.Equal(want) {
		t.Errorf("Next of a time in another zone = %s, want %s", got, want)
	}
}

func TestParseInvalidSchedules(t *testing.T) {
	t.Parallel()
	for _, expr := range []string{
		"",
		"* * * *",
		"0 * * * * *",      // six fields, with seconds
		"0 0 * * * * 2024", // seven fields
		"@daily",
		"TZ=UTC",
		"TZ=UTC * * * * *",
		"CRON_TZ=Europe/Paris 0 * * *",
		"60 * * * *",
		"* 24 * * *",
		"* * 0 * *",
		"* * * 13 *",
		"* * * * 8",
		"*/0 * * * *",
		"5-1 * * * *",
		"0 0 30 2 *", // February 30 never comes
		"0 0 L * *",
		"0 0 * * 1#2",
		"a b c d e",
		"1,,2 * * * *",
		",1 * * * *",
		"0 0 * * 8-9",
		"0 0 * * 1-7/0",
	} {
		t.Run(expr, func(t *testing.T) {
			t.Parallel()
			if _, err := scheduler.Parse(expr); !errors.Is(err, scheduler.ErrInvalidSchedule) {
				t.Errorf("Parse(%q) error = %v, want ErrInvalidSchedule", expr, err)
			}
		})
	}
}
