package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-pg/pg/v10"
	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/core/internal/store"
)

// platform is the system under test: Postgres, Redis, the API process and, during some
// phases, worker processes, plus the benchmark's own connections to the database.
type platform struct {
	opts Options
	log  hclog.Logger

	dbURL, redisURL string
	namespace       string
	// noCheckpoint is set once CHECKPOINT failed because the user lacks the privilege.
	noCheckpoint bool
	configPath   string
	// db is a raw connection for setup and for the raw COPY limits. The limits use go-pg, the
	// store's driver, so that a ratio shows the platform's overhead and not a driver's.
	db *pg.DB
	st *store.Store

	api       *serverProcess
	client    *apiClient
	adminKey  string
	processes []*serverProcess

	// project is the benchmark's project; spiders maps the deploy's spider names to ids.
	project string
	spiders map[string]int64
	// dispatchWorker builds the deploy and dispatches the dispatch phase's jobs.
	dispatchWorker *serverProcess

	closers []func()
}

// Spiders of the deploy: the list phase's million jobs stay apart from everything else.
const (
	mainSpider = "alpha"
	listSpider = "beta"
)

func startPlatform(ctx context.Context, opts Options) (_ *platform, err error) {
	p := &platform{opts: opts, log: opts.Log, namespace: "estela-bench-" + randomHex(4)}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	if err := p.openServices(ctx); err != nil {
		return nil, err
	}
	if err := p.openDatabase(ctx); err != nil {
		return nil, err
	}
	if err := p.writeConfig(); err != nil {
		return nil, err
	}
	if err := p.startAPI(ctx); err != nil {
		return nil, err
	}
	// At debug level the worker logs each launch after the engine accepted it, which the
	// dispatch phase counts.
	if p.dispatchWorker, err = p.startWorker(ctx, "worker-dispatch", "ESTELA_LOG_LEVEL=debug"); err != nil {
		return nil, err
	}
	return p, p.deployProject(ctx)
}

// openServices starts Postgres and Redis with deploy/local/services.sh unless both URLs are set.
func (p *platform) openServices(ctx context.Context) error {
	p.dbURL, p.redisURL = p.opts.DatabaseURL, p.opts.RedisURL
	if p.dbURL != "" && p.redisURL != "" {
		// The run's Redis keys stay behind, under a prefix of their own.
		p.log.Info("using the given Postgres and Redis", "redis_namespace", p.namespace)
		return nil
	}
	// The folder is readable by all because services.sh, run as root, keeps the data in it only
	// when the postgres account can enter it, and elsewhere under /var/tmp otherwise.
	dir, err := os.MkdirTemp("", "estela-bench-services-")
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		return fmt.Errorf("create services folder: %w", err)
	}

	script := filepath.Join(p.opts.Repo, "deploy/local/services.sh")
	p.log.Info("starting Postgres and Redis", "script", script, "dir", dir)
	p.closers = append(p.closers, func() {
		if out, err := exec.Command(script, "stop", dir).CombinedOutput(); err != nil {
			p.log.Warn("stop services", "error", err, "output", string(out))
		}
		os.RemoveAll(dir)
	})
	start := exec.CommandContext(ctx, script, "start", dir)
	killGroupOnCancel(start)
	if out, err := start.CombinedOutput(); err != nil {
		return fmt.Errorf("start services with %s: %w\n%s", script, err, out)
	}

	env, err := readEnvFile(filepath.Join(dir, "services.env"))
	if err != nil {
		return err
	}
	p.dbURL, p.redisURL = env["DATABASE_URL"], env["REDIS_URL"]
	return nil
}

func readEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read services: %w", err)
	}
	defer f.Close()
	env := map[string]string{}
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		if k, v, ok := strings.Cut(scanner.Text(), "="); ok {
			env[k] = v
		}
	}
	return env, scanner.Err()
}

// openDatabase creates the benchmark's own database unless UseDatabaseAsIs is set, applies
// the migrations and opens the store and the raw connection.
func (p *platform) openDatabase(ctx context.Context) error {
	if !p.opts.UseDatabaseAsIs {
		name := "estela_bench_" + randomHex(6)
		admin, err := connectAdmin(p.dbURL)
		if err != nil {
			return err
		}
		defer admin.Close()
		if _, err := admin.ExecContext(ctx, "CREATE DATABASE ?", pg.Ident(name)); err != nil {
			return fmt.Errorf("create database %s: %w", name, err)
		}
		p.log.Info("benchmark database created; it is dropped at the end", "database", name)
		adminURL := p.dbURL
		p.closers = append(p.closers, func() { dropDatabase(adminURL, name, p.log) })
		if p.dbURL, err = withDatabase(p.dbURL, name); err != nil {
			return err
		}
	}
	st, err := store.Open(ctx, p.dbURL, store.Options{})
	if err != nil {
		return err
	}
	p.st = st
	if _, err := st.Migrate(ctx); err != nil {
		return err
	}
	p.db, err = connect(p.dbURL)
	return err
}

func connect(databaseURL string) (*pg.DB, error) {
	opts, err := pg.ParseURL(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse database URL: %w", err)
	}
	opts.PoolSize = 40
	return pg.Connect(opts), nil
}

// adminTimeout bounds each round trip to the server the benchmark's database is created on.
// go-pg's reads do not end when their context is canceled, so without it a server that
// accepts connections and never replies would hold the benchmark, and its interrupts, for
// good.
const adminTimeout = time.Minute

// connectAdmin connects as connect does, with adminTimeout on every read and write.
func connectAdmin(databaseURL string) (*pg.DB, error) {
	opts, err := pg.ParseURL(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	opts.PoolSize = 2
	opts.ReadTimeout, opts.WriteTimeout = adminTimeout, adminTimeout
	return pg.Connect(opts), nil
}

func withDatabase(databaseURL, name string) (string, error) {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return "", fmt.Errorf("parse database URL: %w", err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

func dropDatabase(adminURL, name string, log hclog.Logger) {
	admin, err := connectAdmin(adminURL)
	if err == nil {
		defer admin.Close()
		_, err = admin.Exec("DROP DATABASE IF EXISTS ? WITH (FORCE)", pg.Ident(name))
	}
	if err != nil {
		log.Warn("drop benchmark database", "database", name, "error", err)
	}
}

// writeConfig writes the HCL file of every server process. Reconciles are an hour apart and
// lost jobs get an hour of grace, so the workers' own reconcile does not act on the jobs of
// other phases. The reconcile phase calls the reconcile itself.
func (p *platform) writeConfig() error {
	listen, err := freeLoopbackAddress()
	if err != nil {
		return err
	}
	dirs := make([]string, len(p.opts.PluginDirs))
	for i, d := range p.opts.PluginDirs {
		abs, err := filepath.Abs(d)
		if err != nil {
			return err
		}
		dirs[i] = strconv.Quote(abs)
	}
	config := fmt.Sprintf(`listen = %q
redis_namespace = %q
plugin_dirs = [%s]

worker {
  concurrency = 16
  reconcile_seconds = 3600
  lost_job_grace_seconds = 3600
}

engine "noop" {}

credentials "local" {
  data_dir = %q
}
`, listen, p.namespace, strings.Join(dirs, ", "), filepath.Join(p.opts.WorkDir, "archives"))
	p.configPath = filepath.Join(p.opts.WorkDir, "estela.hcl")
	p.client = newAPIClient("http://"+listen, 64)
	return os.WriteFile(p.configPath, []byte(config), 0o600)
}

// startAPI runs the API process and logs in as its superuser.
func (p *platform) startAPI(ctx context.Context) error {
	password := randomHex(16)
	api, err := p.startServer("api", "api", "ESTELA_ADMIN_USERNAME=admin", "ESTELA_ADMIN_PASSWORD="+password)
	if err != nil {
		return err
	}
	p.api = api
	if err := api.waitForHTTP(ctx, p.client.http, p.client.base+"/", time.Minute); err != nil {
		return err
	}
	var login struct {
		Key string `json:"key"`
	}
	err = p.client.postJSON(ctx, "/api/auth/login", "", map[string]string{"username": "admin", "password": password}, 200, &login)
	p.adminKey = login.Key
	return err
}

// startWorker runs a worker process and waits until it takes tasks.
func (p *platform) startWorker(ctx context.Context, name string, env ...string) (*serverProcess, error) {
	w, err := p.startServer("worker", name, env...)
	if err != nil {
		return nil, err
	}
	return w, w.waitForLog(ctx, "worker started", time.Minute)
}

// close stops every process, then drops the database and stops the services it started.
func (p *platform) close() {
	for _, s := range p.processes {
		s.stop()
	}
	if p.st != nil {
		p.st.Close()
	}
	if p.db != nil {
		p.db.Close()
	}
	for i := len(p.closers) - 1; i >= 0; i-- {
		p.closers[i]()
	}
}

// retireActiveJobs ends every job that is still queued or active, so that a phase starts
// without the jobs of the phases before it.
func (p *platform) retireActiveJobs(ctx context.Context) error {
	_, err := p.db.ExecContext(ctx, `UPDATE jobs SET status = 'COMPLETED', status_changed = now()
		WHERE status IN ('IN_QUEUE', 'WAITING', 'RUNNING')`)
	if err != nil {
		return fmt.Errorf("end the jobs of earlier phases: %w", err)
	}
	return nil
}

// maxJobID returns the highest job id so far, so that a phase can tell its own jobs apart.
func (p *platform) maxJobID(ctx context.Context) (int64, error) {
	var id int64
	_, err := p.db.QueryOneContext(ctx, pg.Scan(&id), "SELECT coalesce(max(jid), 0) FROM jobs")
	return id, err
}

func (p *platform) projectPath() string { return "/api/projects/" + p.project }

func (p *platform) jobPath(sid, jid int64) string {
	return fmt.Sprintf("%s/spiders/%d/jobs/%d", p.projectPath(), sid, jid)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
