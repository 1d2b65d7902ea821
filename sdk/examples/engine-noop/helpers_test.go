package main

import (
	"archive/zip"
	"bytes"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// projectZip returns a Scrapy project archive with the spiders "alpha" and
// "beta", and a decoy name outside the spiders folder.
func projectZip(t testing.TB) []byte {
	t.Helper()
	files := map[string]string{
		"scrapy.cfg":                    "[settings]\ndefault = myproject.settings\n",
		"myproject/settings.py":         "BOT_NAME = 'myproject'\n",
		"myproject/spiders/__init__.py": "",
		"myproject/spiders/alpha.py":    "import scrapy\n\nclass Alpha(scrapy.Spider):\n    name = \"alpha\"\n",
		"myproject/spiders/beta.py":     "import scrapy\n\nclass Beta(scrapy.Spider):\n    name = 'beta'\n\n    def parse(self, response):\n        name = 'local'\n",
		"myproject/items.py":            "class Item:\n    name = 'not-a-spider'\n",
	}
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for name, content := range files {
		f, err := w.Create(name)
		if err != nil {
			t.Fatalf("create %s in zip: %v", name, err)
		}
		if _, err := f.Write([]byte(content)); err != nil {
			t.Fatalf("write %s in zip: %v", name, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close zip: %v", err)
	}
	return buf.Bytes()
}

// newConfigured returns a noop engine configured with the JSON settings.
func newConfigured(t testing.TB, settings string) *noopEngine {
	t.Helper()
	e := newEngine(hclog.NewNullLogger())
	resp, err := e.Configure(t.Context(), &pluginapi.ConfigureRequest{Config: []byte(settings)})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if err := resp.Err(); err != nil {
		t.Fatalf("Configure %s: %v", settings, err)
	}
	return e
}

func createJob(t testing.TB, eng engine.Engine, spec engine.JobSpec) engine.JobStatus {
	t.Helper()
	resp, err := eng.CreateJob(t.Context(), &engine.CreateJobRequest{Spec: spec})
	if err != nil {
		t.Fatalf("CreateJob %s: %v", spec.Name, err)
	}
	return resp.Job
}

func getJob(t testing.TB, eng engine.Engine, name string) engine.JobStatus {
	t.Helper()
	resp, err := eng.GetJob(t.Context(), &engine.GetJobRequest{Name: name})
	if err != nil {
		t.Fatalf("GetJob %s: %v", name, err)
	}
	return resp.Job
}

// waitFinal polls the job until it reaches a final state, for at most 10 seconds.
func waitFinal(t testing.TB, eng engine.Engine, name string) engine.JobStatus {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		job := getJob(t, eng, name)
		if job.State.Final() {
			return job
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s after 10s", name, job.State)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
