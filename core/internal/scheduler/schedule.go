// Package scheduler fires cron jobs. It parses their 5-field schedules, which are evaluated in
// UTC, computes their next runs, and turns every due cron job into one queued job, even when
// several workers fire at the same time.
package scheduler

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// ErrInvalidSchedule is returned for an expression that is not a 5-field cron schedule or
// that never fires.
var ErrInvalidSchedule = errors.New("invalid cron schedule")

// parser reads standard 5-field expressions (minute hour day-of-month month day-of-week)
// without seconds, descriptors such as @daily, or time zone prefixes.
var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// Schedule is a parsed cron expression, evaluated in UTC.
type Schedule struct {
	spec *cron.SpecSchedule
}

// Parse reads a 5-field cron expression. Fields take numbers, month and weekday names, *, ?,
// ranges (a-b), lists (a,b) and steps (/n). Day-of-month and day-of-week restrict together as
// in Vixie cron: when both are restricted, a day matching either one fires. An expression with
// six fields, or one that never fires (such as February 30), is invalid.
func Parse(expr string) (Schedule, error) {
	fields := strings.Fields(expr)
	if len(fields) != 5 {
		return Schedule{}, fmt.Errorf("%w %q: want 5 fields, got %d", ErrInvalidSchedule, expr, len(fields))
	}
	// robfig/cron v3.0.1 panics on a "TZ=" prefix without a space, and its parser also reads
	// descriptors such as @daily. Allowing only field characters keeps both out.
	for _, f := range fields {
		if strings.Trim(f, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ*?,-/") != "" {
			return Schedule{}, fmt.Errorf("%w %q: field %q has a character cron does not use", ErrInvalidSchedule, expr, f)
		}
		if slices.Contains(strings.Split(f, ","), "") {
			return Schedule{}, fmt.Errorf("%w %q: field %q has an empty list item", ErrInvalidSchedule, expr, f)
		}
	}
	fields[4] = sundayAsZero(fields[4])
	parsed, err := parser.Parse(strings.Join(fields, " "))
	if err != nil {
		return Schedule{}, fmt.Errorf("%w %q: %v", ErrInvalidSchedule, expr, err)
	}
	spec, ok := parsed.(*cron.SpecSchedule)
	if !ok {
		return Schedule{}, fmt.Errorf("%w %q: unexpected schedule type %T", ErrInvalidSchedule, expr, parsed)
	}
	spec.Location = time.UTC
	s := Schedule{spec: spec}
	if s.Next(time.Now()).IsZero() {
		return Schedule{}, fmt.Errorf("%w %q: it never fires", ErrInvalidSchedule, expr)
	}
	return s, nil
}

// sundayAsZero rewrites the day-of-week 7, which Vixie cron and croniter read as Sunday, to
// the 0 that robfig/cron accepts: "7" becomes "0", and a range ending at 7 ends at 6 and adds
// 0 when its step reaches 7. Other items are left for the parser to check.
func sundayAsZero(field string) string {
	items := strings.Split(field, ",")
	for i, item := range items {
		rng, stepText, hasStep := strings.Cut(item, "/")
		start, end, isRange := strings.Cut(rng, "-")
		step, err := strconv.Atoi(stepText)
		switch {
		case item == "7":
			items[i] = "0"
		case !isRange || end != "7" || (hasStep && (err != nil || step < 1)):
		default:
			from, err := strconv.Atoi(start)
			if err != nil || from > 6 {
				continue
			}
			items[i] = start + "-6"
			if hasStep {
				items[i] += "/" + stepText
			}
			if !hasStep || (7-from)%step == 0 {
				items[i] += ",0"
			}
		}
	}
	return strings.Join(items, ",")
}

// Next returns the first time the schedule fires strictly after t, in UTC. It returns the zero
// time when the schedule does not fire within the next five years.
func (s Schedule) Next(t time.Time) time.Time {
	next := s.spec.Next(t.UTC())
	if next.IsZero() {
		return next
	}
	return next.UTC()
}

// NextRun parses expr and returns its first run strictly after t.
func NextRun(expr string, t time.Time) (time.Time, error) {
	s, err := Parse(expr)
	if err != nil {
		return time.Time{}, err
	}
	return s.Next(t), nil
}
