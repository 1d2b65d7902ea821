package dispatch

import "github.com/estela-go/estela-go/sdk/engine"

// Tier is a named size of job: its resource requests and limits, and the memory at which
// Scrapy's MemoryUsage extension stops the spider before the engine kills it.
type Tier struct {
	Resources       engine.Resources
	MemUsageLimitMB int
}

const mi = 1 << 20

// Tiers are estela's resource tiers. LARGE is the default.
var Tiers = map[string]Tier{
	"TINY":   {engine.Resources{CPURequestMillis: 128, CPULimitMillis: 256, MemoryRequestBytes: 96 * mi, MemoryLimitBytes: 128 * mi}, 108},
	"XSMALL": {engine.Resources{CPURequestMillis: 192, CPULimitMillis: 384, MemoryRequestBytes: 192 * mi, MemoryLimitBytes: 256 * mi}, 217},
	"SMALL":  {engine.Resources{CPURequestMillis: 256, CPULimitMillis: 512, MemoryRequestBytes: 384 * mi, MemoryLimitBytes: 512 * mi}, 435},
	"MEDIUM": {engine.Resources{CPURequestMillis: 256, CPULimitMillis: 512, MemoryRequestBytes: 768 * mi, MemoryLimitBytes: 1024 * mi}, 870},
	"LARGE":  {engine.Resources{CPURequestMillis: 512, CPULimitMillis: 1024, MemoryRequestBytes: 1152 * mi, MemoryLimitBytes: 1536 * mi}, 1305},
	"XLARGE": {engine.Resources{CPURequestMillis: 512, CPULimitMillis: 1024, MemoryRequestBytes: 1536 * mi, MemoryLimitBytes: 2048 * mi}, 1740},
	"HUGE":   {engine.Resources{CPURequestMillis: 1024, CPULimitMillis: 2048, MemoryRequestBytes: 3072 * mi, MemoryLimitBytes: 4096 * mi}, 3480},
	"XHUGE":  {engine.Resources{CPURequestMillis: 2048, CPULimitMillis: 4096, MemoryRequestBytes: 6144 * mi, MemoryLimitBytes: 8192 * mi}, 6960},
}

// DefaultTier is the tier of a job that names none.
const DefaultTier = "LARGE"
