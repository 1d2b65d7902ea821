// Package app assembles the server from its parts (store, queue, plugins, dispatch, API) and
// runs the API, the worker or both.
package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/core/internal/api"
	"github.com/estela-go/estela-go/core/internal/config"
	"github.com/estela-go/estela-go/core/internal/dispatch"
	"github.com/estela-go/estela-go/core/internal/livestats"
	"github.com/estela-go/estela-go/core/internal/password"
	"github.com/estela-go/estela-go/core/internal/pluginhost"
	"github.com/estela-go/estela-go/core/internal/queue"
	"github.com/estela-go/estela-go/core/internal/store"
)

// App is a running server's shared parts.
type App struct {
	cfg      *config.Config
	log      hclog.Logger
	store    *store.Store
	redis    *redis.Pool
	queue    *queue.Queue
	engine   *pluginhost.Engine
	creds    *pluginhost.Credentials
	dispatch *dispatch.Service
}

// Open connects to Postgres and Redis, applies migrations and starts the plugins.
func Open(ctx context.Context, cfg *config.Config, log hclog.Logger) (*App, error) {
	a := &App{cfg: cfg, log: log}
	if err := a.openStores(ctx); err != nil {
		a.Close()
		return nil, err
	}
	if err := a.startPlugins(ctx); err != nil {
		a.Close()
		return nil, err
	}
	stats := livestats.NewReader(a.redis, cfg.RedisNamespace+":")
	w := cfg.Worker
	a.dispatch = dispatch.New(a.store, a.engine, a.creds, a.queue, stats, dispatch.Settings{
		APIHost: cfg.APIHost, RedisURL: cfg.RedisURL, LostJobGrace: w.LostJobGrace(), MaxDispatchAttempts: w.MaxDispatchAttempts,
		Launchers:    w.Concurrency,
		Images:       dispatch.ImageSettings{Registry: cfg.Images.Registry, Repository: cfg.Images.Repository},
		BuildTimeout: time.Duration(cfg.Images.BuildTimeoutMinutes) * time.Minute,
		StopGrace:    cfg.Engine.StopGrace(),
	}, log)
	return a, nil
}

func (a *App) openStores(ctx context.Context) error {
	st, err := store.Open(ctx, a.cfg.DatabaseURL, store.Options{PoolSize: a.cfg.DatabasePoolSize})
	if err != nil {
		return err
	}
	a.store = st
	applied, err := st.Migrate(ctx)
	if err != nil {
		return err
	}
	if len(applied) > 0 {
		a.log.Info("database migrated", "applied", applied)
	}
	a.redis = queue.NewPool(a.cfg.RedisURL)
	a.queue = queue.New(a.redis, a.cfg.RedisNamespace)
	if err := a.queue.Ping(ctx); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}

func (a *App) startPlugins(ctx context.Context) error {
	eb, err := pluginhost.Find(a.cfg.PluginDirs, pluginhost.KindEngine, a.cfg.Engine.Name)
	if err != nil {
		return err
	}
	cb, err := pluginhost.Find(a.cfg.PluginDirs, pluginhost.KindCredentials, a.cfg.Credentials.Name)
	if err != nil {
		return err
	}
	a.engine = pluginhost.NewEngine(pluginhost.Options{Binary: eb, SHA256: a.cfg.Engine.SHA256, Settings: a.cfg.Engine.Settings, Logger: a.log, GoMaxProcs: a.cfg.Engine.Procs()})
	if err := a.engine.Start(ctx); err != nil {
		return err
	}
	a.creds = pluginhost.NewCredentials(pluginhost.Options{Binary: cb, SHA256: a.cfg.Credentials.SHA256, Settings: a.cfg.Credentials.Settings, Logger: a.log, GoMaxProcs: a.cfg.Credentials.Procs()})
	return a.creds.Start(ctx)
}

// Close stops the plugins and closes the connections.
func (a *App) Close() {
	if a.engine != nil {
		a.engine.Close()
	}
	if a.creds != nil {
		a.creds.Close()
	}
	if a.redis != nil {
		a.redis.Close()
	}
	if a.store != nil {
		a.store.Close()
	}
}

// EnsureAdmin creates or updates the superuser username. With an empty pass it creates the
// user with a generated password, printed once to out, and leaves an existing user alone.
func (a *App) EnsureAdmin(ctx context.Context, username, pass string, out *os.File) error {
	generated := pass == ""
	if generated {
		if _, err := a.store.UserByUsername(ctx, username); err == nil {
			return nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		var err error
		if pass, err = password.Generate(); err != nil {
			return err
		}
	}
	hash, err := password.Hash(pass)
	if err != nil {
		return err
	}
	created, err := a.store.UpsertSuperuser(ctx, username, "", hash)
	if err != nil {
		return err
	}
	if generated {
		fmt.Fprintf(out, "\nCreated superuser %q with password %s\nIt is shown only this once; set ESTELA_ADMIN_PASSWORD to choose another.\n\n", username, pass)
	}
	a.log.Info("superuser ready", "username", username, "created", created)
	return nil
}

// RunAPI serves the HTTP API on the configured address until ctx is done.
func (a *App) RunAPI(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.Listen, err)
	}
	return a.Serve(ctx, ln)
}

// Serve serves the HTTP API on ln until ctx is done, then shuts down gracefully.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	mailer, mailerErr := accountMailer(a.cfg.Accounts)
	if mailerErr != nil {
		return mailerErr
	}
	srv := api.New(a.store, a.queue, a.dispatch, a.creds, livestats.NewReader(a.redis, a.cfg.RedisNamespace+":"), api.Options{
		CORSOrigins: a.cfg.CORSOrigins, MaxUploadBytes: a.cfg.MaxUploadBytes, MaxIngestBytes: a.cfg.MaxIngestBytes,
		Mailer: mailer, Accounts: accountOptions(a.cfg.Accounts),
		Health: map[string]api.HealthCheck{
			"database":    a.store.Ping,
			"redis":       a.queue.Ping,
			"engine":      pluginCheck(a.engine.Healthy),
			"credentials": pluginCheck(a.creds.Healthy),
		},
	}, a.log)
	httpSrv := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	// Serve returns as soon as Shutdown starts; the requests in progress end within Shutdown.
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		<-ctx.Done()
		a.log.Info("api stopping: finishing the requests in progress, for up to 20 s")
		shutdown, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := httpSrv.Shutdown(shutdown); err != nil {
			a.log.Warn("requests still in progress at the end of the shutdown timeout were cut off", "error", err)
		}
	}()
	a.log.Info("api listening", "address", ln.Addr().String(), "api_host", a.cfg.APIHost)
	err := httpSrv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		<-drained
	}
	srv.Wait()
	a.log.Info("api stopped")
	if !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func pluginCheck(healthy func(context.Context) bool) api.HealthCheck {
	return func(ctx context.Context) error {
		if !healthy(ctx) {
			return errors.New("plugin process is not running or does not answer")
		}
		return nil
	}
}

// RunWorker processes jobs, deploys and reconciles until ctx is done.
func (a *App) RunWorker(ctx context.Context) {
	a.queue.Run(ctx, a.dispatch, queue.WorkerOptions{
		Concurrency: uint(a.cfg.Worker.Concurrency), ReconcileEvery: a.cfg.Worker.ReconcileInterval(), Logger: a.log,
	})
}
