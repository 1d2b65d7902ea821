package store

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/go-pg/pg/v10"
	"github.com/go-pg/pg/v10/orm"
	"github.com/go-pg/pg/v10/types"
)

// jobListRows receives the rows of the job list statements: the spider's job count, the
// caller and the role, and one job per row. go-pg's own scanning looks each column of each
// row up in a map and sets it through reflection, which took a third of the API's CPU time
// on the job list. These scanners set the fields directly. A column they do not know is an
// error, so a column added to the statements fails the job list's tests until it is scanned
// here.
type jobListRows struct {
	total  int
	role   string
	caller *User
	jobs   []Job
	// row is the row being scanned, into the last of jobs.
	row jobListRow
}

var _ orm.HooklessModel = (*jobListRows)(nil)

func (m *jobListRows) Init() error {
	m.total, m.role, m.caller, m.jobs = 0, "", nil, m.jobs[:0]
	return nil
}

// NextColumnScanner scans each row into a new last element of jobs, so that no row is
// allocated or copied.
func (m *jobListRows) NextColumnScanner() orm.ColumnScanner {
	m.jobs = append(m.jobs, Job{})
	m.row = jobListRow{job: &m.jobs[len(m.jobs)-1]}
	if len(m.jobs) > 1 {
		m.row.prev = &m.jobs[len(m.jobs)-2]
	}
	return &m.row
}

// AddColumnScanner keeps the scanned row. A spider with no job on the page comes as one row
// without a job, which only gives the count.
func (m *jobListRows) AddColumnScanner(s orm.ColumnScanner) error {
	row := s.(*jobListRow)
	m.total, m.role = row.total, row.role
	if row.caller.ID != 0 && m.caller == nil {
		caller := row.caller
		m.caller = &caller
	}
	if row.job.JID == 0 {
		m.jobs = m.jobs[:len(m.jobs)-1]
	}
	return nil
}

// jobListRow is one row of a job list statement.
type jobListRow struct {
	total  int
	role   string
	caller User
	job    *Job
	// prev is the job of the row before, nil for the first. Strings equal to its own are
	// taken from it, without allocating: a page's jobs share their project and spider, and
	// mostly their status, data status and resource tier.
	prev *Job
}

// ScanColumn sets the field of one column. n is the value's length, -1 for NULL, which
// leaves the field at its zero value as go-pg does.
func (r *jobListRow) ScanColumn(col types.ColumnInfo, rd types.Reader, n int) error {
	if n < 0 {
		return nil
	}
	j, prev := r.job, r.prev
	if prev == nil {
		prev = &Job{}
	}
	var err error
	switch col.Name {
	case "list_total":
		r.total, err = types.ScanInt(rd, n)
	case "list_role":
		r.role, err = types.ScanString(rd, n)
	case "list_caller_id":
		r.caller.ID, err = types.ScanInt64(rd, n)
	case "list_caller_superuser":
		r.caller.IsSuperuser, err = types.ScanBool(rd, n)
	case "list_caller_staff":
		r.caller.IsStaff, err = types.ScanBool(rd, n)
	case "list_env_vars":
		err = scanJSON(rd, n, &j.EnvVars)
	case "jid":
		j.JID, err = types.ScanInt64(rd, n)
	case "project_id":
		j.ProjectID, err = scanStringLike(rd, n, prev.ProjectID)
	case "spider_id":
		j.SpiderID, err = types.ScanInt64(rd, n)
	case "spider_name":
		j.SpiderName, err = scanStringLike(rd, n, prev.SpiderName)
	case "seq":
		j.Seq, err = types.ScanInt64(rd, n)
	case "cronjob_id":
		j.CronjobID, err = scanInt64Pointer(rd, n)
	case "status":
		j.Status, err = scanStringLike(rd, n, prev.Status)
	case "data_status":
		j.DataStatus, err = scanStringLike(rd, n, prev.DataStatus)
	case "data_expiry_days":
		var days int
		days, err = types.ScanInt(rd, n)
		j.DataExpiryDays = &days
	case "resource_tier":
		j.ResourceTier, err = scanStringLike(rd, n, prev.ResourceTier)
	case "args":
		if isJSON(rd, n, "[]") {
			j.Args = []Arg{}
			_, err = rd.Discard(n)
		} else {
			err = scanJSON(rd, n, &j.Args)
		}
	case "tags":
		err = pg.Array(&j.Tags).ScanValue(rd, n)
	case "lifespan_us":
		j.LifespanMicros, err = types.ScanInt64(rd, n)
	case "total_response_bytes":
		j.TotalResponseBytes, err = types.ScanInt64(rd, n)
	case "item_count":
		j.ItemCount, err = types.ScanInt64(rd, n)
	case "request_count":
		j.RequestCount, err = types.ScanInt64(rd, n)
	case "proxy_usage_data":
		if isJSON(rd, n, "{}") {
			j.ProxyUsageData = map[string]any{}
			_, err = rd.Discard(n)
		} else {
			err = scanJSON(rd, n, &j.ProxyUsageData)
		}
	case "error_reason":
		j.ErrorReason, err = scanStringLike(rd, n, prev.ErrorReason)
	case "created":
		j.Created, err = scanTime(rd, n)
	case "peak_memory_bytes":
		j.PeakMemoryBytes, err = scanInt64Pointer(rd, n)
	case "storage_bytes":
		j.StorageBytes, err = types.ScanInt64(rd, n)
	default:
		return fmt.Errorf("job list: no scanner for column %q", col.Name)
	}
	if err != nil {
		return fmt.Errorf("job list: column %s: %w", col.Name, err)
	}
	return nil
}

// scanStringLike reads a string, and returns like itself when the two are equal.
func scanStringLike(rd types.Reader, n int, like string) (string, error) {
	if n <= 0 {
		return "", nil
	}
	b, err := rd.ReadFullTemp()
	if err != nil {
		return "", err
	}
	if string(b) == like {
		return like, nil
	}
	return string(b), nil
}

// isJSON reports whether the next n bytes of rd are text, without reading them.
func isJSON(rd types.Reader, n int, text string) bool {
	if n != len(text) || rd.Buffered() < n {
		return false
	}
	return string(rd.Bytes()[:n]) == text
}

func scanJSON(rd types.Reader, n int, v any) error {
	b, err := rd.ReadFullTemp()
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func scanInt64Pointer(rd types.Reader, n int) (*int64, error) {
	v, err := types.ScanInt64(rd, n)
	return &v, err
}

// scanTime reads a timestamptz. It reads the form Postgres writes in UTC, such as
// "2026-12-05 04:25:27.477823+00", itself, because time.Parse, which go-pg's parser calls,
// took 8 % of the API's CPU time on the job list. Other forms go to go-pg's parser.
func scanTime(rd types.Reader, n int) (time.Time, error) {
	b, err := rd.ReadFullTemp()
	if err != nil {
		return time.Time{}, err
	}
	if t, ok := parseUTCTimestamp(b); ok {
		return t, nil
	}
	return types.ParseTime(b)
}

// parseUTCTimestamp reads "YYYY-MM-DD HH:MM:SS[.fraction]+00", with 1 to 9 fraction digits.
func parseUTCTimestamp(b []byte) (time.Time, bool) {
	const whole = len("2006-01-02 15:04:05")
	if len(b) < whole+3 || b[4] != '-' || b[7] != '-' || b[10] != ' ' || b[13] != ':' || b[16] != ':' ||
		string(b[len(b)-3:]) != "+00" {
		return time.Time{}, false
	}
	year, ok1 := decimal(b[0:4])
	month, ok2 := decimal(b[5:7])
	day, ok3 := decimal(b[8:10])
	hour, ok4 := decimal(b[11:13])
	minute, ok5 := decimal(b[14:16])
	second, ok6 := decimal(b[17:19])
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 || month < 1 || month > 12 || day < 1 || day > 31 ||
		hour > 23 || minute > 59 || second > 59 {
		return time.Time{}, false
	}
	nanos := 0
	if fraction := b[whole : len(b)-3]; len(fraction) > 0 {
		digits := fraction[1:]
		f, ok := decimal(digits)
		if fraction[0] != '.' || len(digits) == 0 || len(digits) > 9 || !ok {
			return time.Time{}, false
		}
		for range 9 - len(digits) {
			f *= 10
		}
		nanos = f
	}
	return time.Date(year, time.Month(month), day, hour, minute, second, nanos, time.UTC), true
}

// decimal reads unsigned decimal digits.
func decimal(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
