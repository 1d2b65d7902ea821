package api

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/core/internal/store"
	"github.com/estela-go/estela-go/core/internal/testenv"
)

func TestRecordActivity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	var logs bytes.Buffer
	s := New(st, nil, nil, nil, nil, Options{}, hclog.New(&hclog.LoggerOptions{Output: &logs}))
	var users []*store.User
	for _, name := range []string{"owner", "developer"} {
		u := &store.User{Username: name, Email: name + "@example.com", PasswordHash: "x", IsActive: true}
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		users = append(users, u)
	}
	p := &store.Project{Name: "shop", Category: "OTHER_CATEGORY", Framework: "SCRAPY", DataStatus: "PERSISTENT"}
	if err := st.CreateProject(ctx, p, users[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := st.AddMember(ctx, p.PID, users[1].ID, store.RoleDeveloper); err != nil {
		t.Fatal(err)
	}

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	s.recordActivity(canceled, users[0].ID, p.PID, "renamed project old ("+p.PID+") to shop.")
	s.recordActivity(ctx, users[0].ID, p.PID, "  ")
	s.recordActivity(ctx, users[0].ID, store.NewUUID(), "deleted project gone.")

	activities, count, err := st.ListActivities(ctx, p.PID, store.Page{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if count != 1 || activities[0].Description != "renamed project old ("+p.PID+") to shop." {
		t.Errorf("activities = %+v, want only the rename, recorded although the request context ended", activities)
	}
	if _, n, _ := st.ListNotifications(ctx, users[1].ID, store.Page{Limit: 10}); n != 1 {
		t.Errorf("developer has %d notifications, want 1", n)
	}
	if _, n, _ := st.ListNotifications(ctx, users[0].ID, store.Page{Limit: 10}); n != 0 {
		t.Errorf("the actor has %d notifications, want 0", n)
	}
	if !strings.Contains(logs.String(), "record activity") || strings.Count(logs.String(), "[ERROR]") != 1 {
		t.Errorf("log = %q, want one error for the activity of an unknown project", logs.String())
	}
}
