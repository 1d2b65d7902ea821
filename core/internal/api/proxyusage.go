package api

import (
	"encoding/json"

	"github.com/estela-go/estela-go/core/internal/lifecycle"
	"github.com/estela-go/estela-go/core/internal/store"
)

// readProxyUsage reads proxy_usage_data, which jobs send as a JSON object or, form-encoded,
// as a JSON-encoded string.
func readProxyUsage(f *fields, u *store.JobUpdate, actor lifecycle.Actor) {
	raw, ok := f.values["proxy_usage_data"]
	if !ok || raw == nil || actor != lifecycle.JobProcess {
		return
	}
	switch v := raw.(type) {
	case map[string]any:
		u.ProxyUsageData = v
	case string:
		var obj map[string]any
		if err := json.Unmarshal([]byte(v), &obj); err != nil || obj == nil {
			f.fail("proxy_usage_data", "Must be a JSON object.")
			return
		}
		u.ProxyUsageData = obj
	default:
		f.fail("proxy_usage_data", "Must be a JSON object.")
	}
}
