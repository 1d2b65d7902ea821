package api

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/estela-go/estela-go/core/internal/store"
)

// encodeWithReflection writes v as writeJSON wrote every reply before jobPage: through
// encoding/json without HTML escapes.
func encodeWithReflection(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// The job list writes its JSON itself; it must write the bytes encoding/json writes for the
// page of jobToDTO's replies, whatever the jobs hold.
func TestJobPageJSON(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	pieces := []string{"a", "quotes", " ", `"`, `\`, "<b>&amp;", "\n", "\t", "\x00", "\x1f", "\x7f", "é", "日本",
		"\u2028", "\u2029", "\xff", "\xe2\x82", "😀", "/", "'"}
	text := func() string {
		var s string
		for range r.IntN(4) {
			s += pieces[r.IntN(len(pieces))]
		}
		return s
	}
	maybeInt := func() *int64 {
		if r.IntN(2) == 0 {
			return nil
		}
		v := r.Int64N(1<<40) - 5
		return &v
	}
	statuses := []string{store.JobInQueue, store.JobWaiting, store.JobRunning, store.JobCompleted, store.JobError, store.JobStopped}
	proxies := []map[string]any{nil, {}, {"bytes": 12.5, "nested": map[string]any{"a": []any{"x", nil, true}}},
		{"z": 1e21, "a": "<&>", "m": -0.000001}}

	for round := range 300 {
		jobs := make([]store.Job, r.IntN(5))
		for i := range jobs {
			j := &jobs[i]
			j.JID, j.SpiderID, j.SpiderName = r.Int64N(1<<50), r.Int64N(1000), text()
			j.ProjectID = store.NewUUID()
			if r.IntN(10) == 0 {
				j.ProjectID = text()
			}
			j.Created = time.Unix(r.Int64N(1<<36)-1<<35, r.Int64N(1e9))
			if r.IntN(10) == 0 {
				j.Created = time.Date(10000+r.IntN(3), 1, 2, 3, 4, 5, 6000, time.UTC)
			}
			j.LifespanMicros = r.Int64N(1<<42) - 1000
			j.TotalResponseBytes, j.ItemCount, j.RequestCount, j.StorageBytes = r.Int64N(1<<40), r.Int64N(1e6), r.Int64N(1e6), r.Int64N(1e9)
			for range r.IntN(3) {
				j.Args = append(j.Args, store.Arg{Name: text(), Value: text()})
			}
			for range r.IntN(3) {
				j.EnvVars = append(j.EnvVars, store.EnvVar{EVID: r.Int64N(1e6), Name: text(), Value: text(), Masked: r.IntN(2) == 0})
			}
			for range r.IntN(3) {
				j.Tags = append(j.Tags, text())
			}
			j.Status, j.DataStatus, j.ResourceTier, j.ErrorReason = statuses[r.IntN(len(statuses))], text(), text(), text()
			j.CronjobID, j.PeakMemoryBytes = maybeInt(), maybeInt()
			if r.IntN(2) == 0 {
				days := r.IntN(100)
				j.DataExpiryDays = &days
			}
			j.ProxyUsageData = proxies[r.IntN(len(proxies))]
		}
		page := pageOf[store.Job]{Count: r.IntN(1e6), Results: jobs}
		if r.IntN(2) == 0 {
			next := "http://127.0.0.1/api/projects/x/spiders/1/jobs?page=2&page_size=50&tag=" + text()
			page.Next = &next
		}
		if r.IntN(2) == 0 {
			previous := "http://127.0.0.1/api/projects/x/spiders/1/jobs?page=1"
			page.Previous = &previous
		}

		dtos := pageOf[jobDTO]{Count: page.Count, Next: page.Next, Previous: page.Previous, Results: make([]jobDTO, len(jobs))}
		for i := range jobs {
			dtos.Results[i] = jobToDTO(&jobs[i], jobs[i].EnvVars)
		}
		want := encodeWithReflection(t, dtos)
		got, err := encodeReply(nil, (*jobPage)(&page))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("round %d:\n got %s\nwant %s", round, got, want)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", `"quoted"`, `back\slash`, "<&>", "\x00\x1f\x7f", "\u2028", "\xff\xfe", "é😀"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := encodeWithReflection(t, s)
		if got := appendJSONString(nil, s); !bytes.Equal(got, want[:len(want)-1]) {
			t.Errorf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	})
}
