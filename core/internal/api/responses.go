package api

// Response bodies that are not resource representations.

// pageOf is DRF's page envelope with absolute next and previous links.
type pageOf[T any] struct {
	Count    int     `json:"count"`
	Next     *string `json:"next"`
	Previous *string `json:"previous"`
	Results  []T     `json:"results"`
}

type loginDTO struct {
	User userDTO `json:"user"`
	Key  string  `json:"key"`
}

type healthDTO struct {
	Healthy bool              `json:"healthy"`
	Checks  map[string]string `json:"checks"`
}

type deployCreatedDTO struct {
	DID     int64  `json:"did"`
	Status  string `json:"status"`
	Created string `json:"created"`
}

type jobCreatedDTO struct {
	JID            int64       `json:"jid"`
	Name           string      `json:"name"`
	Args           []argDTO    `json:"args"`
	EnvVars        []envVarDTO `json:"env_vars"`
	Tags           []tagDTO    `json:"tags"`
	JobStatus      string      `json:"job_status"`
	Cronjob        *int64      `json:"cronjob"`
	DataExpiryDays *int        `json:"data_expiry_days"`
	DataStatus     string      `json:"data_status"`
	ResourceTier   string      `json:"resource_tier"`
}

type jobUpdatedDTO struct {
	JID                int64          `json:"jid"`
	Status             string         `json:"status"`
	Lifespan           string         `json:"lifespan"`
	TotalResponseBytes int64          `json:"total_response_bytes"`
	ItemCount          int64          `json:"item_count"`
	RequestCount       int64          `json:"request_count"`
	DataStatus         string         `json:"data_status"`
	DataExpiryDays     *int           `json:"data_expiry_days"`
	ProxyUsageData     map[string]any `json:"proxy_usage_data"`
}

// record is one stored item, request, log line or stats document, as the job sent it.
type record map[string]any

type downloadDTO struct {
	Results []record `json:"results"`
}

type ingestedDTO struct {
	Stored    int  `json:"stored"`
	Duplicate bool `json:"duplicate"`
}
