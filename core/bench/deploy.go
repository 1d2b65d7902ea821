package bench

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"mime/multipart"
	"net/http"
	"time"
)

// projectFiles is a tiny Scrapy project with the spiders alpha and beta, under one top-level
// folder as estela-cli zips it. The noop engine lists spiders by their name attributes.
var projectFiles = map[string]string{
	"bench/scrapy.cfg":                       "[settings]\ndefault = benchproject.settings\n",
	"bench/benchproject/__init__.py":         "",
	"bench/benchproject/settings.py":         "BOT_NAME = 'benchproject'\nSPIDER_MODULES = ['benchproject.spiders']\n",
	"bench/benchproject/spiders/__init__.py": "",
	"bench/benchproject/spiders/alpha.py":    "import scrapy\n\n\nclass Alpha(scrapy.Spider):\n    name = \"alpha\"\n",
	"bench/benchproject/spiders/beta.py":     "import scrapy\n\n\nclass Beta(scrapy.Spider):\n    name = \"beta\"\n",
}

func projectZip() ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range projectFiles {
		f, err := zw.Create(name)
		if err != nil {
			return nil, err
		}
		if _, err := f.Write([]byte(content)); err != nil {
			return nil, err
		}
	}
	err := zw.Close()
	return buf.Bytes(), err
}

// deployProject creates the benchmark's project and deploys projectFiles through the API,
// then waits for the dispatch worker to prepare the deploy on the noop engine.
func (p *platform) deployProject(ctx context.Context) error {
	var project struct {
		PID string `json:"pid"`
	}
	if err := p.client.postJSON(ctx, "/api/projects", p.adminKey, map[string]string{"name": "bench"}, http.StatusCreated, &project); err != nil {
		return err
	}
	p.project = project.PID

	did, err := p.uploadDeploy(ctx)
	if err != nil {
		return err
	}
	if err := p.waitDeploy(ctx, did); err != nil {
		return err
	}
	return p.loadSpiders(ctx)
}

func (p *platform) uploadDeploy(ctx context.Context) (int64, error) {
	archive, err := projectZip()
	if err != nil {
		return 0, fmt.Errorf("zip the project: %w", err)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	part, err := mw.CreateFormFile("project_zip", "bench.zip")
	if err != nil {
		return 0, err
	}
	if _, err := part.Write(archive); err != nil {
		return 0, err
	}
	if err := mw.Close(); err != nil {
		return 0, err
	}
	var deploy struct {
		DID int64 `json:"did"`
	}
	err = p.client.call(ctx, http.MethodPost, p.projectPath()+"/deploys", p.adminKey, body.Bytes(), mw.FormDataContentType(), http.StatusCreated, &deploy)
	return deploy.DID, err
}

func (p *platform) waitDeploy(ctx context.Context, did int64) error {
	var deploy struct {
		Status      string `json:"status"`
		ErrorReason string `json:"error_reason"`
	}
	path := fmt.Sprintf("%s/deploys/%d", p.projectPath(), did)
	err := poll(ctx, time.Minute, 100*time.Millisecond, "deploy "+path+" to be prepared", func() (bool, error) {
		err := p.client.call(ctx, http.MethodGet, path, p.adminKey, nil, "", http.StatusOK, &deploy)
		return err == nil && deploy.Status != "BUILDING", err
	})
	if err == nil && deploy.Status != "SUCCESS" {
		err = fmt.Errorf("deploy %d ended %s: %s", did, deploy.Status, deploy.ErrorReason)
	}
	return err
}

func (p *platform) loadSpiders(ctx context.Context) error {
	var list struct {
		Results []struct {
			SID  int64  `json:"sid"`
			Name string `json:"name"`
		} `json:"results"`
	}
	if err := p.client.call(ctx, http.MethodGet, p.projectPath()+"/spiders", p.adminKey, nil, "", http.StatusOK, &list); err != nil {
		return err
	}
	p.spiders = map[string]int64{}
	for _, s := range list.Results {
		p.spiders[s.Name] = s.SID
	}
	if p.spiders[mainSpider] == 0 || p.spiders[listSpider] == 0 {
		return fmt.Errorf("the deploy lists spiders %v, expected %s and %s", p.spiders, mainSpider, listSpider)
	}
	return nil
}
