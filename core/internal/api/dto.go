package api

import (
	"github.com/estela-go/estela-go/core/internal/store"
)

// Wire shapes, separate from the store models. Lists always encode as [], never null.

type userDTO struct {
	Username string `json:"username"`
	Email    string `json:"email"`
}

type memberDTO struct {
	User       userDTO `json:"user"`
	Permission string  `json:"permission"`
}

type envVarDTO struct {
	EVID   int64   `json:"evid"`
	Name   string  `json:"name"`
	Value  *string `json:"value"`
	Masked bool    `json:"masked"`
}

type projectDTO struct {
	PID            string      `json:"pid"`
	Name           string      `json:"name"`
	Category       string      `json:"category"`
	Framework      string      `json:"framework"`
	ContainerImage string      `json:"container_image"`
	Users          []memberDTO `json:"users"`
	EnvVars        []envVarDTO `json:"env_vars"`
	DataStatus     string      `json:"data_status"`
	DataExpiryDays int         `json:"data_expiry_days"`
	Created        *string     `json:"created"`
	LastModified   *string     `json:"last_modified"`
}

type spiderDTO struct {
	SID            int64       `json:"sid"`
	Name           string      `json:"name"`
	Project        string      `json:"project"`
	EnvVars        []envVarDTO `json:"env_vars"`
	DataStatus     string      `json:"data_status"`
	DataExpiryDays int         `json:"data_expiry_days"`
	LastModified   *string     `json:"last_modified"`
}

type deployDTO struct {
	DID          int64   `json:"did"`
	Project      string  `json:"project"`
	User         userDTO `json:"user"`
	Status       string  `json:"status"`
	SpidersCount int     `json:"spiders_count"`
	Created      string  `json:"created"`
	// ErrorReason says why a deploy failed; estela keeps it behind a separate logs route.
	ErrorReason string `json:"error_reason"`
}

type argDTO struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type tagDTO struct {
	Name string `json:"name"`
}

type spiderRefDTO struct {
	SID  int64  `json:"sid"`
	Name string `json:"name"`
}

type jobDTO struct {
	JID                       int64          `json:"jid"`
	Spider                    spiderRefDTO   `json:"spider"`
	Created                   string         `json:"created"`
	Name                      string         `json:"name"`
	Lifespan                  string         `json:"lifespan"`
	TotalResponseBytes        int64          `json:"total_response_bytes"`
	ItemCount                 int64          `json:"item_count"`
	RequestCount              int64          `json:"request_count"`
	Args                      []argDTO       `json:"args"`
	EnvVars                   []envVarDTO    `json:"env_vars"`
	Tags                      []tagDTO       `json:"tags"`
	JobStatus                 string         `json:"job_status"`
	Cronjob                   *int64         `json:"cronjob"`
	DataExpiryDays            *int           `json:"data_expiry_days"`
	DataStatus                string         `json:"data_status"`
	DatabaseInsertionProgress float64        `json:"database_insertion_progress"`
	StorageSize               int64          `json:"storage_size" doc:"about how many bytes of JSON the job's stored items, requests and logs take"`
	ResourceTier              string         `json:"resource_tier"`
	PeakMemory                *int64         `json:"peak_memory" doc:"peak memory in bytes from the job's final stats; null until they arrive"`
	ErrorReason               string         `json:"error_reason"`
	ProxyUsageData            map[string]any `json:"proxy_usage_data"`
}

func envVarsDTO(vars []store.EnvVar) []envVarDTO {
	out := make([]envVarDTO, len(vars))
	for i, v := range vars {
		out[i] = envVarDTO{EVID: v.EVID, Name: v.Name, Masked: v.Masked}
		if !v.Masked {
			value := v.Value
			out[i].Value = &value
		}
	}
	return out
}

func projectToDTO(p *store.Project, members []store.Member, vars []store.EnvVar) projectDTO {
	users := make([]memberDTO, len(members))
	for i, m := range members {
		users[i] = memberDTO{User: userDTO{m.Username, m.Email}, Permission: m.Role}
	}
	return projectDTO{
		PID: p.PID, Name: p.Name, Category: p.Category, Framework: p.Framework,
		Users: users, EnvVars: envVarsDTO(vars), DataStatus: p.DataStatus, DataExpiryDays: p.DataExpiryDays,
		Created: formatProjectTime(&p.Created), LastModified: formatProjectTime(p.LastModified),
	}
}

func spiderToDTO(s *store.Spider, vars []store.EnvVar) spiderDTO {
	return spiderDTO{SID: s.SID, Name: s.Name, Project: s.ProjectID, EnvVars: envVarsDTO(vars),
		DataStatus: s.DataStatus, DataExpiryDays: s.DataExpiryDays}
}

func deployToDTO(d *store.Deploy) deployDTO {
	return deployDTO{DID: d.DID, Project: d.ProjectID, User: userDTO{d.Username, d.Email}, Status: d.Status,
		SpidersCount: d.SpidersCount, Created: formatJobTime(d.Created), ErrorReason: d.ErrorReason}
}

func jobToDTO(j *store.Job, vars []store.EnvVar) jobDTO {
	args := make([]argDTO, len(j.Args))
	for i, a := range j.Args {
		args[i] = argDTO(a)
	}
	tags := make([]tagDTO, len(j.Tags))
	for i, t := range j.Tags {
		tags[i] = tagDTO{t}
	}
	progress := 0.0
	if store.IsTerminal(j.Status) {
		// Data is stored before each batch is acknowledged, so a finished job has it all.
		progress = 100
	}
	proxy := j.ProxyUsageData
	if proxy == nil {
		proxy = map[string]any{}
	}
	return jobDTO{
		JID: j.JID, Spider: spiderRefDTO{j.SpiderID, j.SpiderName}, Created: formatJobTime(j.Created), Name: j.Name(),
		Lifespan: formatDuration(j.LifespanMicros), TotalResponseBytes: j.TotalResponseBytes, ItemCount: j.ItemCount,
		RequestCount: j.RequestCount, Args: args, EnvVars: envVarsDTO(vars), Tags: tags, JobStatus: j.Status,
		Cronjob: j.CronjobID, DataExpiryDays: j.DataExpiryDays, DataStatus: j.DataStatus,
		DatabaseInsertionProgress: progress, StorageSize: j.StorageBytes, ResourceTier: j.ResourceTier,
		PeakMemory: j.PeakMemoryBytes, ErrorReason: j.ErrorReason, ProxyUsageData: proxy,
	}
}
