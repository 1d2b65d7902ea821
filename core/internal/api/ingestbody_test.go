package api

import (
	"bytes"
	"encoding/json"
	"testing"
)

// For any JSON object, parseIngestBody must read the same type, batch id and records bytes
// as encoding/json does.
func FuzzParseIngestBody(f *testing.F) {
	f.Add(`{"type": "items", "batch_id": "b-1", "records": [{"a": "x\"y"}, {"b": [1, 2]}]}`)
	f.Add(`{"records": [], "type": "lo\u0067s", "other": {"x": null}, "batch_id": "b"}`)
	f.Add(`{"type": "items", "type": "requests", "records": 12.5e3}`)
	f.Add(`{}`)
	f.Add(`{"batch_id": "ends in \\\\", "type": "a \\\\\\" quote\\\\\\\\", "records": ["\\\\\\"\\\\"]}`)
	f.Fuzz(func(t *testing.T, in string) {
		var fields map[string]json.RawMessage
		if json.Unmarshal([]byte(in), &fields) != nil || fields == nil {
			return
		}
		got, err := parseIngestBody([]byte(in))
		var wantType, wantBatch string
		typeErr := unmarshalIfSet(fields["type"], &wantType)
		batchErr := unmarshalIfSet(fields["batch_id"], &wantBatch)
		if typeErr != nil || batchErr != nil {
			if err == nil {
				t.Fatalf("parseIngestBody(%s) accepted a type or batch id that is not a string", in)
			}
			return
		}
		if err != nil {
			t.Fatalf("parseIngestBody(%s) = %v, want the object read", in, err)
		}
		if got.Type != wantType || got.BatchID != wantBatch || !bytes.Equal(got.Records, fields["records"]) {
			t.Fatalf("parseIngestBody(%s) = %q, %q, %s; want %q, %q, %s", in, got.Type, got.BatchID, got.Records, wantType, wantBatch, fields["records"])
		}
	})
}

func unmarshalIfSet(raw json.RawMessage, target *string) error {
	if raw == nil {
		return nil
	}
	return json.Unmarshal(raw, target)
}
