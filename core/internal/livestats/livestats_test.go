package livestats

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCountersOf(t *testing.T) {
	t.Parallel()
	// estela-crawl writes every value JSON-encoded, so numbers arrive bare and strings quoted.
	stats := map[string]string{
		"item_scraped_count":        "12",
		"downloader/request_count":  "3",
		"downloader/response_bytes": "4096",
		"elapsed_time_seconds":      "1.5",
		"start_time":                `"2026-12-04T20:31:46"`,
	}
	want := Counters{ItemCount: 12, RequestCount: 3, TotalResponseBytes: 4096, LifespanMicros: 1500000}
	if diff := cmp.Diff(want, CountersOf(stats)); diff != "" {
		t.Errorf("CountersOf (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Counters{}, CountersOf(map[string]string{"item_scraped_count": "NaN"})); diff != "" {
		t.Errorf("CountersOf of garbage (-want +got):\n%s", diff)
	}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	got := Decode(map[string]string{
		"item_scraped_count": "12",
		"start_time":         `"2026-12-04T20:31:46"`,
		"finish_reason":      "not json",
	})
	want := map[string]any{"item_scraped_count": float64(12), "start_time": "2026-12-04T20:31:46", "finish_reason": "not json"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Decode (-want +got):\n%s", diff)
	}
}
