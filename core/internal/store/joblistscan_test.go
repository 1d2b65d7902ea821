package store

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/go-pg/pg/v10/types"
)

// parseUTCTimestamp must read what go-pg's parser reads, and leave it every other form.
func TestParseUTCTimestampAgreesWithGoPG(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	var inputs []string
	for range 2000 {
		tm := time.Unix(r.Int64N(253402300799), r.Int64N(1e9)).UTC()
		s := tm.Format("2006-01-02 15:04:05")
		// Postgres writes microseconds without trailing zeros.
		if digits := r.IntN(10); digits > 0 {
			s += "." + tm.Format(".000000000")[1:1+digits]
		}
		inputs = append(inputs, s+"+00")
	}
	inputs = append(inputs, "2026-12-05 04:25:27+00", "2026-02-28 23:59:59.5+00", "0001-01-01 00:00:00+00",
		"2026-12-05 04:25:27.477823+01", "2026-12-05 04:25:27.477823+05:30", "2026-12-05 04:25:27.+00",
		"2026-12-05 04:25:27.1234567890+00", "2026-13-05 04:25:27+00", "2026-12-05T04:25:27+00",
		"10000-01-01 00:00:00+00", "2026-12-05 04:25:27+00 BC", "2026-12-05 04:25:27")
	fast := 0
	for _, in := range inputs {
		want, wantErr := types.ParseTime([]byte(in))
		got, ok := parseUTCTimestamp([]byte(in))
		if !ok {
			continue
		}
		fast++
		if wantErr != nil || !got.Equal(want) {
			t.Errorf("parseUTCTimestamp(%q) = %v; go-pg reads %v, %v", in, got, want, wantErr)
		}
	}
	if fast < 2000 {
		t.Errorf("read %d of the 2,000 timestamps in Postgres's UTC form, want all", fast)
	}
	for _, in := range []string{"2026-12-05 04:25:27.477823+01", "2026-12-05 04:25:27.+00", "2026-13-05 04:25:27+00"} {
		if _, ok := parseUTCTimestamp([]byte(in)); ok {
			t.Errorf("parseUTCTimestamp(%q) read it; it is not Postgres's UTC form", in)
		}
	}
}
