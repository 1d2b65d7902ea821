package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/estela-go/estela-go/core/internal/store"
	"github.com/estela-go/estela-go/core/internal/testenv"
)

func TestAppendMeteredUsageIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	_, p, _ := fixture(t, st)
	start := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	record := func() *store.MeteredUsage {
		return &store.MeteredUsage{ProjectID: p.PID, IdempotencyKey: "proxy:job-7:hour-9", Kind: store.MeterDeltaSlice,
			ResourceKind: "SpiderJob", ResourceID: "7", Reporter: "bitmaker-proxy", IntervalStart: start, IntervalEnd: start.Add(time.Hour),
			Metrics: map[string]any{"network_bytes": 2048}}
	}

	first, created, err := st.AppendMeteredUsage(ctx, record())
	if err != nil || !created {
		t.Fatalf("first report: created = %v, err = %v; want a new record", created, err)
	}
	again, created, err := st.AppendMeteredUsage(ctx, record())
	if err != nil || created {
		t.Fatalf("second report: created = %v, err = %v; want the earlier record", created, err)
	}
	if again.ID != first.ID || !again.RecordedAt.Equal(first.RecordedAt) {
		t.Errorf("duplicate returned %s recorded %v, want %s recorded %v", again.ID, again.RecordedAt, first.ID, first.RecordedAt)
	}

	rows, err := st.MeteredUsageOfProject(ctx, p.PID, start, start.Add(time.Hour))
	if err != nil {
		t.Fatalf("list ledger: %v", err)
	}
	if len(rows) != 1 || rows[0].Reporter != "bitmaker-proxy" || rows[0].Metrics["network_bytes"] != float64(2048) {
		t.Errorf("ledger = %+v, want one record with network_bytes 2048", rows)
	}

	bad := record()
	bad.IdempotencyKey, bad.Kind = "adjust-1", store.MeterAdjustment
	if _, _, err := st.AppendMeteredUsage(ctx, bad); err == nil {
		t.Error("an ADJUSTMENT without reason was stored")
	}
}
