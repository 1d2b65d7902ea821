package api

// Request bodies. Handlers bind them with bind, and the OpenAPI document reads the same tags.

type loginRequest struct {
	Username string `json:"username" validate:"required" maxlen:"150"`
	Password string `json:"password" validate:"required" maxlen:"4096"`
}

type projectCreateRequest struct {
	Name           string  `json:"name" validate:"required" maxlen:"1000"`
	Category       *string `json:"category" enum:"NOT SPECIFIED,E-COMMERCE,LOGISTICS,FINANCE,EDUCATIONAL,TECHNOLOGY,OTHER_CATEGORY"`
	Framework      *string `json:"framework" enum:"SCRAPY,REQUESTS"`
	DataStatus     *string `json:"data_status" enum:"PERSISTENT,PENDING"`
	DataExpiryDays *int    `json:"data_expiry_days" min:"0" max:"32767"`
}

type deployUploadRequest struct {
	ProjectZip string `json:"project_zip" validate:"required" doc:"the project as a zip file, with scrapy.cfg at its root or under one top-level folder"`
}

type argWrite struct {
	Name  string `json:"name" validate:"required" maxlen:"1000"`
	Value string `json:"value" maxlen:"1000"`
}

type tagWrite struct {
	Name string `json:"name" validate:"required" maxlen:"50"`
}

// envVarWrite is an environment variable as clients send it. With evid, the variable of that
// id in the same project is copied, which is how clients pass on masked values they cannot see.
type envVarWrite struct {
	EVID   *int64 `json:"evid" min:"1"`
	Name   string `json:"name" maxlen:"1000"`
	Value  string `json:"value" maxlen:"12000"`
	Masked bool   `json:"masked"`
}

type jobCreateRequest struct {
	Args           []argWrite    `json:"args"`
	EnvVars        []envVarWrite `json:"env_vars"`
	Tags           []tagWrite    `json:"tags"`
	DataStatus     *string       `json:"data_status" enum:"PERSISTENT,PENDING"`
	DataExpiryDays *int          `json:"data_expiry_days" min:"1" max:"32767" doc:"days the data is kept when data_status is PENDING; 1 when absent"`
	ResourceTier   *string       `json:"resource_tier" enum:"TINY,XSMALL,SMALL,MEDIUM,LARGE,XLARGE,HUGE,XHUGE"`
	Cronjob        *int64        `json:"cronjob" min:"1"`
}

type jobUpdateRequest struct {
	Status             *string        `json:"status" enum:"IN_QUEUE,WAITING,RUNNING,COMPLETED,ERROR,STOPPED" doc:"a user may only set STOPPED; the job itself reports RUNNING, COMPLETED and ERROR"`
	Lifespan           *string        `json:"lifespan" maxlen:"64" doc:"seconds, or [D ]HH:MM:SS[.ffffff]; job token only"`
	TotalResponseBytes *int64         `json:"total_response_bytes" min:"0" doc:"job token only"`
	ItemCount          *int64         `json:"item_count" min:"0" doc:"job token only"`
	RequestCount       *int64         `json:"request_count" min:"0" doc:"job token only"`
	ProxyUsageData     map[string]any `json:"proxy_usage_data" doc:"JSON object, or a JSON-encoded string in form bodies; job token only"`
	ErrorReason        *string        `json:"error_reason" maxlen:"200000" doc:"job token only"`
	DataStatus         *string        `json:"data_status" enum:"PERSISTENT,PENDING" doc:"users only"`
	DataExpiryDays     *int           `json:"data_expiry_days" min:"1" max:"32767"`
}

// Query parameters shared by several routes.
var (
	pageQuery = []param{
		{"page", "page number, from 1", map[string]any{"type": "integer", "minimum": 1}},
		{"page_size", "results per page, default 100; a larger size gives pages of 100", map[string]any{"type": "integer", "minimum": 1}},
	}
	shortPageQuery = []param{
		{"page", "page number, from 1", map[string]any{"type": "integer", "minimum": 1}},
		{"page_size", "results per page, 1 to 100, default 10", map[string]any{"type": "integer", "minimum": 1, "maximum": 100}},
	}
	orderingQuery  = param{"ordering", "name, category, framework, created, last_modified or role, with a leading - for descending order", map[string]any{"type": "string"}}
	searchQuery    = param{"search", "case-insensitive substring of the name", map[string]any{"type": "string"}}
	jobFilterQuery = []param{
		{"status", "only jobs with this status", map[string]any{"type": "string", "enum": jobStatuses}},
		{"tag", "only jobs with this tag", map[string]any{"type": "string"}},
		{"cronjob", "only jobs of this cron job", map[string]any{"type": "integer"}},
	}
	dataTypeParam = param{"type", "items (default), requests, logs or stats", map[string]any{"type": "string", "enum": []string{"items", "requests", "logs", "stats"}}}
	jobDataQuery  = []param{dataTypeParam,
		{"page", "page number, from 1", map[string]any{"type": "integer", "minimum": 1}},
		{"page_size", "records per page, at most 100, default 50", map[string]any{"type": "integer", "minimum": 1, "maximum": 100}},
		{"mode", "chunks for estela-cli's chunk protocol (also chosen by an estela-cli/ User-Agent)", map[string]any{"type": "string", "enum": []string{"chunks"}}},
		{"current_chunk", "next_chunk of the previous chunk", map[string]any{"type": "string"}},
		{"level", "logs only: keep lines of this level, such as ERROR; ALL or empty keeps every line", map[string]any{"type": "string"}},
		{"search", "logs only: keep lines containing this text, ignoring case", map[string]any{"type": "string"}},
	}
	downloadQuery = []param{
		{"type", "items (default), requests or logs", map[string]any{"type": "string", "enum": []string{"items", "requests", "logs"}}},
		{"format", "json (default, {\"results\": [...]}) or jsonl (one record per line)", map[string]any{"type": "string", "enum": []string{"json", "jsonl"}}},
	}
)
