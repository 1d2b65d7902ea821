package dispatch_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gomodule/redigo/redis"
	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/core/internal/dispatch"
	"github.com/estela-go/estela-go/core/internal/livestats"
	"github.com/estela-go/estela-go/core/internal/queue"
	"github.com/estela-go/estela-go/core/internal/store"
	"github.com/estela-go/estela-go/core/internal/testenv"
	"github.com/estela-go/estela-go/sdk/credentials"
	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

// imageEngine is a test double of an engine that builds images on a cluster, which cannot run
// on this machine. It records the builds it receives.
type imageEngine struct {
	engine.Engine
	mu     sync.Mutex
	builds []engine.BuildImageRequest
}

func (e *imageEngine) Capabilities() []string { return []string{engine.CapabilityBuildImage} }

func (e *imageEngine) BuildImage(_ context.Context, req *engine.BuildImageRequest) (*engine.BuildImageResponse, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.builds = append(e.builds, *req)
	return &engine.BuildImageResponse{BuildName: "deploy-build", Image: req.Image}, nil
}

// noRegistry is a credentials provider without registry credentials.
type noRegistry struct{ credentials.Provider }

func (noRegistry) RegistryAuth(context.Context, *credentials.RegistryAuthRequest) (*credentials.RegistryAuthResponse, error) {
	return nil, errdefs.NotFound("no registry credentials configured")
}

func newDeploy(t *testing.T, st *store.Store) *store.Deploy {
	t.Helper()
	ctx := context.Background()
	u := &store.User{Username: "dev-" + store.NewUUID()[:8], PasswordHash: "x", IsActive: true}
	if err := st.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	p := &store.Project{Name: "shop", Category: "OTHER_CATEGORY", Framework: "SCRAPY", DataStatus: "PERSISTENT", DataExpiryDays: 1}
	if err := st.CreateProject(ctx, p, u.ID); err != nil {
		t.Fatal(err)
	}
	d := &store.Deploy{ProjectID: p.PID, UserID: &u.ID}
	if err := st.CreateDeploy(ctx, d); err != nil {
		t.Fatal(err)
	}
	return d
}

func newService(t *testing.T, st *store.Store, eng engine.Engine, images dispatch.ImageSettings) *dispatch.Service {
	t.Helper()
	return newServiceWith(t, st, eng, dispatch.Settings{Images: images})
}

// newServiceWith makes a service with settings, whose API host and attempts the tests share.
func newServiceWith(t *testing.T, st *store.Store, eng engine.Engine, settings dispatch.Settings) *dispatch.Service {
	t.Helper()
	svc, _, _ := newServiceWithStats(t, st, eng, settings)
	return svc
}

// newServiceWithStats does what newServiceWith does, and returns the service's live stats
// reader and Redis pool too, for tests that write live stats.
func newServiceWithStats(t *testing.T, st *store.Store, eng engine.Engine, settings dispatch.Settings) (*dispatch.Service, *livestats.Reader, *redis.Pool) {
	t.Helper()
	pool := queue.NewPool(testenv.RedisURL(t))
	t.Cleanup(func() { pool.Close() })
	ns := testenv.Namespace()
	settings.APIHost, settings.MaxDispatchAttempts = "http://api.example:8000", 3
	stats := livestats.NewReader(pool, ns+":")
	return dispatch.New(st, eng, noRegistry{}, queue.New(pool, ns), stats, settings, hclog.NewNullLogger()), stats, pool
}

func TestBuildImageStartsOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	d := newDeploy(t, st)
	eng := &imageEngine{}
	svc := newService(t, st, eng, dispatch.ImageSettings{Registry: "registry.example:5000", Repository: "estela-projects"})

	for i := 0; i < 2; i++ {
		if err := svc.BuildDeploy(ctx, d.DID); err != nil {
			t.Fatalf("build deploy, call %d: %v", i+1, err)
		}
	}
	if len(eng.builds) != 1 {
		t.Fatalf("engine got %d builds, want 1", len(eng.builds))
	}
	b := eng.builds[0]
	wantImage := "registry.example:5000/estela-projects:estela_" + d.ProjectID + "_" + itoa(d.DID)
	if b.Image != wantImage {
		t.Errorf("image = %q, want %q", b.Image, wantImage)
	}
	wantURL := "http://api.example:8000/api/projects/" + d.ProjectID + "/deploys/" + itoa(d.DID) + "/archive"
	if b.ArchiveURL != wantURL || b.APIHost != "http://api.example:8000" {
		t.Errorf("archive URL %q and API host %q, want %q", b.ArchiveURL, b.APIHost, wantURL)
	}
	principal, err := st.Authenticate(ctx, b.ArchiveToken)
	if err != nil || principal.DeployID != d.DID || principal.User != nil {
		t.Errorf("build token authenticates as %+v, %v; want deploy %d only", principal, err, d.DID)
	}

	got, err := st.DeployByID(ctx, d.DID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != store.DeployBuilding || got.ArtifactRef != wantImage {
		t.Errorf("deploy while building = %s with artifact %q, want BUILDING with the image", got.Status, got.ArtifactRef)
	}
	if err := st.ReportDeploy(ctx, d.DID, store.DeploySuccess, []string{"quotes"}, ""); err != nil {
		t.Fatalf("report success: %v", err)
	}
	got, _ = st.DeployByID(ctx, d.DID)
	if got.Status != store.DeploySuccess || got.SpidersCount != 1 || got.ArtifactRef != wantImage {
		t.Errorf("reported deploy = %+v, want SUCCESS with one spider and the image", got)
	}
}

func TestBuildImageNeedsRegistry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	d := newDeploy(t, st)
	eng := &imageEngine{}
	svc := newService(t, st, eng, dispatch.ImageSettings{Repository: "estela-projects"})

	if err := svc.BuildDeploy(ctx, d.DID); err != nil {
		t.Fatalf("build deploy: %v", err)
	}
	got, _ := st.DeployByID(ctx, d.DID)
	if got.Status != store.DeployFailure || !strings.Contains(got.ErrorReason, "images.registry") {
		t.Errorf("deploy = %s (%q), want FAILURE naming images.registry", got.Status, got.ErrorReason)
	}
	if len(eng.builds) != 0 {
		t.Errorf("engine got %d builds without a registry, want 0", len(eng.builds))
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
