package store

import "strconv"

func formatKey(jid, sid int64, pid string) string {
	return strconv.FormatInt(jid, 10) + "." + strconv.FormatInt(sid, 10) + "." + pid
}

func jobName(jid int64, pid string) string {
	return "sj-" + strconv.FormatInt(jid, 10) + "-" + pid
}
