package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
)

func TestMakeItemSizeAndJSON(t *testing.T) {
	t.Parallel()
	for _, size := range []int{minItemBytes, minItemBytes + 1, 257, 1024, 4000} {
		for _, i := range []int{0, 1, 999, 123456789, 9999999999} {
			item := makeItem(i, size)
			if len(item) != size {
				t.Errorf("makeItem(%d, %d) has %d bytes", i, size, len(item))
			}
			if !json.Valid(item) {
				t.Errorf("makeItem(%d, %d) is not valid JSON: %s", i, size, item)
			}
			if bytes.ContainsAny(item, "\t\n\\") {
				t.Errorf("makeItem(%d, %d) needs COPY escaping: %s", i, size, item)
			}
		}
	}
}

func TestPercentileNearestRank(t *testing.T) {
	t.Parallel()
	samples := make([]time.Duration, 100)
	for i := range samples {
		samples[len(samples)-1-i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		name    string
		samples []time.Duration
		q       float64
		want    time.Duration
	}{
		{"empty", nil, 0.99, 0},
		{"one sample", []time.Duration{7}, 0.5, 7},
		{"median of 100", samples, 0.5, 50 * time.Millisecond},
		{"p99 of 100", samples, 0.99, 99 * time.Millisecond},
		{"max", samples, 1, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := percentile(tt.samples, tt.q); got != tt.want {
				t.Errorf("percentile(q=%v) = %s, want %s", tt.q, got, tt.want)
			}
		})
	}
}

func TestAlternateOrderAndBest(t *testing.T) {
	t.Parallel()
	var order []string
	limitTimes := []time.Duration{5, 3, 4}
	apiTimes := []time.Duration{9, 8, 10}
	bestLimit, bestAPI, err := alternate(3,
		func() (time.Duration, error) {
			order = append(order, "limit")
			d := limitTimes[0]
			limitTimes = limitTimes[1:]
			return d, nil
		},
		func(round int) (time.Duration, error) {
			order = append(order, "api")
			return apiTimes[round], nil
		})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"limit", "api", "api", "limit", "limit", "api"}
	if diff := cmp.Diff(want, order); diff != "" {
		t.Errorf("run order (-want +got):\n%s", diff)
	}
	if bestLimit != 3 {
		t.Errorf("best limit = %d, want 3", bestLimit)
	}
	if bestAPI != 8 {
		t.Errorf("best API = %d, want 8", bestAPI)
	}
}

func TestAlternateStopsAtError(t *testing.T) {
	t.Parallel()
	failure := errors.New("copy failed")
	calls := 0
	_, _, err := alternate(2,
		func() (time.Duration, error) { calls++; return 0, failure },
		func(int) (time.Duration, error) { calls++; return 1, nil })
	if !errors.Is(err, failure) {
		t.Errorf("err = %v, want %v", err, failure)
	}
	if calls != 1 {
		t.Errorf("%d runs after the failure's, want none", calls-1)
	}
}

func TestSizesValidate(t *testing.T) {
	t.Parallel()
	if err := DefaultSizes().validate(); err != nil {
		t.Errorf("default sizes: %v", err)
	}
	if err := QuickSizes().validate(); err != nil {
		t.Errorf("quick sizes: %v", err)
	}
	small := QuickSizes()
	small.IngestItemBytes = minItemBytes - 1
	if err := small.validate(); err == nil {
		t.Error("items below the minimum size were accepted")
	}
	none := QuickSizes()
	none.CronWorkers = 0
	if err := none.validate(); err == nil {
		t.Error("zero cron workers were accepted")
	}

	// Every invalid size is named, always in the same order.
	several := QuickSizes()
	several.Rounds, several.IngestSenders, several.PhaseTimeout = 0, -2, time.Millisecond
	want := "invalid -senders -2: it must be at least 1\ninvalid -rounds 0: it must be at least 1\ninvalid -phase-timeout 1ms: it must be at least 1s"
	for range 5 {
		if err := several.validate(); err == nil || err.Error() != want {
			t.Fatalf("three invalid sizes gave %v, want:\n%s", err, want)
		}
	}
}

// A value in the table must not read as meeting or missing a target that its digits do not.
func TestFormatValueKeepsDigitsNearTargets(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		value float64
		want  string
	}{
		{0, "0"},
		{9.87, "9.87"},
		{10.21, "10.2"},
		{99.6, "99.6"},
		{100, "100"},
		{999.94, "999.9"},
		{1502.3, "1502"},
	} {
		if got := formatValue(tt.value); got != tt.want {
			t.Errorf("formatValue(%v) = %q, want %q", tt.value, got, tt.want)
		}
	}
}

func TestTemporaryWorkFolderCleanup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		failed   bool
		log      string
		wantKept bool
	}{
		{"run succeeded", false, "started\n", false},
		{"run failed before servers", true, "", false},
		{"run failed with server logs", true, "started\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := Options{Log: hclog.NewNullLogger()}
			cleanup, err := prepareWorkDir(&opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(opts.WorkDir) })
			// The config file and the log exist before the server starts.
			for name, content := range map[string]string{"estela.hcl": "listen = \"127.0.0.1:0\"\n", "api.log": tt.log} {
				if err := os.WriteFile(filepath.Join(opts.WorkDir, name), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cleanup(tt.failed)
			_, err = os.Stat(opts.WorkDir)
			if folderKept := err == nil; folderKept != tt.wantKept {
				t.Errorf("work folder kept = %v (stat: %v), want %v", folderKept, err, tt.wantKept)
			}
		})
	}
}

func TestTableSaysWhenSizesAreNotDefaults(t *testing.T) {
	t.Parallel()
	const note = "sizes: not the defaults"
	for _, tt := range []struct {
		name     string
		sizes    Sizes
		wantNote bool
	}{
		{"default sizes", DefaultSizes(), false},
		{"quick sizes", QuickSizes(), true},
		{"default sizes, another time limit", func() Sizes { s := DefaultSizes(); s.PhaseTimeout = time.Hour; return s }(), false},
	} {
		var out bytes.Buffer
		if err := WriteTable(&out, &Results{Sizes: tt.sizes}); err != nil {
			t.Fatal(err)
		}
		if got := bytes.Contains(out.Bytes(), []byte(note)); got != tt.wantNote {
			t.Errorf("%s: table has the note %q = %v, want %v:\n%s", tt.name, note, got, tt.wantNote, out.String())
		}
	}
}

func TestMainRejectsUnwritableOutput(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "missing", "out.json")
	err := Main(context.Background(), Options{Sizes: QuickSizes()}, io.Discard, path)
	if err == nil || !strings.Contains(err.Error(), "cannot be written") {
		t.Errorf("Main with BENCH_OUT %s = %v, want an error before the run that says it cannot be written", path, err)
	}
}

// Run checks the phases to skip before it starts anything.
func TestRunRejectsSkippedPhases(t *testing.T) {
	t.Parallel()
	all := map[string]bool{}
	for _, phase := range Phases {
		all[phase] = true
	}
	for _, tt := range []struct {
		name string
		skip map[string]bool
		want string
	}{
		{"every phase", all, "every phase is skipped"},
		{"one unknown phase", map[string]bool{"rpc": true, "zeta": true}, `unknown phase "zeta" to skip`},
		{"two unknown phases", map[string]bool{"rpc": true, "zeta": true, "alpha": true}, `unknown phases "alpha", "zeta" to skip`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := Options{Sizes: QuickSizes(), Skip: tt.skip, WorkDir: filepath.Join(t.TempDir(), "work")}
			_, err := Run(context.Background(), opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run with -skip %v = %v, want an error containing %q", tt.skip, err, tt.want)
			}
			if _, statErr := os.Stat(opts.WorkDir); !errors.Is(statErr, os.ErrNotExist) {
				t.Errorf("Run made its work folder before it rejected -skip (%v)", statErr)
			}
		})
	}

	// A bad size and a bad -skip are named together.
	sizes := QuickSizes()
	sizes.Rounds = -5
	_, err := Run(context.Background(), Options{Sizes: sizes, Skip: map[string]bool{"zeta": true}})
	for _, want := range []string{"invalid -rounds -5", `unknown phase "zeta"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Run with -rounds -5 -skip zeta = %v, want an error containing %q", err, want)
		}
	}
}
