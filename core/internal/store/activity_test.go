package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/estela-go/estela-go/core/internal/store"
	"github.com/estela-go/estela-go/core/internal/testenv"
)

// user creates an active user with the given flags.
func user(t *testing.T, st *store.Store, name string, staff bool) *store.User {
	t.Helper()
	u := &store.User{Username: name, Email: name + "@example.com", PasswordHash: "x", IsActive: true, IsStaff: staff}
	if err := st.CreateUser(context.Background(), u); err != nil {
		t.Fatalf("create user %s: %v", name, err)
	}
	return u
}

func TestRecordActivityNotifiesOtherMembers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	alice, p, _ := fixture(t, st)
	bob := user(t, st, "bob", false)
	carol := user(t, st, "carol", false)
	staff := user(t, st, "sam", true)
	if err := st.AddMember(ctx, p.PID, bob.ID, store.RoleViewer); err != nil {
		t.Fatal(err)
	}

	if _, err := st.RecordActivity(ctx, alice.ID, p.PID, "run Job-1 for spider quotes."); err != nil {
		t.Fatalf("record activity: %v", err)
	}
	if _, err := st.RecordActivity(ctx, staff.ID, p.PID, "renamed project shop to store."); err != nil {
		t.Fatalf("record staff activity: %v", err)
	}
	if _, err := st.RecordActivity(ctx, alice.ID, p.PID, ""); err == nil {
		t.Error("activity with an empty description was stored")
	}

	for _, tt := range []struct {
		user *store.User
		want int
	}{{alice, 1}, {bob, 2}, {carol, 0}, {staff, 0}} {
		_, count, err := st.ListNotifications(ctx, tt.user.ID, store.Page{Limit: 10})
		if err != nil {
			t.Fatalf("list notifications of %s: %v", tt.user.Username, err)
		}
		if count != tt.want {
			t.Errorf("%s has %d notifications, want %d", tt.user.Username, count, tt.want)
		}
	}

	activities, count, err := st.ListActivities(ctx, p.PID, store.Page{Limit: 10})
	if err != nil {
		t.Fatalf("list activities: %v", err)
	}
	if count != 2 || len(activities) != 2 {
		t.Fatalf("listed %d of %d activities, want 2 of 2", len(activities), count)
	}
	newest, oldest := activities[0], activities[1]
	if newest.Username != "sam" || !newest.ByAdmin || newest.ProjectName != "shop" {
		t.Errorf("newest activity = %+v, want sam acting as an admin on shop", newest)
	}
	if oldest.Username != "alice" || oldest.ByAdmin {
		t.Errorf("oldest activity = %+v, want alice acting as a member", oldest)
	}
}

func TestNotificationOwnOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	alice, p, _ := fixture(t, st)
	bob := user(t, st, "bob", false)
	if err := st.AddMember(ctx, p.PID, bob.ID, store.RoleDeveloper); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RecordActivity(ctx, alice.ID, p.PID, "made a new Deploy #1."); err != nil {
		t.Fatal(err)
	}
	list, _, err := st.ListNotifications(ctx, bob.ID, store.Page{Limit: 10})
	if err != nil || len(list) != 1 {
		t.Fatalf("bob's notifications = %v, %v; want one", list, err)
	}
	nid := list[0].NID

	if _, err := st.Notification(ctx, alice.ID, nid); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("alice reads bob's notification: err = %v, want ErrNotFound", err)
	}
	if err := st.SetNotificationSeen(ctx, alice.ID, nid, true); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("alice marks bob's notification: err = %v, want ErrNotFound", err)
	}
	if err := st.SetNotificationSeen(ctx, bob.ID, nid, true); err != nil {
		t.Fatalf("bob marks his notification: %v", err)
	}
	n, err := st.Notification(ctx, bob.ID, nid)
	if err != nil || !n.Seen || n.Description != "made a new Deploy #1." || n.Username != "alice" {
		t.Errorf("bob's notification = %+v, %v; want alice's deploy, seen", n, err)
	}
	if err := st.DeleteNotification(ctx, alice.ID, nid); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("alice deletes bob's notification: err = %v, want ErrNotFound", err)
	}
	if err := st.DeleteNotification(ctx, bob.ID, nid); err != nil {
		t.Errorf("bob deletes his notification: %v", err)
	}
}

func TestApplyProxyProviderKeepsOtherVariables(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	_, p, _ := fixture(t, st, "quotes")
	for _, v := range []store.EnvVar{{Name: "KEEP", Value: "1"}, {Name: "ESTELA_PROXY_USER", Value: "old"}} {
		v.ProjectID = &p.PID
		if err := st.CreateEnvVar(ctx, &v); err != nil {
			t.Fatal(err)
		}
	}
	provider := &store.ProxyProvider{Name: "residential_proxy", Username: "u", Password: "secret", Host: "proxy.example", Port: "8080"}
	if err := st.CreateProxyProvider(ctx, provider); err != nil {
		t.Fatal(err)
	}

	for range 2 {
		vars, err := st.ApplyProxyProvider(ctx, store.ProxyTarget{ProjectID: p.PID}, provider)
		if err != nil {
			t.Fatalf("apply: %v", err)
		}
		got := map[string]store.EnvVar{}
		for _, v := range vars {
			if _, twice := got[v.Name]; twice {
				t.Errorf("variable %s exists twice", v.Name)
			}
			got[v.Name] = v
		}
		if len(got) != 6 || got["KEEP"].Value != "1" || got["ESTELA_PROXY_USER"].Value != "u" || !got["ESTELA_PROXY_PASS"].Masked ||
			got["ESTELA_PROXY_NAME"].Masked || got["ESTELA_PROXY_PORT"].Value != "8080" {
			t.Errorf("project variables after apply = %+v", got)
		}
	}

	spiders, _, _ := st.ListSpiders(ctx, p.PID, "", store.Page{Limit: 1})
	sid := spiders[0].SID
	if pid, err := st.ProjectOfSpider(ctx, sid); err != nil || pid != p.PID {
		t.Errorf("project of spider = %q, %v; want %s", pid, err, p.PID)
	}
	vars, err := st.ApplyProxyProvider(ctx, store.ProxyTarget{SpiderID: sid}, provider)
	if err != nil || len(vars) != 5 || vars[0].SpiderID == nil {
		t.Errorf("apply to spider = %+v, %v; want the five spider variables", vars, err)
	}
	if _, err := st.ApplyProxyProvider(ctx, store.ProxyTarget{ProjectID: store.NewUUID()}, provider); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("apply to an unknown project: err = %v, want ErrNotFound", err)
	}
}
