package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/estela-go/estela-go/core/internal/store"
	"github.com/estela-go/estela-go/core/internal/testenv"
)

func newCronJob(pid string, sid int64, tags ...string) *store.CronJob {
	next := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	return &store.CronJob{ProjectID: pid, SpiderID: sid, Schedule: "0 0 * * *", Status: store.CronActive,
		DataStatus: "PERSISTENT", ResourceTier: "LARGE", Tags: tags, NextRun: &next,
		EnvVars: []store.EnvVar{{Name: "KEY", Value: "secret", Masked: true}}}
}

func TestCronJobScopedByPath(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	_, p, _ := fixture(t, st, "quotes")
	spiders, _, _ := st.ListSpiders(ctx, p.PID, "", store.Page{Limit: 10})
	sid := spiders[0].SID
	c := newCronJob(p.PID, sid)
	if err := st.CreateCronJob(ctx, c); err != nil {
		t.Fatalf("create cron job: %v", err)
	}
	if c.SpiderName != "quotes" || c.Created.IsZero() || c.Name() != fmt.Sprintf("scj-%d-%d-%s", c.CJID, sid, p.PID) {
		t.Errorf("created cron job = %+v, name %s; want spider quotes, a creation time and scj-<cjid>-<sid>-<pid>", c, c.Name())
	}

	got, err := st.CronJob(ctx, p.PID, sid, c.CJID)
	if err != nil {
		t.Fatalf("load cron job by its path: %v", err)
	}
	if got.ProjectID != p.PID || got.Schedule != "0 0 * * *" || got.NextRun == nil {
		t.Errorf("loaded cron job = %+v", got)
	}
	if _, err := st.CronJob(ctx, p.PID, sid+1, c.CJID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("load under another spider: err = %v, want ErrNotFound", err)
	}
	if _, err := st.CronJob(ctx, store.NewUUID(), sid, c.CJID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("load under another project: err = %v, want ErrNotFound", err)
	}
	if err := st.CreateCronJob(ctx, newCronJob(store.NewUUID(), sid)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("create under another project: err = %v, want ErrNotFound", err)
	}
}

func TestCronJobDeleteHidesIt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	_, p, _ := fixture(t, st, "quotes")
	spiders, _, _ := st.ListSpiders(ctx, p.PID, "", store.Page{Limit: 10})
	c := newCronJob(p.PID, spiders[0].SID)
	if err := st.CreateCronJob(ctx, c); err != nil {
		t.Fatal(err)
	}

	if err := st.DeleteCronJob(ctx, c.CJID); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := st.CronJob(ctx, p.PID, c.SpiderID, c.CJID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("load deleted cron job: err = %v, want ErrNotFound", err)
	}
	if err := st.DeleteCronJob(ctx, c.CJID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delete twice: err = %v, want ErrNotFound", err)
	}
	status := store.CronActive
	if err := st.UpdateCronJob(ctx, c.CJID, store.CronJobUpdate{Status: &status}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("enable deleted cron job: err = %v, want ErrNotFound", err)
	}
	if _, err := st.CreateCronJobRun(ctx, c.CJID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("run deleted cron job: err = %v, want ErrNotFound", err)
	}
}

func TestListCronJobsNewestFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	_, p, _ := fixture(t, st, "quotes", "books")
	spiders, _, _ := st.ListSpiders(ctx, p.PID, "", store.Page{Limit: 10})
	var ids []int64
	for i, tags := range [][]string{{"daily"}, {"weekly"}, {"daily", "eu"}} {
		c := newCronJob(p.PID, spiders[i%2].SID, tags...)
		if err := st.CreateCronJob(ctx, c); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.CJID)
	}
	if err := st.DeleteCronJob(ctx, ids[1]); err != nil {
		t.Fatal(err)
	}
	cjids := func(list []store.CronJob) []int64 {
		out := []int64{}
		for _, c := range list {
			out = append(out, c.CJID)
		}
		return out
	}

	tests := []struct {
		name   string
		filter store.CronJobFilter
		want   []int64
	}{
		{"project", store.CronJobFilter{ProjectID: p.PID}, []int64{ids[2], ids[0]}},
		{"spider", store.CronJobFilter{ProjectID: p.PID, SpiderID: spiders[0].SID}, []int64{ids[2], ids[0]}},
		{"other spider", store.CronJobFilter{ProjectID: p.PID, SpiderID: spiders[1].SID}, []int64{}},
		{"tag", store.CronJobFilter{ProjectID: p.PID, Tag: "eu"}, []int64{ids[2]}},
		{"other project", store.CronJobFilter{ProjectID: store.NewUUID()}, []int64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list, count, err := st.ListCronJobs(ctx, tt.filter, store.Page{Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, cjids(list)); diff != "" {
				t.Errorf("cron jobs (-want +got):\n%s", diff)
			}
			if count != len(tt.want) {
				t.Errorf("count = %d, want %d", count, len(tt.want))
			}
		})
	}
}

func TestUpdateCronJobReplacesLists(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	_, p, _ := fixture(t, st, "quotes")
	spiders, _, _ := st.ListSpiders(ctx, p.PID, "", store.Page{Limit: 10})
	c := newCronJob(p.PID, spiders[0].SID, "daily")
	if err := st.CreateCronJob(ctx, c); err != nil {
		t.Fatal(err)
	}

	tags := []string{}
	vars := []store.EnvVar{{Name: "REGION", Value: "eu"}}
	tier, schedule := "TINY", "*/10 * * * *"
	next := time.Date(2030, 1, 1, 0, 10, 0, 0, time.UTC)
	err := st.UpdateCronJob(ctx, c.CJID, store.CronJobUpdate{Tags: &tags, EnvVars: &vars, ResourceTier: &tier, Schedule: &schedule, NextRun: &next})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	got, err := st.CronJob(ctx, p.PID, c.SpiderID, c.CJID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Tags) != 0 || got.ResourceTier != "TINY" || got.Schedule != schedule || !got.NextRun.Equal(next) {
		t.Errorf("updated cron job = %+v; want no tags, TINY, %s next at %s", got, schedule, next)
	}
	stored, err := st.EnvVarsOfCronJobs(ctx, []int64{c.CJID})
	if err != nil {
		t.Fatal(err)
	}
	if list := stored[c.CJID]; len(list) != 1 || list[0].Name != "REGION" {
		t.Errorf("env vars = %+v, want only REGION", list)
	}
	if err := st.UpdateCronJob(ctx, c.CJID, store.CronJobUpdate{}); err != nil {
		t.Errorf("empty update: %v", err)
	}
}

func TestCronJobEnvVarScopedToProject(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	_, p, _ := fixture(t, st, "quotes")
	spiders, _, _ := st.ListSpiders(ctx, p.PID, "", store.Page{Limit: 10})
	c := newCronJob(p.PID, spiders[0].SID)
	if err := st.CreateCronJob(ctx, c); err != nil {
		t.Fatal(err)
	}
	evid := c.EnvVars[0].EVID

	if ev, err := st.CronEnvVarInProject(ctx, p.PID, evid); err != nil || ev.Value != "secret" {
		t.Errorf("env var of the project's cron job = %+v, %v; want the value secret", ev, err)
	}
	if _, err := st.CronEnvVarInProject(ctx, store.NewUUID(), evid); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("env var from another project: err = %v, want ErrNotFound", err)
	}
}
