package store

import (
	"time"
)

// Roles a user can hold on a project, from most to least powerful.
const (
	RoleOwner     = "OWNER"
	RoleAdmin     = "ADMIN"
	RoleDeveloper = "DEVELOPER"
	RoleViewer    = "VIEWER"
)

// Job statuses as estela names them.
const (
	JobInQueue   = "IN_QUEUE"
	JobWaiting   = "WAITING"
	JobRunning   = "RUNNING"
	JobCompleted = "COMPLETED"
	JobError     = "ERROR"
	JobStopped   = "STOPPED"
)

// Deploy statuses.
const (
	DeployBuilding = "BUILDING"
	DeploySuccess  = "SUCCESS"
	DeployFailure  = "FAILURE"
	DeployCanceled = "CANCELED"
)

// User is an account that logs in with a password and acts through tokens.
type User struct {
	tableName struct{} `pg:"users"`

	ID           int64      `pg:"id,pk"`
	Username     string     `pg:"username,notnull"`
	Email        string     `pg:"email,use_zero"`
	PasswordHash string     `pg:"password_hash,notnull"`
	IsActive     bool       `pg:"is_active,use_zero"`
	IsStaff      bool       `pg:"is_staff,use_zero"`
	IsSuperuser  bool       `pg:"is_superuser,use_zero"`
	MemoryQuota  int        `pg:"memory_quota,use_zero"`
	LastLogin    *time.Time `pg:"last_login"`
	DateJoined   time.Time  `pg:"date_joined,default:now()"`
}

// Project groups spiders, deploys and members.
type Project struct {
	tableName struct{} `pg:"projects"`

	PID            string     `pg:"pid,pk,type:uuid"`
	Name           string     `pg:"name,notnull"`
	Category       string     `pg:"category,notnull"`
	Framework      string     `pg:"framework,notnull"`
	DataStatus     string     `pg:"data_status,notnull"`
	DataExpiryDays int        `pg:"data_expiry_days,use_zero"`
	Deleted        bool       `pg:"deleted,use_zero"`
	Created        time.Time  `pg:"created,default:now()"`
	LastModified   *time.Time `pg:"last_modified"`
}

// Member is a user's role on a project, joined with the user's name and e-mail.
type Member struct {
	UserID   int64  `pg:"user_id"`
	Username string `pg:"username"`
	Email    string `pg:"email"`
	Role     string `pg:"role"`
}

// Spider is a spider found in a project by a successful deploy.
type Spider struct {
	tableName struct{} `pg:"spiders"`

	SID            int64     `pg:"sid,pk"`
	ProjectID      string    `pg:"project_id,type:uuid"`
	Name           string    `pg:"name,notnull"`
	DataStatus     string    `pg:"data_status,notnull"`
	DataExpiryDays int       `pg:"data_expiry_days,use_zero"`
	Deleted        bool      `pg:"deleted,use_zero"`
	Created        time.Time `pg:"created,default:now()"`
}

// Deploy is one uploaded version of a project and the outcome of preparing it.
type Deploy struct {
	tableName struct{} `pg:"deploys"`

	DID          int64      `pg:"did,pk"`
	ProjectID    string     `pg:"project_id,type:uuid"`
	UserID       *int64     `pg:"user_id"`
	Username     string     `pg:"username"`
	Email        string     `pg:"email"`
	Status       string     `pg:"status,notnull"`
	ArtifactRef  string     `pg:"artifact_ref,use_zero"`
	ErrorReason  string     `pg:"error_reason,use_zero"`
	Attempts     int        `pg:"attempts,use_zero"`
	SpidersCount int        `pg:"spiders_count"`
	Created      time.Time  `pg:"created,default:now()"`
	Finished     *time.Time `pg:"finished"`
	BuildStarted *time.Time `pg:"build_started"`
}

// Arg is a spider argument, passed as `-a name=value`.
type Arg struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// EnvVar is an environment variable of a project, spider, job or cron job.
type EnvVar struct {
	tableName struct{} `pg:"env_vars"`

	EVID      int64   `pg:"evid,pk"`
	ProjectID *string `pg:"project_id,type:uuid"`
	SpiderID  *int64  `pg:"spider_id"`
	JobID     *int64  `pg:"job_id"`
	CronjobID *int64  `pg:"cronjob_id"`
	Name      string  `pg:"name,notnull"`
	Value     string  `pg:"value,use_zero"`
	Masked    bool    `pg:"masked,use_zero"`
}

// Job is one run of a spider.
type Job struct {
	tableName struct{} `pg:"jobs"`

	JID        int64  `pg:"jid,pk"`
	ProjectID  string `pg:"project_id,type:uuid"`
	SpiderID   int64  `pg:"spider_id"`
	SpiderName string `pg:"spider_name"`
	// Seq numbers the job within its spider from 1, set by the database on insert.
	Seq                int64          `pg:"seq"`
	CronjobID          *int64         `pg:"cronjob_id"`
	DeployID           *int64         `pg:"deploy_id"`
	Status             string         `pg:"status,notnull"`
	DataStatus         string         `pg:"data_status,notnull"`
	DataExpiryDays     *int           `pg:"data_expiry_days"`
	ResourceTier       string         `pg:"resource_tier,notnull"`
	Args               []Arg          `pg:"args,type:jsonb,use_zero"`
	Tags               []string       `pg:"tags,array,use_zero"`
	LifespanMicros     int64          `pg:"lifespan_us,use_zero"`
	TotalResponseBytes int64          `pg:"total_response_bytes,use_zero"`
	ItemCount          int64          `pg:"item_count,use_zero"`
	RequestCount       int64          `pg:"request_count,use_zero"`
	ProxyUsageData     map[string]any `pg:"proxy_usage_data,type:jsonb,use_zero"`
	ErrorReason        string         `pg:"error_reason,use_zero"`
	DispatchAttempts   int            `pg:"dispatch_attempts,use_zero"`
	DispatchedAt       *time.Time     `pg:"dispatched_at"`
	// DispatchAfter is when a queued job whose launch failed may be claimed again, or nil.
	DispatchAfter *time.Time `pg:"dispatch_after"`
	Created       time.Time  `pg:"created,default:now()"`
	StatusChanged time.Time  `pg:"status_changed,default:now()"`
	// PeakMemoryBytes is the peak memory the job's final stats report, or nil.
	PeakMemoryBytes *int64 `pg:"peak_memory_bytes"`
	// StorageBytes is about how many JSON bytes of data the job stored.
	StorageBytes int64 `pg:"storage_bytes,use_zero"`
	// HasEnvVars is set once the job was given an environment variable, and never cleared.
	HasEnvVars bool     `pg:"has_env_vars"`
	EnvVars    []EnvVar `pg:"-"`
}

// Key returns estela's job key "<jid>.<sid>.<pid>", used for stats keys and collections.
func (j *Job) Key() string {
	return formatKey(j.JID, j.SpiderID, j.ProjectID)
}

// Name returns estela's engine job name "sj-<jid>-<pid>".
func (j *Job) Name() string {
	return jobName(j.JID, j.ProjectID)
}

// Terminal reports whether the job reached a status it never leaves.
func (j *Job) Terminal() bool {
	return IsTerminal(j.Status)
}

// IsTerminal reports whether status is COMPLETED, ERROR or STOPPED.
func IsTerminal(status string) bool {
	return status == JobCompleted || status == JobError || status == JobStopped
}
