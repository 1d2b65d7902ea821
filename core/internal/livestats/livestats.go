// Package livestats reads the Scrapy stats that a running job writes into a Redis hash every
// few seconds, and turns them into job counters.
package livestats

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/gomodule/redigo/redis"
)

// Reader reads and removes live stats hashes.
type Reader struct {
	pool   *redis.Pool
	prefix string
}

// NewReader returns a reader whose keys are prefix + "scrapy_stats_" + job key.
func NewReader(pool *redis.Pool, prefix string) *Reader {
	return &Reader{pool: pool, prefix: prefix}
}

// Key returns the Redis key of a job's live stats, given its "<jid>.<sid>.<pid>" key.
func (r *Reader) Key(jobKey string) string {
	return r.prefix + "scrapy_stats_" + jobKey
}

// Read returns a job's live stats hash; it is empty when the job wrote none.
func (r *Reader) Read(ctx context.Context, jobKey string) (map[string]string, error) {
	conn, err := r.pool.GetContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("read live stats: %w", err)
	}
	defer conn.Close()
	stats, err := redis.StringMap(conn.Do("HGETALL", r.Key(jobKey)))
	if err != nil {
		return nil, fmt.Errorf("read live stats of %s: %w", jobKey, err)
	}
	return stats, nil
}

// counterFields are the stats fields that CountersOf reads.
var counterFields = []string{"item_scraped_count", "downloader/request_count", "downloader/response_bytes", "elapsed_time_seconds"}

// ReadCounters reads the counters of several jobs' live stats in one round trip, keyed by job
// key. A job whose hash has none of the counters' fields is left out.
func (r *Reader) ReadCounters(ctx context.Context, jobKeys []string) (map[string]Counters, error) {
	out := make(map[string]Counters, len(jobKeys))
	if len(jobKeys) == 0 {
		return out, nil
	}
	conn, err := r.pool.GetContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("read live stats: %w", err)
	}
	defer conn.Close()
	for _, key := range jobKeys {
		args := make([]any, 0, 1+len(counterFields))
		args = append(args, r.Key(key))
		for _, f := range counterFields {
			args = append(args, f)
		}
		if err := conn.Send("HMGET", args...); err != nil {
			return nil, fmt.Errorf("read live stats: %w", err)
		}
	}
	if err := conn.Flush(); err != nil {
		return nil, fmt.Errorf("read live stats: %w", err)
	}
	for _, key := range jobKeys {
		values, err := redis.Values(conn.Receive())
		if err != nil {
			return nil, fmt.Errorf("read live stats of %s: %w", key, err)
		}
		stats := make(map[string]string, len(counterFields))
		for i, v := range values {
			if v != nil && i < len(counterFields) {
				stats[counterFields[i]], _ = redis.String(v, nil)
			}
		}
		if len(stats) > 0 {
			out[key] = CountersOf(stats)
		}
	}
	return out, nil
}

// Delete removes a job's live stats hash.
func (r *Reader) Delete(ctx context.Context, jobKey string) error {
	conn, err := r.pool.GetContext(ctx)
	if err != nil {
		return fmt.Errorf("delete live stats: %w", err)
	}
	defer conn.Close()
	_, err = conn.Do("DEL", r.Key(jobKey))
	return err
}

// Counters are the job fields that live stats fill.
type Counters struct {
	ItemCount          int64
	RequestCount       int64
	TotalResponseBytes int64
	LifespanMicros     int64
}

// CountersOf extracts the job counters from a stats hash, as estela does: items from
// item_scraped_count, requests from downloader/request_count, bytes from
// downloader/response_bytes and the lifespan from elapsed_time_seconds.
func CountersOf(stats map[string]string) Counters {
	return Counters{
		ItemCount:          number(stats["item_scraped_count"]),
		RequestCount:       number(stats["downloader/request_count"]),
		TotalResponseBytes: number(stats["downloader/response_bytes"]),
		LifespanMicros:     int64(math.Round(float(stats["elapsed_time_seconds"]) * 1e6)),
	}
}

func number(s string) int64 {
	return int64(float(s))
}

// float parses a value written by the job: a JSON number, possibly quoted.
func float(s string) float64 {
	f, err := strconv.ParseFloat(strings.Trim(s, `"`), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

// Decode turns a stats hash into the stats document it stands for: estela-crawl writes every
// value JSON-encoded, so numbers become numbers and quoted strings plain strings. A value that
// is not JSON is kept as the string it is.
func Decode(stats map[string]string) map[string]any {
	out := make(map[string]any, len(stats))
	for k, raw := range stats {
		var v any
		if err := json.Unmarshal([]byte(raw), &v); err != nil {
			out[k] = raw
			continue
		}
		out[k] = v
	}
	return out
}
